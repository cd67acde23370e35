import assert from 'node:assert/strict';
import { medianBy } from '../../bench/webhook-stats.ts';

describe('bench: medianBy', () => {
  it('returns the whole item whose key is the median, not a mix of fields', () => {
    const rounds = [
      { p99: 9, p50: 1 },
      { p99: 2, p50: 7 },
      { p99: 5, p50: 3 },
    ];
    assert.deepEqual(medianBy(rounds, (r) => r.p99), { p99: 5, p50: 3 });
    assert.deepEqual(medianBy(rounds, (r) => r.p50), { p99: 5, p50: 3 });
  });

  it('takes the lower middle of an even count, keeps the input order, and has none of nothing', () => {
    const xs = [4, 1, 3, 2];
    assert.equal(medianBy(xs, (x) => x), 2);
    assert.deepEqual(xs, [4, 1, 3, 2]);
    assert.equal(medianBy([7], (x) => x), 7);
    assert.equal(medianBy([] as number[], (x) => x), undefined);
  });
});
