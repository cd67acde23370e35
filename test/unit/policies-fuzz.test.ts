import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkAllowlist } from '../../policies/allowlist.ts';
import { applyDefaults } from '../../policies/defaults.ts';
import { kernelPlanFor, livePlanFor } from '../../policies/planner.ts';
import type { ChaosPolicy, ChaosTenant } from '../../policies/types.ts';
import { validatePolicy, validateTenant } from '../../policies/validate.ts';
import { admissionVerdict } from '../../policies/verdict.ts';
import { policy, T0, tenant } from '../support/policies-fixtures.ts';

const anyJson = fc.jsonValue({ maxDepth: 6 });
/** Arbitrary values in the places the API has fields, so the deeper rules run too. */
const specLike = fc.record({
  duration: fc.oneof(fc.constantFrom('1m', '10', '-1s', '0'), fc.string()),
  mode: fc.option(fc.record({ type: fc.constantFrom('one', 'all', 'fixed', 'fixed-percent', 'x'), value: fc.option(fc.double(), { nil: undefined }) }), { nil: undefined }),
  http: fc.option(fc.array(fc.record({ direction: fc.constantFrom('inbound', 'outbound'), match: anyJson, delay: fc.option(fc.record({ fixed: fc.string(), jitter: anyJson, percent: anyJson }), { nil: undefined }), abort: anyJson })), { nil: undefined }),
  tcp: fc.option(fc.array(fc.record({ port: anyJson, host: anyJson, toxics: fc.array(fc.record({ type: fc.constantFrom('latency', 'bandwidth', 'slicer', 'x'), latency: anyJson, rate: anyJson, delay: anyJson })) })), { nil: undefined }),
  network: anyJson,
  io: anyJson,
  time: anyJson,
}, { requiredKeys: [] });
const policyLike = fc.oneof(anyJson, specLike.map((spec) => policy(spec as never)));
const anyTenant = fc.oneof(anyJson, fc.constant(tenant({ kinds: ['http.delay'], limits: { maxDelay: '1s', maxPercent: 50 } }, { subjects: [{ kind: 'User', name: 'a' }] })));

describe('policies: never throw on arbitrary input (fast-check)', () => {
  it('validatePolicy and validateTenant', () => {
    fc.assert(fc.property(policyLike, anyJson, (p, t) => {
      assert.ok(Array.isArray(validatePolicy(p)));
      assert.ok(Array.isArray(validateTenant(t)));
    }), { numRuns: 500 });
  });

  it('admissionVerdict', () => {
    fc.assert(fc.property(policyLike, fc.array(anyTenant, { maxLength: 3 }), (p, tenants) => {
      const v = admissionVerdict({ policy: p, namespace: { name: 'shop', labels: { 'faultline.dev/chaos': 'enabled' } }, tenants: tenants as ChaosTenant[], user: { username: 'a' } });
      assert.equal(typeof v.allowed, 'boolean');
      assert.equal(v.allowed, v.message === '');
    }), { numRuns: 500 });
  });

  it('checkAllowlist and the plans, on whatever validates', () => {
    fc.assert(fc.property(specLike, (spec) => {
      const p = policy(spec as never, {}, { targets: ['web-0'] });
      const valid = validatePolicy(p).length === 0;
      if (valid) checkAllowlist(applyDefaults(p.spec), tenant({ kinds: [], limits: { maxDelay: '1s', minBandwidthKBps: 5, maxTimeOffset: '1h' } }), { username: 'x' }, 'shop');
      livePlanFor('web-0', [p as ChaosPolicy], T0);
      kernelPlanFor({ metadata: { name: 'web-0', namespace: 'shop' } }, [p as ChaosPolicy], T0);
    }), { numRuns: 500 });
  });
});
