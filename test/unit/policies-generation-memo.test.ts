// What is derived from a spec, once per (uid, generation): the webhook's
// cache and the proxy's live planner both keep each policy's validated,
// defaulted form across the reconciler's status writes.
import assert from 'node:assert/strict';
import { GenerationMemo } from '../../policies/generation-memo.ts';
import { livePlanFor, livePlanner } from '../../policies/planner.ts';
import type { ChaosPolicy } from '../../policies/types.ts';
import { policy, T0 } from '../support/policies-fixtures.ts';

describe('policies: GenerationMemo', () => {
  const obj = (name: string, generation: number | undefined, uid = `uid-${name}`) => ({ metadata: { namespace: 'shop', name, uid, ...(generation !== undefined ? { generation } : {}) } });

  it('computes once per generation, again for a new generation or a recreated object of the same name', () => {
    const memo = new GenerationMemo<number>();
    let computed = 0;
    const get = (o: ReturnType<typeof obj>) => memo.get(o, () => ++computed);
    assert.equal(get(obj('a', 1)), 1);
    assert.equal(get(obj('a', 1)), 1, 'a status write: same generation, new object');
    assert.equal(get(obj('a', 2)), 2, 'a spec change');
    assert.equal(get(obj('a', 2, 'uid-a2')), 3, 'deleted and created again');
    assert.equal(computed, 3);
  });

  it('never keys an object without a generation', () => {
    const memo = new GenerationMemo<number>();
    let computed = 0;
    memo.get(obj('a', undefined), () => ++computed);
    memo.get(obj('a', undefined), () => ++computed);
    assert.deepEqual([computed, memo.size], [2, 0]);
  });

  it('forgets deleted objects, and those a full list no longer holds', () => {
    const memo = new GenerationMemo<string>();
    for (const n of ['a', 'b', 'c']) memo.get(obj(n, 1), () => n);
    memo.delete('shop', 'a');
    assert.equal(memo.size, 2);
    memo.retainOnly([obj('c', 1)]);
    assert.equal(memo.size, 1);
    let again = false;
    memo.get(obj('b', 1), () => ((again = true), 'b'));
    assert.ok(again, 'b is computed again once forgotten');
  });
});

describe('policies: livePlanner (one proxy\'s planner)', () => {
  const at = (generation: number, spec: Partial<ChaosPolicy['spec']>, targets: string[]): ChaosPolicy =>
    policy(spec, { name: 'p', generation }, { observedGeneration: generation, targets });
  const slow = { http: [{ name: 'slow', delay: { fixed: '1s' } }] };
  const failing = { http: [{ name: 'fail', abort: { status: 503 } }] };

  it('plans as livePlanFor does through status writes, spec changes and deletion', () => {
    const plan = livePlanner();
    const steps: ChaosPolicy[][] = [
      [at(1, slow, [])],
      [at(1, slow, ['web-0'])],
      [at(1, slow, ['web-0', 'web-1'])],
      [at(2, failing, ['web-1'])],
      [at(2, failing, ['web-0'])],
      [at(3, { ...failing, http: [{ name: 'fail', abort: { status: 99 } }] }, ['web-0'])],
      [],
      [at(4, slow, ['web-0'])],
    ];
    const planned = steps.map((policies) => plan('web-0', policies, T0 + 1));
    for (const [i, policies] of steps.entries()) assert.deepEqual(planned[i], livePlanFor('web-0', policies, T0 + 1), `step ${i}`);
    assert.deepEqual(planned.map((p) => p.http.map((h) => h.name)), [[], ['p/slow'], ['p/slow'], [], ['p/fail'], [], [], ['p/slow']]);
  });

  it('validates and defaults a policy once per generation, and reads its status from the newest object', () => {
    const plan = livePlanner();
    const first = plan('web-0', [at(1, slow, ['web-0'])], T0 + 1).http[0]!;
    // A status write: a new object with the same generation. The planned rule is
    // built from the same defaulted spec (its match object is the memo's).
    const afterStatusWrite = plan('web-0', [at(1, slow, ['web-0', 'web-1'])], T0 + 1).http[0]!;
    assert.equal(afterStatusWrite.match, first.match);
    assert.deepEqual(plan('web-0', [at(1, slow, ['web-1'])], T0 + 1).http, [], 'the newest status.targets decides');
    const nextGeneration = plan('web-0', [at(2, slow, ['web-0'])], T0 + 1).http[0]!;
    assert.notEqual(nextGeneration.match, first.match);
    assert.notEqual(livePlanFor('web-0', [at(1, slow, ['web-0'])], T0 + 1).http[0]!.match, livePlanFor('web-0', [at(1, slow, ['web-0'])], T0 + 1).http[0]!.match,
      'livePlanFor, without the memo, defaults on every call');
  });
});
