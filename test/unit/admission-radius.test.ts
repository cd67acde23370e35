// Kernel faults at admission: the first-come blast radius, and the plan and
// wiring a pod under admission gets from the cached policies.
import assert from 'node:assert/strict';
import type { V1Pod } from '@kubernetes/client-node';
import { admitsNewPod } from '../../policies/admission-radius.ts';
import { createPolicyPlanner } from '../../webhook/kernel-plans.ts';
import { kernelChaosIds, planSummary } from '../../webhook/plan-annotation.ts';
import { FakeCluster } from '../support/admission-cluster.ts';
import { policy, tenant } from '../support/policies-fixtures.ts';

const carrying = (n: number, id = 'shop/p') => Array.from({ length: n }, () => ({ kernelChaosIds: [id] }));
const plain = (n: number) => Array.from({ length: n }, () => ({ kernelChaosIds: [] }));

describe('admission: kernel-fault blast radius for new pods', () => {
  it('one: only while no live matching pod carries the faults', () => {
    assert.equal(admitsNewPod({ chaosId: 'shop/p', mode: { type: 'one' }, matching: [] }), true);
    assert.equal(admitsNewPod({ chaosId: 'shop/p', mode: { type: 'one' }, matching: plain(3) }), true);
    assert.equal(admitsNewPod({ chaosId: 'shop/p', mode: { type: 'one' }, matching: [...carrying(1), ...plain(3)] }), false);
  });

  it('fixed: fills up to the count, counting only this policy’s carriers', () => {
    const mode = { type: 'fixed' as const, value: 2 };
    assert.equal(admitsNewPod({ chaosId: 'shop/p', mode, matching: [...carrying(1), ...carrying(3, 'shop/other')] }), true);
    assert.equal(admitsNewPod({ chaosId: 'shop/p', mode, matching: carrying(2) }), false);
  });

  it('fixed-percent: the radius is computed for n+1 pods, capped by maxPodPercent', () => {
    const mode = { type: 'fixed-percent' as const, value: 50 };
    // 3 live + the new one = 4 → radius 2.
    assert.equal(admitsNewPod({ chaosId: 'shop/p', mode, matching: [...carrying(1), ...plain(2)] }), true);
    assert.equal(admitsNewPod({ chaosId: 'shop/p', mode, matching: [...carrying(2), ...plain(1)] }), false);
    // The tenant's 25% ceiling over 4 pods is 1.
    assert.equal(admitsNewPod({ chaosId: 'shop/p', mode, maxPodPercent: 25, matching: [...carrying(1), ...plain(2)] }), false);
  });
});

describe('admission: policy plans for a pod under admission', () => {
  const newPod = (labels: Record<string, string>): V1Pod => ({ metadata: { generateName: 'web-', labels }, spec: { containers: [{ name: 'app', image: 'x' }] } });
  const netPolicy = policy(
    { selector: { matchLabels: { app: 'web' } }, mode: { type: 'one' }, network: { loss: { percent: 5 } } },
    { name: 'lossy', creationTimestamp: new Date().toISOString() },
  );
  // The tenant allows every kind used below: a pod gets only what its tenant admits now.
  const base = () => new FakeCluster().withNamespace('shop').withTenant(tenant({ kinds: ['network.loss', 'http.abort', 'http.delay', 'tcp.latency'], privileged: true })).withPolicy(netPolicy);

  it('gives the first matching pod the kernel faults of a `one` policy, and the next one not', () => {
    const c = base().withPod('web-a', { app: 'web' });
    const planner = createPolicyPlanner(c);
    assert.equal(planner.planFor(newPod({ app: 'web' }), 'shop').kernel.network?.chaosId, 'shop/lossy');
    c.podList[0]!.kernelChaosIds = ['shop/lossy'];
    assert.equal(planner.planFor(newPod({ app: 'web' }), 'shop').kernel.network, undefined);
    // A terminating carrier no longer holds its place.
    c.podList[0]!.deletionTimestamp = new Date().toISOString();
    assert.equal(planner.planFor(newPod({ app: 'web' }), 'shop').kernel.network?.chaosId, 'shop/lossy');
  });

  it('gives nothing to pods the selector does not match or in other namespaces', () => {
    const planner = createPolicyPlanner(base());
    assert.equal(planner.planFor(newPod({ app: 'api' }), 'shop').kernel.network, undefined);
    assert.equal(planner.planFor(newPod({ app: 'web' }), 'pay').kernel.network, undefined);
  });

  it('records the kernel chaos ids in the plan annotation and reads them back', () => {
    const kernel = createPolicyPlanner(base()).planFor(newPod({ app: 'web' }), 'shop').kernel;
    const summary = planSummary({ version: 'v', wiring: { proxyUid: 16337, capture: { inboundPort: 16006, outboundPort: 16001, proxyPorts: [], excludeInboundPorts: [], excludeInboundCidrs: [], excludeOutboundPorts: [], excludeOutboundCidrs: [] } }, kernel });
    assert.deepEqual(summary.chaos, ['shop/lossy']);
    assert.deepEqual(kernelChaosIds(JSON.stringify(summary)), ['shop/lossy']);
    assert.deepEqual(kernelChaosIds('not json'), []);
    assert.deepEqual(kernelChaosIds(undefined), []);
  });
});
