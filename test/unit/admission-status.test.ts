// ChaosPolicy status: what the reconciler writes, when it writes, and which
// Events a transition is worth.
import assert from 'node:assert/strict';
import { preparePolicy } from '../../policies/planner.ts';
import type { ChaosPolicy } from '../../policies/types.ts';
import { chooseTargets, desiredStatus, statusChanged, statusEvents } from '../../webhook/reconciler/policy-status.ts';
import { FakeCluster } from '../support/admission-cluster.ts';
import { policy, T0, tenant } from '../support/policies-fixtures.ts';

const web = { matchLabels: { app: 'web' } };
const cluster = () =>
  new FakeCluster()
    .withNamespace('shop')
    .withTenant(tenant({ kinds: ['http.delay', 'network.loss'], privileged: true }))
    .withPod('web-a', { app: 'web' })
    .withPod('web-b', { app: 'web' })
    .withPod('web-pending', { app: 'web' }, { phase: 'Pending' })
    .withPod('web-plain', { app: 'web' }, { injected: false })
    .withPod('web-leaving', { app: 'web' }, { deletionTimestamp: new Date(T0).toISOString() });

function status(p: ChaosPolicy, c: FakeCluster, now: number) {
  return desiredStatus({ policy: p, namespace: c.namespace('shop'), tenants: c.tenants(), pods: c.pods('shop'), now });
}
const cond = (s: ReturnType<typeof status>, type: string) => s.conditions?.find((c) => c.type === type);

describe('admission: policy status', () => {
  const p = policy({ selector: web, duration: '10m', http: [{ delay: { fixed: '1s' } }] }, { generation: 3 });

  it('targets only running, injected, non-terminating pods and reports Active', () => {
    const s = status(p, cluster(), T0 + 1000);
    assert.deepEqual(s.targets, ['web-a', 'web-b']);
    assert.equal(s.targetedPods, 2);
    assert.equal(s.tenant, 'shop');
    assert.equal(s.faults, 'http.delay');
    assert.equal(s.startedAt, new Date(T0 + 1000).toISOString());
    assert.equal(s.expiresAt, new Date(T0 + 1000 + 600_000).toISOString());
    assert.equal(s.observedGeneration, 3);
    assert.equal(cond(s, 'Active')?.status, 'True');
    assert.equal(cond(s, 'Admitted')?.status, 'True');
  });

  it('keeps startedAt and lastTransitionTime across reconciles; only a flip moves the time', () => {
    const c = cluster();
    const first = status(p, c, T0 + 1000);
    const again = status({ ...p, status: first }, c, T0 + 5000);
    assert.equal(statusChanged(first, again), false, 'nothing changed: nothing to write');
    const paused = status({ ...p, spec: { ...p.spec, paused: true }, status: first }, c, T0 + 9000);
    assert.equal(statusChanged(first, paused), true);
    assert.equal(cond(paused, 'Paused')?.lastTransitionTime, new Date(T0 + 9000).toISOString());
    assert.equal(cond(paused, 'Admitted')?.lastTransitionTime, cond(first, 'Admitted')?.lastTransitionTime);
    assert.equal(paused.startedAt, first.startedAt);
    assert.equal(cond(paused, 'Active')?.reason, 'Paused');
  });

  it('expires at startedAt + duration and clears the targets', () => {
    const c = cluster();
    const first = status(p, c, T0);
    assert.equal(cond(status({ ...p, status: first }, c, T0 + 599_999), 'Expired')?.status, 'False');
    const expired = status({ ...p, status: first }, c, T0 + 600_000);
    assert.equal(cond(expired, 'Expired')?.status, 'True');
    assert.deepEqual(expired.targets, []);
    assert.deepEqual(statusEvents(p, first, expired, []).map((e) => e.reason), ['Expired']);
  });

  it('stops a policy its tenant no longer allows', () => {
    const c = cluster();
    const first = status(p, c, T0);
    c.tenantList = [tenant({ kinds: ['http.abort'] })];
    const denied = status({ ...p, status: first }, c, T0 + 1000);
    assert.equal(cond(denied, 'Admitted')?.status, 'False');
    assert.match(cond(denied, 'Admitted')!.message!, /does not allow http\.delay/);
    assert.deepEqual(denied.targets, []);
    assert.deepEqual(statusEvents(p, first, denied, []).map((e) => `${e.type}/${e.reason}`), ['Warning/NotAdmitted']);
  });

  it('emits Started on activation and TargetsChanged when the radius moves', () => {
    const c = cluster();
    const first = status(p, c, T0);
    assert.deepEqual(statusEvents(p, undefined, first, c.pods('shop')).map((e) => e.reason), ['Started']);
    c.podList = c.podList.filter((x) => x.name !== 'web-b');
    const fewer = status({ ...p, status: first }, c, T0 + 1000);
    const events = statusEvents(p, first, fewer, c.pods('shop'));
    assert.deepEqual(events.map((e) => e.reason), ['TargetsChanged']);
    assert.match(events[0]!.message, /targets now web-a \(were web-a, web-b\)/);
  });

  it('warns that targets without the policy’s kernel faults need a restart', () => {
    const net = policy({ selector: web, network: { loss: { percent: 5 } } }, { name: 'net' });
    const c = cluster();
    c.podList.find((x) => x.name === 'web-a')!.kernelChaosIds = ['shop/net'];
    const s = status(net, c, T0);
    const warning = statusEvents(net, undefined, s, c.pods('shop')).find((e) => e.reason === 'RestartRequired');
    assert.equal(warning?.type, 'Warning');
    assert.match(warning!.message, /restart web-b/);
  });

  it('prefers pods started with the policy’s kernel faults, then keeps previous targets', () => {
    const c = cluster();
    for (const name of ['web-c', 'web-d', 'web-e']) c.withPod(name, { app: 'web' });
    const one = policy({ selector: web, mode: { type: 'fixed', value: 2 }, network: { loss: { percent: 5 } } }, { name: 'net' });
    c.podList.find((x) => x.name === 'web-d')!.kernelChaosIds = ['shop/net'];
    const spec = preparePolicy(one)!.spec;
    const picked = chooseTargets(one, spec, c.pods('shop'), undefined);
    assert.equal(picked.length, 2);
    assert.ok(picked.includes('web-d'), `the carrier is a target: ${picked.join(', ')}`);
    const other = picked.find((n) => n !== 'web-d')!;
    // Stable: a previous non-carrier target stays while it still qualifies.
    const withPrevious = { ...one, status: { targets: picked } };
    assert.deepEqual(chooseTargets(withPrevious, spec, c.pods('shop'), undefined), picked);
    assert.ok(['web-a', 'web-b', 'web-c', 'web-e'].includes(other));
  });
});
