// spec.abortWhen: validation, the tenant's requirements (what the validating
// webhook says), the guard the proxy gets, the abort notice, and the status
// the reconciler writes from it.
import assert from 'node:assert/strict';
import { plannedGuard } from '../../policies/abort-when.ts';
import { abortNoticeEvent, ABORT_ANNOTATION, parseAbortNotice } from '../../policies/abort-notice.ts';
import { livePlanFor } from '../../policies/planner.ts';
import type { AbortWhen } from '../../policies/types.ts';
import { validatePolicy } from '../../policies/validate.ts';
import { admissionVerdict } from '../../policies/verdict.ts';
import { desiredStatus, statusEvents } from '../../webhook/reconciler/policy-status.ts';
import { FakeCluster } from '../support/admission-cluster.ts';
import { policy, T0, tenant } from '../support/policies-fixtures.ts';

const guard: AbortWhen = { errorRate: { percent: 15, window: '60s', minRequests: 20 }, latency: { percentile: 99, threshold: '500ms', window: '30s' } };
const faults = { http: [{ delay: { fixed: '100ms' } }] };
const ns = { name: 'shop', labels: { 'faultline.dev/chaos': 'enabled' } };
const verdict = (spec: Parameters<typeof policy>[0], allow: Parameters<typeof tenant>[0]) =>
  admissionVerdict({ policy: policy(spec), namespace: ns, tenants: [tenant({ kinds: ['http.delay'], ...allow })], user: undefined });

