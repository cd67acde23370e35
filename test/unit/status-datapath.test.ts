// Status confirmed by the datapath, the pure parts: what a proxy reports it
// applies (sidecar/applied-report.ts), what the reconciler accepts of a report
// (contract/applied.ts), how reports become status (applied-status.ts,
// policy-status.ts), and the per-pod chaos events and Events (pod-transitions.ts).
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { decodeDatapathReport, NOT_APPLIED_REASONS, REPORT_LIMITS, ReportError, type DatapathReport } from '../../contract/applied.ts';
import type { LiveFaultPlan, PlannedHttpFault } from '../../contract/plans.ts';
import { datapathReport } from '../../sidecar/applied-report.ts';
import { observationsForReport, PortObservations } from '../../sidecar/capture/observations.ts';
import { livePlanFor } from '../../policies/planner.ts';
import { appliedSummary, MAX_POD_DETAILS, type PodReportState } from '../../webhook/reconciler/applied-status.ts';
import { desiredStatus } from '../../webhook/reconciler/policy-status.ts';
import { MAX_POD_EVENTS, podTransitions, type PodEntryState, type PodSeen } from '../../webhook/reconciler/pod-transitions.ts';
import { BoundedLabels, OTHER } from '../../common/bounded-labels.ts';
import { ChaosMetrics, MAX_POLICY_SERIES } from '../../webhook/reconciler/chaos-metrics.ts';
import { FakeCluster } from '../support/admission-cluster.ts';
import { policy, T0, tenant } from '../support/policies-fixtures.ts';

/** Capture with inbound port 9090 excluded by the pod's annotation, and a Toxiproxy target for inbound :8080. */
const capture = {
  excludes: (direction: 'inbound' | 'outbound', port: number | undefined) => direction === 'inbound' && port === 9090,
  tcpTargets: [{ direction: 'inbound' as const, port: 8080, connectHost: '10.1.0.5', connectPort: 8080 }],
};
const http = (port: number | undefined, extra: Partial<PlannedHttpFault> = {}): PlannedHttpFault => ({
  chaosId: 'shop/p', expiresAt: T0 + 60_000, name: 'p/f', direction: 'inbound', match: port === undefined ? {} : { port }, delay: { fixedMs: 10, jitterMs: 0, percent: 100 }, ...extra,
});
const plan = (p: Partial<LiveFaultPlan>): LiveFaultPlan => ({ policies: [{ chaosId: 'shop/p', uid: 'uid-p', generation: 2 }], http: [], tcp: [], ...p });

