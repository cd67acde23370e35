// Issue 13 L1: limits hold per pod. Every delay-like toxic attribute is
// bounded by maxDelay, toxics chained on one upstream add up (within a
// policy and across the policies that can reach a pod), and fast-check
// admits random policies one by one through the real validator, then checks
// the merged live plan of a pod they all target against the tenant's limits.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createLogger } from '../../common/log.ts';
import { livePlanFor } from '../../policies/plan.ts';
import { selectorsMayOverlap } from '../../policies/selection.ts';
import type { ChaosPolicy, LiveFaultPlan, Toxic } from '../../policies/types.ts';
import { validatePolicy } from '../../policies/validate.ts';
import { admissionVerdict } from '../../policies/verdict.ts';
import { TOXIC_ATTRIBUTES } from '../../policies/vocabulary.ts';
import { createPolicyValidator } from '../../webhook/validate-policies.ts';
import { FakeCluster, policyRequest } from '../support/admission-cluster.ts';
import { policy, tenant } from '../support/policies-fixtures.ts';

const log = createLogger('test', 'silent');
const ns = { name: 'shop', labels: { 'faultline.dev/chaos': 'enabled' } };
const KINDS = ['tcp.latency', 'tcp.slow_close', 'tcp.slicer', 'tcp.timeout', 'tcp.bandwidth', 'http.delay'];
const shop = (maxDelay = '2s') => tenant({ kinds: KINDS, limits: { maxDelay } });
const tcp = (toxics: Toxic[], port = 6379) => ({ tcp: [{ port, toxics }] });
const verdict = (p: ChaosPolicy) => admissionVerdict({ policy: p, namespace: ns, tenants: [shop()], user: undefined });

describe('policies: limits per pod (issue 13 L1)', () => {
  it('bounds slow_close and slicer delays (µs as numbers) and the timeout toxic’s stall by maxDelay', () => {
    assert.match(verdict(policy(tcp([{ type: 'slow_close', delay: '4708m' }]))).message, /spec\.tcp\[0\]\.toxics\[0\]\.delay 4708m exceeds the tenant maximum of 2s/);
    assert.match(verdict(policy(tcp([{ type: 'slicer', average_size: 64, delay: 3_000_000 }]))).message, /toxics\[0\]\.delay 3000000µs exceeds/);
    assert.equal(verdict(policy(tcp([{ type: 'slicer', average_size: 64, delay: 1_000_000 }]))).allowed, true);
    assert.match(verdict(policy(tcp([{ type: 'timeout', timeout: 0 }]))).message, /timeout 0 \(stall until the peer closes\) exceeds/);
    assert.equal(verdict(policy(tcp([{ type: 'timeout', timeout: '1s' }]))).allowed, true);
  });

  it('adds up latency toxics chained on one upstream within a policy', () => {
    const twice = policy(tcp([{ type: 'latency', latency: '1500ms', name: 'a' }, { type: 'latency', latency: '1500ms', name: 'b' }]));
    assert.match(verdict(twice).message, /spec\.tcp\[0\] latency \+ jitter of 2 toxics on 6379 \(downstream\) adds up to 3000ms, which exceeds the tenant maximum of 2s/);
  });

  it('denies a policy whose toxics stack over maxDelay with another that can reach the same pods', async () => {
    const older = policy({ selector: { matchLabels: { app: 'web' } }, ...tcp([{ type: 'latency', latency: '1500ms' }]) }, { name: 'older', creationTimestamp: new Date().toISOString() });
    const cluster = new FakeCluster().withNamespace('shop').withTenant(shop()).withPolicy(older);
    const validate = createPolicyValidator({ cluster, log });
    const same = await validate(policyRequest(policy({ selector: {}, ...tcp([{ type: 'latency', latency: '1s' }]) }, { name: 'newer' })));
    assert.equal(same.allowed, false);
    assert.match(same.status!.message, /spec\.tcp\[0\] latency \+ jitter on 6379 \(downstream\) adds up to 2500ms with shop\/older, which can reach the same pods, exceeding the tenant maximum of 2s/);
    const disjoint = await validate(policyRequest(policy({ selector: { matchLabels: { app: 'api' } }, ...tcp([{ type: 'latency', latency: '1s' }]) }, { name: 'newer' })));
    assert.equal(disjoint.allowed, true, disjoint.status?.message);
    const otherPort = await validate(policyRequest(policy({ selector: {}, ...tcp([{ type: 'latency', latency: '1s' }], 5432) }, { name: 'newer' })));
    assert.equal(otherPort.allowed, true, otherPort.status?.message);
  });

  it('tells selectors that may share a pod from those that cannot', () => {
    assert.equal(selectorsMayOverlap({ matchLabels: { app: 'web' } }, { matchLabels: { app: 'api' } }), false);
    assert.equal(selectorsMayOverlap({ matchLabels: { app: 'web' } }, { matchLabels: { tier: 'x' } }), true);
    assert.equal(selectorsMayOverlap({}, { matchLabels: { app: 'api' } }), true);
    assert.equal(selectorsMayOverlap({ matchExpressions: [{ key: 'app', operator: 'In', values: ['a', 'b'] }] }, { matchLabels: { app: 'b' } }), true);
    assert.equal(selectorsMayOverlap({ matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, { matchLabels: { app: 'b' } }), false);
  });
});

// ------------------------------------------------------------ fuzzing the merged per-pod plan

const duration = fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 0, max: 300 }).map((n) => `${n * 50}ms`), fc.constantFrom('1s', '4708m', '2h'));
const toxic: fc.Arbitrary<Toxic> = fc.oneof(
  fc.record({ type: fc.constant('latency' as const), latency: duration, jitter: fc.option(duration, { nil: undefined }) }, { requiredKeys: ['type', 'latency'] }),
  fc.record({ type: fc.constant('slow_close' as const), delay: duration }),
  fc.record({ type: fc.constant('slicer' as const), average_size: fc.integer({ min: 1, max: 100 }), delay: fc.integer({ min: 0, max: 5_000_000 }) }),
  fc.record({ type: fc.constant('timeout' as const), timeout: duration }),
  fc.record({ type: fc.constant('bandwidth' as const), rate: fc.integer({ min: 0, max: 1000 }) }),
);
const stream = fc.constantFrom('upstream', 'downstream');
const tcpFault = fc.record({
  port: fc.constantFrom(6379, 5432),
  toxics: fc.array(fc.tuple(toxic, stream), { minLength: 1, maxLength: 3 }).map((ts) => ts.map(([t, s], i) => ({ ...t, stream: s, name: `t${i}` }) as Toxic)),
});
const selector = fc.constantFrom({}, { matchLabels: { app: 'web' } }, { matchLabels: { app: 'api' } });
const candidate = fc.record({ selector, tcp: fc.array(tcpFault, { minLength: 1, maxLength: 2 }).filter((fs) => new Set(fs.map((f) => f.port)).size === fs.length) });

