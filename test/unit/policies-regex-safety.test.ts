// Issue 13 L2: path regexes that backtrack are refused at admission, and the
// proxy never compiles one.
import assert from 'node:assert/strict';
import { backtrackingRisk } from '../../policies/regex-safety.ts';
import { validatePolicy } from '../../policies/validate.ts';
import type { PlannedHttpFault } from '../../policies/types.ts';
import { matches } from '../../sidecar/http-faults.ts';
import { policy } from '../support/policies-fixtures.ts';

describe('policies: path regexes that cannot backtrack (issue 13 L2)', () => {
  const risky = ['/api(/?[a-z0-9]+)*', '(a+)+', '(\\w+\\s?)*$', '(a|aa)+', '((ab)*c)+', '(x+){2,}', '(a*)*', '(.*a){20}', '(a)\\1', '(?<x>a)\\k<x>', '/a(?=b)', '/a(?<!b)'];
  const safe = ['/api/v[0-9]+/items/[a-z]+', '^/users/(\\d+)$', '(foo|bar)/x', '(abc)+', '(ab){2}', '/static/.*\\.(css|js)', '[(a+)+]*', '\\(a+\\)+', '/a{2,3}b?', '(a+)?', '(?:x|y)?z+'];
  for (const source of risky) it(`refuses ${source}`, () => assert.ok(backtrackingRisk(source), source));
  for (const source of safe) it(`accepts ${source}`, () => assert.equal(backtrackingRisk(source), undefined));

  it('denies the report’s /api(/?[a-z0-9]+)* at admission with the field path', () => {
    const errors = validatePolicy(policy({ http: [{ match: { path: { regex: '/api(/?[a-z0-9]+)*' } }, delay: { fixed: '1s' } }] }));
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.path, 'spec.http[0].match.path.regex');
    assert.match(errors[0]!.message, /nested quantifiers/);
  });

  it('the proxy never runs one: such a rule matches nothing, at once, whatever the path', () => {
    const fault: PlannedHttpFault = { chaosId: 'shop/p', name: 'p/r', expiresAt: Date.now() + 60_000, direction: 'inbound', match: { path: { regex: '/api(/?[a-z0-9]+)*' } }, delay: { fixedMs: 1, jitterMs: 0, percent: 100 } };
    const started = performance.now();
    assert.equal(matches(fault, { method: 'GET', url: `/api${'a'.repeat(40)}!`, headers: {} }), false);
    assert.ok(performance.now() - started < 50, 'no backtracking');
  });
});