describe('status by the datapath: the proxy\'s report', () => {
  it('reports an HTTP fault on a captured port as applied and one on a port excluded from capture as PortNotServed', () => {
    const r = datapathReport({ pod: 'web-a', plan: plan({ http: [http(8080), http(9090, { abort: { status: 503, percent: 100 }, delay: undefined })] }), capture, toxiproxy: () => true });
    assert.deepEqual(r.policies, [{
      policy: 'shop/p', uid: 'uid-p', generation: 2,
      applied: [{ kind: 'http.delay', target: 'inbound :8080' }],
      notApplied: [{
        kind: 'http.abort', target: 'inbound :9090', reason: 'PortNotServed',
        message: 'no proxy listener serves the port the fault names (port 9090 is excluded from capture by the pod\'s faultline.dev/exclude-inbound-ports annotation)',
      }],
    }]);
  });

  it('says why TCP toxics do not apply: Toxiproxy down, or not running at all', () => {
    const tcp = [{ chaosId: 'shop/p', expiresAt: T0 + 60_000, direction: 'inbound' as const, port: 8080, toxics: [{ name: 'lat', type: 'latency' as const, stream: 'downstream' as const, toxicity: 1, attributes: { latency: 100 } }] }];
    const reasons = (state: boolean | 'disabled') => datapathReport({ pod: 'w', plan: plan({ tcp }), capture, toxiproxy: () => state }).policies[0]!;
    assert.deepEqual(reasons(true).applied, [{ kind: 'tcp.latency', target: 'inbound :8080' }]);
    assert.equal(reasons(false).notApplied[0]!.reason, 'ToxiproxyDown');
    assert.equal(reasons('disabled').notApplied[0]!.reason, 'ToxiproxyDisabled');
  });

  it('folds in what the capture path observed (TLS on the port) through the contract\'s interface', () => {
    const r = datapathReport({
      pod: 'w', plan: plan({ http: [http(8080)] }), capture, toxiproxy: () => true,
      observations: { notApplicable: (f) => (f.match.port === 8080 ? { reason: 'Tls', message: 'TLS ClientHello on :8080' } : undefined) },
    });
    assert.deepEqual(r.policies[0]!.notApplied, [{ kind: 'http.delay', target: 'inbound :8080', reason: 'Tls', message: 'TLS ClientHello on :8080' }]);
    assert.deepEqual(r.policies[0]!.applied, []);
  });

  it('every port is served but the excluded ones; TCP faults go by capture\'s Toxiproxy targets, and capture\'s observations say TLS', () => {
    const observations = new PortObservations();
    observations.record(8443, 'tls');
    const tcp = [{ chaosId: 'shop/p', expiresAt: T0 + 60_000, direction: 'inbound' as const, port: 9000, toxics: [{ name: 'lat', type: 'latency' as const, stream: 'downstream' as const, toxicity: 1, attributes: { latency: 100 } }] }];
    const r = datapathReport({
      pod: 'w', plan: plan({ http: [http(8080), http(8443), http(7000)], tcp }), toxiproxy: () => true,
      observations: observationsForReport(observations),
      capture: {
        excludes: (direction, port) => direction === 'inbound' && port === 7000,
        tcpTargets: [{ direction: 'inbound', port: 9000, connectHost: '10.1.0.5', connectPort: 9000 }],
      },
    }).policies[0]!;
    assert.deepEqual(r.applied, [{ kind: 'http.delay', target: 'inbound :8080' }, { kind: 'tcp.latency', target: 'inbound :9000' }]);
    assert.deepEqual(r.notApplied.map((f) => `${f.target} ${f.reason}`), ['inbound :8443 Tls', 'inbound :7000 PortNotServed']);
    assert.match(r.notApplied[1]!.message, /excluded from capture by the pod's faultline.dev\/exclude-inbound-ports annotation/);
  });

  it('lists kernel faults of running policies (netem\'s delay through the proxy), and a targeted policy with nothing here', () => {
    const kernel = { network: { chaosId: 'shop/p', expiresAt: T0 + 60_000, device: 'eth0', delay: { latencyMs: 50, jitterMs: 0, correlation: 0 }, loss: { percent: 5, correlation: 0 } }, io: [] };
    const handoff = { latencyMs: 50, jitterMs: 0, correlation: 0, chaosId: 'shop/p', expiresAt: T0 + 60_000 };
    const r = datapathReport({ pod: 'w', plan: plan({ networkDelay: handoff, policies: [{ chaosId: 'shop/p', uid: 'u', generation: 1 }, { chaosId: 'shop/q', uid: 'v', generation: 4 }] }), capture, toxiproxy: () => true, kernel });
    assert.deepEqual(r.policies.find((p) => p.policy === 'shop/p')!.applied.map((f) => `${f.kind} via ${f.via}`), ['network.delay via proxy (no sch_netem on the node)', 'network.loss via nft (no sch_netem on the node)']);
    const reorder = { ...kernel, network: { ...kernel.network, reorder: { percent: 5, correlation: 0, gap: 0 } } };
    const noNetem = datapathReport({ pod: 'w', plan: plan({ networkDelay: handoff }), capture, toxiproxy: () => true, kernel: reorder }).policies[0]!;
    assert.deepEqual(noNetem.notApplied.map((f) => `${f.kind} ${f.reason}`), ['network.reorder NetemMissing'], 'no stand-in for reorder without netem');
    const withNetem = datapathReport({ pod: 'w', plan: plan({}), capture, toxiproxy: () => true, kernel: reorder }).policies[0]!;
    assert.deepEqual(withNetem.applied.map((f) => f.kind), ['network.delay', 'network.loss', 'network.reorder']);
    assert.deepEqual(r.policies.find((p) => p.policy === 'shop/q'), { policy: 'shop/q', uid: 'v', generation: 4, applied: [], notApplied: [] });
    const stale = datapathReport({ pod: 'w', plan: plan({ policies: [] }), capture, toxiproxy: () => true, kernel });
    assert.deepEqual(stale.policies, [], 'kernel faults of a policy that no longer runs are not reported');
  });

  it('the planner names each targeted policy\'s uid and generation in the live plan', () => {
    const p = policy({ selector: {}, http: [{ delay: { fixed: '1s' } }] }, { generation: 5 }, { startedAt: new Date(T0).toISOString(), targets: ['web-a'], observedGeneration: 5 });
    assert.deepEqual(livePlanFor('web-a', [p], T0 + 1).policies, [{ chaosId: 'shop/p', uid: 'uid-p', generation: 5 }]);
    assert.equal(livePlanFor('web-b', [p], T0 + 1).policies, undefined);
  });
});

describe('status by the datapath: decoding a pod\'s report', () => {
  const good: DatapathReport = { pod: 'w', policies: [{ policy: 'shop/p', uid: 'u', generation: 1, applied: [{ kind: 'http.delay', target: 'inbound :80' }], notApplied: [{ kind: 'tcp.latency', target: 'inbound :80', reason: 'ToxiproxyDown', message: 'm' }] }] };

  it('round-trips a good report', () => {
    assert.deepEqual(decodeDatapathReport(JSON.stringify(good)), good);
  });

  it('refuses malformed, oversized and unknown-reason reports with a clear error', () => {
    assert.throws(() => decodeDatapathReport('{'), /not JSON/);
    assert.throws(() => decodeDatapathReport('[]'), /policies list/);
    assert.throws(() => decodeDatapathReport(' '.repeat(REPORT_LIMITS.bytes + 1)), /over 65536/);
    const bad = structuredClone(good);
    (bad.policies[0]!.notApplied[0] as { reason: string }).reason = 'Because';
    assert.throws(() => decodeDatapathReport(JSON.stringify(bad)), (e: Error) => e instanceof ReportError && /reason must be one of PortNotServed/.test(e.message));
    const gen = structuredClone(good);
    (gen.policies[0] as { generation: unknown }).generation = -1;
    assert.throws(() => decodeDatapathReport(JSON.stringify(gen)), /generation/);
  });

  it('names the offending field of a wrong type, a missing field or an unknown reason, and counts the others', () => {
    const refused = (edit: (r: any) => void): string => {
      const r = structuredClone(good);
      edit(r);
      try {
        decodeDatapathReport(JSON.stringify(r));
      } catch (err) {
        assert.ok(err instanceof ReportError);
        return err.message;
      }
      return assert.fail('accepted');
    };
    assert.equal(refused((r) => { r.pod = 5; }), 'pod: Invalid value: 5: must be of type string');
    assert.equal(refused((r) => { r.policies[0].applied[0].target = ['x']; }), 'policies[0].applied[0].target: Invalid value: ["x"]: must be of type string');
    assert.equal(refused((r) => { delete r.policies[0].uid; }), 'policies[0].uid: Required value');
    assert.equal(refused((r) => { r.policies[0].notApplied = null; }), 'policies[0].notApplied: Required value');
    assert.equal(refused((r) => { r.policies[0].generation = 1.5; }), 'policies[0].generation: Invalid value: 1.5: must be of type integer');
    assert.match(refused((r) => { r.policies[0].notApplied[0].reason = 'toString'; }), /^policies\[0\]\.notApplied\[0\]\.reason: Invalid value: "toString": reason must be one of PortNotServed, /);
    assert.equal(refused((r) => { r.pod = 5; r.policies[1] = 'p'; }), 'pod: Invalid value: 5: must be of type string (and 1 more)');
  });

  it('reads a null pod, via or message as absent, and never checks what the limits cut', () => {
    const r = decodeDatapathReport(JSON.stringify({ pod: null, policies: [{ ...good.policies[0], applied: [{ kind: 'k', target: 't', via: null }], notApplied: [{ kind: 'k', target: 't', reason: 'Tls', message: null }] }] }));
    assert.equal(r.pod, '');
    assert.deepEqual(r.policies[0]!.applied, [{ kind: 'k', target: 't' }]);
    assert.equal(r.policies[0]!.notApplied[0]!.message, NOT_APPLIED_REASONS.Tls);
    const past = { pod: 'w', policies: [...Array.from({ length: REPORT_LIMITS.policies }, () => good.policies[0]), 'not a policy'] };
    assert.equal(decodeDatapathReport(JSON.stringify(past)).policies.length, REPORT_LIMITS.policies);
  });

  it('cuts long lists and strings to the limits', () => {
    const many = { pod: 'w'.repeat(1000), policies: Array.from({ length: 100 }, (_, i) => ({ policy: `shop/p${i}`, uid: 'u', generation: 1, applied: Array.from({ length: i === 0 ? 100 : 1 }, () => ({ kind: 'h', target: 'x' })), notApplied: [] })) };
    const r = decodeDatapathReport(JSON.stringify(many));
    assert.equal(r.pod.length, REPORT_LIMITS.text);
    assert.equal(r.policies.length, REPORT_LIMITS.policies);
    assert.equal(r.policies[0]!.applied.length, REPORT_LIMITS.faults);
  });
});

describe('status by the datapath: aggregation into status', () => {
  const p = policy({ selector: { matchLabels: { app: 'web' } }, http: [{ delay: { fixed: '1s' } }] }, { generation: 2 });
  const entry = (applied: number, notApplied: number, generation = 2): DatapathReport => ({
    pod: '', policies: [{ policy: 'shop/p', uid: 'uid-p', generation,
      applied: Array.from({ length: applied }, (_, i) => ({ kind: 'http.delay', target: `inbound :${8080 + i}` })),
      notApplied: Array.from({ length: notApplied }, (_, i) => ({ kind: 'http.abort', target: `inbound :${9090 + i}`, reason: 'PortNotServed' as const, message: 'm' })) }],
  });
  const on = { on: true, reason: '', message: '' };
  const summary = (reports: Record<string, PodReportState>, pods = Object.keys(reports)) => appliedSummary(p, pods, (pod) => reports[pod], on);

  it('Applied only when every targeted pod confirms every fault', () => {
    const s = summary({ a: { report: entry(1, 0) }, b: { report: entry(2, 0) } });
    assert.deepEqual([s.appliedPods, s.condition.status, s.condition.reason], [2, 'True', 'Applied']);
  });

  it('PartlyApplied names the pod, fault and reason; NotApplied when nothing is faulted anywhere', () => {
    const partly = summary({ a: { report: entry(1, 0) }, b: { report: entry(1, 1) } });
    assert.deepEqual([partly.appliedPods, partly.condition.status, partly.condition.reason], [2, 'False', 'PartlyApplied']);
    assert.match(partly.condition.message, /pod b: http.abort inbound :9090: PortNotServed/);
    assert.equal(partly.podReports[0]!.pod, 'b', 'problem pods first');
    const none = summary({ a: { report: entry(0, 1) }, b: { report: entry(0, 0) } });
    assert.deepEqual([none.appliedPods, none.condition.status, none.condition.reason], [0, 'False', 'NotApplied']);
  });

  it('Unknown while pods are unreachable or lag the generation; never a guess', () => {
    const s = summary({ a: { report: entry(1, 0) }, b: { error: 'ECONNREFUSED' }, c: { report: entry(1, 0, 1) } });
    assert.deepEqual([s.appliedPods, s.condition.status, s.condition.reason], [1, 'Unknown', 'Unconfirmed']);
    assert.deepEqual(s.podReports.map((d) => `${d.pod}=${d.state}`), ['b=Unreachable', 'c=Pending', 'a=Applied']);
    assert.equal(appliedSummary(p, ['a'], () => undefined, { on: false, reason: 'Paused', message: 'spec.paused is true' }).condition.reason, 'Paused');
  });

  it('keeps every podReports text within the status schema\'s 512 characters', () => {
    // The longest a decoded report allows: each field cut to 256 characters.
    const long = (c: string): string => c.repeat(REPORT_LIMITS.text);
    const report = decodeDatapathReport(JSON.stringify({ pod: 'a', policies: [{ policy: 'shop/p', uid: 'uid-p', generation: 2,
      applied: [{ kind: long('k'), target: long('t'), via: long('v') }],
      notApplied: [{ kind: long('k'), target: long('t'), reason: 'PortNotServed', message: long('m') }] }] }));
    const s = summary({ a: { report }, b: { error: `GET /status: ${'x'.repeat(2000)}` } });
    const texts = s.podReports.flatMap((d) => [d.message ?? '', ...(d.applied ?? []), ...(d.notApplied ?? []).flatMap((f) => [f.fault, f.message ?? ''])]);
    assert.equal(texts.filter((t) => t.length > 0).length, 4);
    for (const t of texts) assert.ok(t.length <= 512, `${t.length} characters`);
    assert.ok(s.podReports.find((d) => d.pod === 'b')!.message!.endsWith('…'));
  });

  it('keeps the per-pod detail bounded over many pods', () => {
    const reports = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`web-${i}`, { report: entry(1, i % 7 === 0 ? 1 : 0) }]));
    const s = summary(reports);
    assert.equal(s.podReports.length, MAX_POD_DETAILS);
    assert.equal(s.podReportsOmitted, 500 - MAX_POD_DETAILS);
    assert.ok(s.podReports.every((d) => d.state === 'Partial'), 'the pods with problems are the ones shown');
    assert.ok(JSON.stringify(s.podReports).length < 16_384);
  });

  it('a targeted policy whose pods all report nothing applied is not Active (reason NothingApplied)', () => {
    const c = new FakeCluster().withNamespace('shop').withTenant(tenant({ kinds: ['http.delay'] })).withPod('web-a', { app: 'web' });
    const input = { policy: p, namespace: c.namespace('shop'), tenants: c.tenants(), pods: c.pods('shop'), now: T0 + 1000 };
    const none = desiredStatus({ ...input, reports: () => ({ report: entry(0, 1) }) });
    const active = none.conditions!.find((x) => x.type === 'Active')!;
    assert.deepEqual([active.status, active.reason], ['False', 'NothingApplied']);
    assert.deepEqual(none.targets, ['web-a'], 'the pod stays targeted: the fault applies once the datapath can');
    const ok = desiredStatus({ ...input, reports: () => ({ report: entry(1, 0) }) });
    assert.deepEqual(ok.conditions!.filter((x) => x.type === 'Active' || x.type === 'Applied').map((x) => `${x.type}=${x.status}`), ['Active=True', 'Applied=True']);
    assert.equal(ok.appliedPods, 1);
    const unread = desiredStatus(input);
    assert.equal(unread.conditions!.find((x) => x.type === 'Active')!.status, 'True', 'no report yet: Active as before, Applied Unknown');
    assert.equal(unread.conditions!.find((x) => x.type === 'Applied')!.status, 'Unknown');
  });

  it('the cluster-wide switch holds the policy: Active False, reason Held', () => {
    const c = new FakeCluster().withNamespace('shop').withTenant(tenant({ kinds: ['http.delay'] })).withPod('web-a', { app: 'web' });
    const s = desiredStatus({ policy: p, namespace: c.namespace('shop'), tenants: c.tenants(), pods: c.pods('shop'), now: T0, clusterSwitch: { 'faultline.dev/paused': 'maintenance' } });
    assert.deepEqual(['Active', 'Applied'].map((t) => s.conditions!.find((x) => x.type === t)!.reason), ['Held', 'Held']);
  });
});

