// Issue 13 H2/M4: plans decide from the CURRENT state. A policy reaches a pod
// under admission only while its namespace's one owning tenant admits it
// now; terminating policies reach no plan; live plans trust status.targets
// only for the current generation. And the cache converts each policy once.
import assert from 'node:assert/strict';
import type { V1Pod } from '@kubernetes/client-node';
import { livePlanFor } from '../../policies/planner.ts';
import type { ChaosPolicy } from '../../policies/types.ts';
import { admittedIn, PolicyIndex, selectingPolicies } from '../../webhook/cache/policy-index.ts';
import { CHAOS_LABEL, CHAOS_LABEL_ENABLED } from '../../policies/wellknown.ts';
import { preparePolicy } from '../../policies/planner.ts';
import { createPolicyPlanner } from '../../webhook/kernel-plans.ts';
import { FakeCluster } from '../support/admission-cluster.ts';
import { policy, T0, tenant } from '../support/policies-fixtures.ts';

const newPod = (name?: string): V1Pod => ({ metadata: { ...(name ? { name } : { generateName: 'web-' }), labels: { app: 'web' } }, spec: { containers: [{ name: 'app', image: 'x' }] } });
const now = new Date().toISOString();
/** Privileged (network) and live (http outbound) faults, mode all: what alice's tenant allowed yesterday. */
const lossy = policy(
  {
    selector: { matchLabels: { app: 'web' } },
    network: { loss: { percent: 5 } },
    http: [{ direction: 'outbound', match: { host: 'payments', port: 8080 }, delay: { fixed: '1s' } }],
  },
  { name: 'lossy', creationTimestamp: now },
);
const allowing = (limits = {}) => tenant({ kinds: ['network.loss', 'http.delay'], privileged: true, limits });

function plan(c: FakeCluster, name?: string) {
  return createPolicyPlanner(c).planFor(newPod(name), 'shop');
}

describe('admission: plans decide from the current state (issue 13 H2/M4)', () => {
  it('gives a new pod the faults its tenant admits now', () => {
    const p = plan(new FakeCluster().withNamespace('shop').withTenant(allowing()).withPolicy(lossy));
    assert.equal(p.kernel.network?.chaosId, 'shop/lossy');
  });

  it('H2: gives nothing once the tenant revokes privileged kinds', () => {
    const revoked = tenant({ kinds: ['network.loss', 'http.delay'], privileged: false });
    const p = plan(new FakeCluster().withNamespace('shop').withTenant(revoked).withPolicy(lossy));
    assert.equal(p.kernel.network, undefined);
  });

  it('H2: gives nothing once the tenant is deleted, or while two tenants claim the namespace, or the chaos label is gone', () => {
    assert.equal(plan(new FakeCluster().withNamespace('shop').withPolicy(lossy)).kernel.network, undefined);
    const twin = { ...allowing(), metadata: { name: 'twin' } };
    assert.equal(plan(new FakeCluster().withNamespace('shop').withTenant(allowing()).withTenant(twin).withPolicy(lossy)).kernel.network, undefined);
    assert.equal(plan(new FakeCluster().withNamespace('shop', false).withTenant(allowing()).withPolicy(lossy)).kernel.network, undefined);
  });

  it('H2: a policy over a tightened limit stops reaching new pods', () => {
    const slow = policy({ selector: {}, network: { delay: { latency: '5s' } } }, { name: 'slow', creationTimestamp: now });
    const t = (maxDelay: string) => tenant({ kinds: ['network.delay'], privileged: true, limits: { maxDelay } });
    assert.ok(plan(new FakeCluster().withNamespace('shop').withTenant(t('10s')).withPolicy(slow)).kernel.network);
    assert.equal(plan(new FakeCluster().withNamespace('shop').withTenant(t('1s')).withPolicy(slow)).kernel.network, undefined);
  });

  it('M4: a terminating policy reaches neither the kernel plan nor the live plan', () => {
    const dying: ChaosPolicy = { ...lossy, metadata: { ...lossy.metadata, deletionTimestamp: now }, status: { targets: ['web-0'] } };
    const p = plan(new FakeCluster().withNamespace('shop').withTenant(allowing()).withPolicy(dying), 'web-0');
    assert.equal(p.kernel.network, undefined);
    const live = policy({ http: [{ delay: { fixed: '1s' } }] }, { deletionTimestamp: new Date(T0).toISOString() }, { targets: ['web-0'] });
    assert.deepEqual(livePlanFor('web-0', [live], T0 + 1).http, []);
  });

  it('live plan: status.targets counts only when it describes the current generation', () => {
    const p = (observedGeneration: number) => policy({ http: [{ delay: { fixed: '1s' } }] }, { generation: 3 }, { targets: ['web-0'], observedGeneration });
    assert.equal(livePlanFor('web-0', [p(3)], T0 + 1).http.length, 1);
    assert.deepEqual(livePlanFor('web-0', [p(2)], T0 + 1).http, []);
  });
});