describe('policies: abortWhen', () => {
  it('validates windows, thresholds and percentiles with field paths', () => {
    assert.deepEqual(validatePolicy(policy({ ...faults, abortWhen: guard })), []);
    const messages = validatePolicy(policy({ ...faults, abortWhen: { errorRate: { percent: 10, window: '500ms' }, latency: { percentile: 99, threshold: '0s', window: '2h' } } })).map((e) => `${e.path}: ${e.message}`);
    assert.ok(messages.some((m) => m.startsWith('spec.abortWhen.errorRate.window: Invalid value: "500ms": must be at least 1s')), messages.join('\n'));
    assert.ok(messages.some((m) => m.startsWith('spec.abortWhen.latency.window: Invalid value: "2h": must be at most 1h')), messages.join('\n'));
    assert.ok(messages.some((m) => m.startsWith('spec.abortWhen.latency.threshold')), messages.join('\n'));
    assert.ok(validatePolicy(policy({ ...faults, abortWhen: {} })).some((e) => e.path === 'spec.abortWhen'));
    assert.ok(validatePolicy(policy({ ...faults, abortWhen: { errorRate: { percent: 150, window: '1m' } } })).some((e) => e.path.startsWith('spec.abortWhen.errorRate.percent')));
  });

  it('the validating webhook enforces allow.requireAbortWhen and limits.maxAbortWindow', () => {
    assert.equal(verdict(faults, {}).allowed, true);
    const missing = verdict(faults, { requireAbortWhen: true });
    assert.equal(missing.allowed, false);
    assert.match(missing.message, /tenant "shop": spec\.abortWhen is required by the tenant \(allow\.requireAbortWhen\)/);
    assert.equal(verdict({ ...faults, abortWhen: guard }, { requireAbortWhen: true }).allowed, true);
    const long = verdict({ ...faults, abortWhen: guard }, { requireAbortWhen: true, limits: { maxAbortWindow: '30s' } });
    assert.equal(long.allowed, false);
    assert.match(long.message, /spec\.abortWhen\.errorRate\.window 60s exceeds the tenant maximum of 30s/);
    assert.doesNotMatch(long.message, /latency\.window/, 'the 30s latency window is within the bound');
  });

  it('plans a guard in the proxy\'s units for targeted pods only', () => {
    const p = policy({ ...faults, abortWhen: guard }, { generation: 4 }, { targets: ['web-a'], startedAt: new Date(T0).toISOString(), observedGeneration: 4 });
    assert.deepEqual(plannedGuard(p, 'shop/p'), {
      chaosId: 'shop/p', uid: 'uid-p', generation: 4,
      errorRate: { ratio: 0.15, windowMs: 60_000, minRequests: 20 },
      latency: { percentile: 99, thresholdMs: 500, windowMs: 30_000, minRequests: 10 },
    });
    assert.equal(livePlanFor('web-a', [p], T0 + 1).guards?.length, 1);
    assert.equal(livePlanFor('web-b', [p], T0 + 1).guards, undefined);
    // An abort recorded for this generation takes the policy out of every plan.
    const aborted = { ...p, status: { ...p.status, abort: { generation: 4, condition: 'errorRate' as const, observed: 40, threshold: 15, requests: 30, window: '60s', pod: 'web-a', at: '' } } };
    assert.deepEqual(livePlanFor('web-a', [aborted], T0 + 1).http, []);
    const next = { ...aborted, metadata: { ...aborted.metadata, generation: 5 }, status: { ...aborted.status, observedGeneration: 5 } };
    assert.equal(livePlanFor('web-a', [next], T0 + 1).http.length, 1, 'a newer generation runs');
  });

  it('an abort notice round-trips through an Event, and anything malformed is ignored', () => {
    const breach = { condition: 'errorRate' as const, observed: 62.5, threshold: 50, requests: 40, windowMs: 2_000, uid: 'uid-p', generation: 4 };
    const event = abortNoticeEvent({ namespace: 'shop', name: 'p' }, breach, 'web-a', T0, 'faultline-proxy');
    const notice = parseAbortNotice(event);
    assert.deepEqual(notice, { namespace: 'shop', policy: 'p', uid: 'uid-p', abort: { generation: 4, condition: 'errorRate', observed: 62.5, threshold: 50, requests: 40, window: '2s', pod: 'web-a', at: new Date(T0).toISOString() } });
    const bad = (patch: (e: Record<string, unknown>) => void): unknown => {
      const e = structuredClone(event);
      patch(e);
      return parseAbortNotice(e);
    };
    assert.equal(bad((e) => (e.reason = 'Other')), undefined);
    assert.equal(bad((e) => ((e.metadata as { annotations: Record<string, string> }).annotations[ABORT_ANNOTATION] = '{nope')), undefined);
    assert.equal(bad((e) => ((e.involvedObject as Record<string, unknown>).kind = 'Pod')), undefined);
  });

  it('the reconciler marks the policy Aborted (condition, observed value, threshold), untargets it and emits an Event', () => {
    const c = new FakeCluster().withNamespace('shop').withTenant(tenant({ kinds: ['http.delay'] })).withPod('web-a', { app: 'web' });
    const p = policy({ ...faults, selector: { matchLabels: { app: 'web' } }, abortWhen: guard }, { generation: 4 });
    const before = desiredStatus({ policy: p, namespace: c.namespace('shop'), tenants: c.tenants(), pods: c.pods('shop'), now: T0 });
    assert.deepEqual(before.targets, ['web-a']);
    assert.equal(before.conditions?.find((x) => x.type === 'Aborted')?.status, 'False');
    const notice = parseAbortNotice(abortNoticeEvent({ namespace: 'shop', name: 'p' }, { condition: 'latency', observed: 812, threshold: 500, requests: 25, windowMs: 30_000, uid: 'uid-p', generation: 4 }, 'web-a', T0 + 5, 'faultline-proxy'))!;
    const stale = { ...notice, abort: { ...notice.abort, generation: 3 } };
    const withStatus = { ...p, status: before };
    const after = desiredStatus({ policy: withStatus, namespace: c.namespace('shop'), tenants: c.tenants(), pods: c.pods('shop'), now: T0 + 10, notices: [stale, notice] });
    const aborted = after.conditions?.find((x) => x.type === 'Aborted');
    assert.equal(aborted?.status, 'True');
    assert.equal(aborted?.reason, 'SteadyStateBreached');
    assert.match(aborted!.message!, /latency percentile 812 ms over 30s \(25 responses\) exceeded 500 ms, seen by pod web-a/);
    assert.deepEqual(after.targets, []);
    assert.equal(after.conditions?.find((x) => x.type === 'Active')?.reason, 'Aborted');
    assert.equal(after.abort?.generation, 4);
    const events = statusEvents(withStatus, before, after, c.pods('shop'));
    assert.ok(events.some((e) => e.type === 'Warning' && e.reason === 'Aborted'), JSON.stringify(events));
    // Stays aborted from status alone (the Event ages out), until the generation changes.
    const later = desiredStatus({ policy: { ...p, status: after }, namespace: c.namespace('shop'), tenants: c.tenants(), pods: c.pods('shop'), now: T0 + 20 });
    assert.equal(later.conditions?.find((x) => x.type === 'Aborted')?.status, 'True');
    const resumed = desiredStatus({ policy: { ...p, metadata: { ...p.metadata, generation: 5 }, status: after }, namespace: c.namespace('shop'), tenants: c.tenants(), pods: c.pods('shop'), now: T0 + 30 });
    assert.equal(resumed.conditions?.find((x) => x.type === 'Aborted')?.status, 'False');
    assert.deepEqual(resumed.targets, ['web-a']);
  });
});