describe('status by the datapath: per-pod chaos events and Events', () => {
  const reported = (applied: string[], notApplied: string[] = []): PodEntryState => ({
    kind: 'reported',
    policy: { policy: 'shop/p', uid: 'u', generation: 1, applied: applied.map((k) => ({ kind: k, target: 'inbound :80' })), notApplied: notApplied.map((k) => ({ kind: k, target: 'inbound :81', reason: 'Tls', message: 'TLS' })) },
  });
  const base = { policy: 'shop/p', chaosId: 'u/1', endStatus: 'ended' as const };

  it('a fault that appears starts, one that cannot apply is reported once, and the end carries how long it was on', () => {
    const first = podTransitions({ ...base, previous: new Map(), pods: new Map([['a', reported(['http.delay'], ['http.abort'])]]), now: 1000 });
    assert.deepEqual(first.chaos.map((e) => `${e.status} ${e.fault} ${e.target} ${e.chaos_id}`), ['started http.delay a inbound :80 u/1', 'not_applied http.abort a inbound :81 u/1']);
    assert.deepEqual(first.events.map((e) => e.reason), ['FaultsApplied', 'FaultsNotApplied']);
    const same = podTransitions({ ...base, previous: first.next, pods: new Map([['a', reported(['http.delay'], ['http.abort'])]]), now: 2000 });
    assert.deepEqual([same.chaos, same.events], [[], []], 'nothing changed: nothing said');
    const expired = podTransitions({ ...base, endStatus: 'expired', previous: same.next, pods: new Map(), now: 61_000 });
    assert.deepEqual(expired.chaos.map((e) => [e.status, e.duration_ms]), [['expired', 60_000]]);
    assert.equal(expired.next.size, 0);
  });

  it('an unreadable pod concludes nothing; a new generation ends the old experiment and starts the new', () => {
    const first = podTransitions({ ...base, previous: new Map(), pods: new Map([['a', reported(['http.delay'])]]), now: 1000 });
    const unknown = podTransitions({ ...base, previous: first.next, pods: new Map([['a', { kind: 'unknown' }]]), now: 2000 });
    assert.deepEqual(unknown.chaos, []);
    const next = podTransitions({ ...base, chaosId: 'u/2', previous: unknown.next, pods: new Map([['a', reported(['http.delay'])]]), now: 3000 });
    assert.deepEqual(next.chaos.map((e) => `${e.status} ${e.chaos_id}`), ['removed u/1', 'started u/2']);
  });

  it('caps the Events of one reconcile and sums up the rest', () => {
    const pods = new Map(Array.from({ length: 200 }, (_, i): [string, PodEntryState] => [`web-${i}`, reported(['http.delay'])]));
    const out = podTransitions({ ...base, previous: new Map<string, PodSeen>(), pods, now: 1 });
    assert.equal(out.events.length, MAX_POD_EVENTS);
    assert.match(out.events.at(-1)!.message, /151 more per-pod changes on 151 pod/);
    assert.equal(out.chaos.length, 200, 'the log keeps every pod');
  });
});