describe('webhook cache: each policy converted once per generation (issue 11 item 5, issue 13 M3)', () => {
  it('keeps the validated, defaulted spec across status writes, and re-converts a new generation', () => {
    const index = new PolicyIndex();
    const v1 = policy({ http: [{ delay: { fixed: '1s' } }] }, { generation: 1 });
    const first = index.convertPolicy(v1);
    const statusWrite = index.convertPolicy({ ...v1, status: { targets: ['web-0'] } });
    assert.ok(first.prepared && statusWrite.prepared);
    assert.equal(statusWrite.prepared.spec, first.prepared.spec, 'same generation: the converted spec is reused');
    assert.deepEqual(statusWrite.prepared.policy.status, { targets: ['web-0'] }, 'the object itself is the newest');
    const v2 = index.convertPolicy({ ...v1, metadata: { ...v1.metadata, generation: 2 }, spec: { ...v1.spec, http: [{ delay: { fixed: '2s' } }] } });
    assert.equal(v2.prepared?.spec.http[0]?.delay?.fixed, '2s');
    assert.equal(index.convertPolicy({ ...v1, metadata: { ...v1.metadata, generation: 3 }, spec: { duration: 'soon' } }).prepared, undefined, 'an invalid generation is kept as invalid');
  });

  it('recomputes a namespace’s admitted policies only after a policy, tenant or namespace change', () => {
    const index = new PolicyIndex();
    let reads = 0;
    const read = () => (reads++, { owner: { error: 'no owner' }, policies: [] });
    index.admitted('shop', read);
    index.admitted('shop', read);
    assert.equal(reads, 1);
    index.changed('chaospolicies', 'modified', 'pay', 'x');
    index.admitted('shop', read);
    assert.equal(reads, 1, 'another namespace’s policy');
    for (const [kind, ns] of [['chaospolicies', 'shop'], ['chaostenants', ''], ['namespaces', '']] as const) {
      index.changed(kind, 'modified', ns, 'x');
      index.admitted('shop', read);
    }
    assert.equal(reads, 4);
  });

  it('judges a generation once per namespace and tenant object, and again for a new one of either', () => {
    const index = new PolicyIndex();
    const slow = policy({ network: { delay: { latency: '5s' } } }, { name: 'slow', generation: 1 });
    const limit = (maxDelay: string) => tenant({ kinds: ['network.delay'], privileged: true, limits: { maxDelay } });
    const [wide, narrow] = [limit('10s'), limit('1s')];
    const labelled = { name: 'shop', labels: { [CHAOS_LABEL]: CHAOS_LABEL_ENABLED } };
    const names = (ns: typeof labelled | { name: string }, t: typeof wide, p: ChaosPolicy) =>
      admittedIn(ns, [t], [index.convertPolicy(p)]).policies.map((a) => `${a.policy.metadata.name}:${JSON.stringify(a.policy.status ?? {})}`);
    assert.deepEqual(names(labelled, wide, slow), ['slow:{}']);
    assert.deepEqual(names(labelled, narrow, slow), [], 'a tightened tenant (a new object) is asked again');
    assert.deepEqual(names(labelled, wide, slow), ['slow:{}']);
    assert.deepEqual(names({ name: 'shop' }, wide, slow), [], 'so is a namespace whose chaos label is gone');
    const statusWrite = { ...slow, status: { targets: ['web-0'] } };
    assert.deepEqual(names(labelled, wide, statusWrite), ['slow:{"targets":["web-0"]}'], 'a status write: the same verdict, the newest object');
    const tighter = { ...slow, metadata: { ...slow.metadata, generation: 2 }, spec: { ...slow.spec, network: { delay: { latency: '20s' } } } };
    assert.deepEqual(names(labelled, wide, tighter), [], 'a new generation is judged on its own');
  });

  it('finds the policies selecting a pod through its labels, in list order, selectors without matchLabels included', () => {
    const p = (name: string, selector: object) => preparePolicy(policy({ selector, http: [{ delay: { fixed: '1s' } }] }, { name }))!;
    const policies = [
      p('all', {}),
      p('web', { matchLabels: { app: 'web' } }),
      p('api', { matchLabels: { app: 'api' } }),
      p('web-canary', { matchLabels: { app: 'web', track: 'canary' } }),
      p('expr', { matchExpressions: [{ key: 'app', operator: 'In', values: ['web'] }] }),
    ];
    const admitted = { policies };
    const names = (labels: Record<string, string>) => selectingPolicies(admitted, labels).map((x) => x.policy.metadata.name);
    assert.deepEqual(names({ app: 'web' }), ['all', 'web', 'expr']);
    assert.deepEqual(names({ app: 'web', track: 'canary' }), ['all', 'web', 'web-canary', 'expr']);
    assert.deepEqual(names({ app: 'db' }), ['all']);
  });
});