function ms(v: string | number, unitMs: number): number {
  if (typeof v === 'number') return v * unitMs;
  const m = /^(\d+)(ms|s|m|h)$/.exec(v)!;
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
}

/** The per-pod sums Toxiproxy applies, from the merged live plan. */
function podDelays(plan: LiveFaultPlan): Map<string, number> {
  const sums = new Map<string, number>();
  for (const f of plan.tcp)
    for (const t of f.toxics) {
      const unit = TOXIC_ATTRIBUTES[t.type].timeUnitMs;
      const add = (what: string, v: number | undefined): void => {
        const key = `${f.host ?? ''}:${f.port}/${t.stream}/${what}`;
        sums.set(key, (sums.get(key) ?? 0) + (v ?? 0) * unit);
      };
      if (t.type === 'latency') add('latency', (t.attributes.latency ?? 0) + (t.attributes.jitter ?? 0));
      if (t.type === 'slow_close') add('slow_close', t.attributes.delay);
      if (t.type === 'slicer') add('slicer', t.attributes.delay);
      if (t.type === 'timeout') sums.set(`timeout/${sums.size}`, t.attributes.timeout === 0 ? Infinity : (t.attributes.timeout ?? 0));
    }
  return sums;
}

describe('policies: the merged per-pod plan stays within the tenant’s limits (fast-check, issue 13 L1)', function () {
  this.timeout(120_000);
  it('admitting random TCP policies one by one never lets a pod’s chained delays exceed maxDelay', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 5 }).map((s) => `${s}s`), fc.array(candidate, { minLength: 1, maxLength: 6 }), async (maxDelay, candidates) => {
        const cluster = new FakeCluster().withNamespace('shop').withTenant(shop(maxDelay));
        const validate = createPolicyValidator({ cluster, log });
        const now = Date.now();
        for (const [i, spec] of candidates.entries()) {
          const p = policy(spec, { name: `p${i}`, generation: 1, creationTimestamp: new Date(now + i).toISOString() }, { targets: ['web-0'], observedGeneration: 1 });
          if (validatePolicy(p).length > 0) continue;
          if ((await validate(policyRequest(p))).allowed) cluster.withPolicy(p);
        }
        // The pod web-0 carries app=web: every admitted policy but the app=api ones reach it.
        const reaching = cluster.policyList.filter((p) => p.spec.selector?.matchLabels?.app !== 'api');
        const plan = livePlanFor('web-0', reaching, now + 1_000);
        for (const [key, total] of podDelays(plan)) assert.ok(total <= ms(maxDelay, 1), `${key}: ${total}ms > ${maxDelay} with ${reaching.map((p) => JSON.stringify(p.spec.tcp)).join(' | ')}`);
      }),
      { numRuns: Number(process.env.FAULTLINE_FUZZ_RUNS ?? 300) },
    );
  });
});