describe('metrics by policy, bounded', () => {
  it('BoundedLabels gives the first N their own value and OTHER after, and frees a slot on release', () => {
    const l = new BoundedLabels(2);
    assert.deepEqual(['a', 'b', 'c', 'a'].map((k) => l.label(k)), ['a', 'b', OTHER, 'a']);
    assert.equal(l.release('a'), true);
    assert.equal(l.label('c'), 'c');
  });

  it('ChaosMetrics sums policies past the cap under policy="other" and removes a deleted policy\'s series', async () => {
    const registry = new Registry();
    const m = new ChaosMetrics(registry);
    const status = (targeted: number) => ({ targetedPods: targeted, appliedPods: targeted, conditions: [{ type: 'Active', status: 'True' as const }] });
    for (let i = 0; i < MAX_POLICY_SERIES + 3; i++) m.policyStatus(`shop/p${i}`, status(2));
    m.policyStatus(`shop/p${MAX_POLICY_SERIES}`, status(5));
    const series = async () => (await registry.getSingleMetric('faultline_policy_targeted_pods')!.get()).values;
    const values = await series();
    assert.equal(values.length, MAX_POLICY_SERIES + 1);
    assert.equal(values.find((v) => v.labels.policy === OTHER)!.value, 5 + 2 + 2);
    m.forget('shop/p0');
    assert.equal((await series()).some((v) => v.labels.policy === 'shop/p0'), false);
    m.forget(`shop/p${MAX_POLICY_SERIES}`);
    assert.equal((await series()).find((v) => v.labels.policy === OTHER)!.value, 4);
  });
});

describe('status by the datapath: the policies of the plan survive the datapath\'s filters', () => {
  it('effectivePlan keeps them; withoutPolicies drops the aborted ones', async () => {
    const { effectivePlan, withoutPolicies } = await import('../../sidecar/live-plan.ts');
    const p = plan({ policies: [{ chaosId: 'shop/p', uid: 'u', generation: 1 }, { chaosId: 'shop/q', uid: 'v', generation: 1 }] });
    assert.deepEqual(effectivePlan(p, T0).policies, p.policies);
    assert.deepEqual(withoutPolicies(p, new Set(['shop/q'])).policies, [{ chaosId: 'shop/p', uid: 'u', generation: 1 }]);
  });
});
