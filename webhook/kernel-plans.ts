// What a pod under admission gets from its namespace's policies, read from the
// cluster cache: the kernel faults (network/io/time) fixed at its start, and
// the outbound upstreams its policies fault, which must be wired now for the
// proxy to see that traffic at all.
import type { V1Pod } from '@kubernetes/client-node';
import { admitsNewPod } from '../policies/admission-radius.ts';
import { applyDefaults, type DefaultedPolicySpec } from '../policies/defaults.ts';
import { chaosIdOf, kernelPlanFor } from '../policies/plan.ts';
import { matchesSelector } from '../policies/selection.ts';
import { tenantForNamespace } from '../policies/tenancy.ts';
import type { ChaosPolicy, KernelFaultPlan } from '../policies/types.ts';
import { validatePolicy } from '../policies/validate.ts';
import type { ClusterView, PodMeta } from './cache/cluster-cache.ts';
import { pausedBy } from './pause.ts';
import type { Upstream } from './wiring.ts';

/** What a pod under admission gets from its namespace's policies. */
export interface PodPolicyPlan {
  kernel: KernelFaultPlan;
  outbound: Upstream[];
}

export interface PolicyPlanner {
  planFor(pod: V1Pod, namespace: string): PodPolicyPlan;
}

/** A live pod: counts towards blast radii (not finished, not being deleted). */
export function isLive(p: PodMeta): boolean {
  return p.deletionTimestamp === undefined && p.phase !== 'Succeeded' && p.phase !== 'Failed';
}

/** Network, io or time faults: fixed at pod start, so they reach running pods only on restart. */
export function hasKernelFaults(policy: ChaosPolicy): boolean {
  return policy.spec.network !== undefined || (policy.spec.io?.length ?? 0) > 0 || policy.spec.time !== undefined;
}

/** A valid policy of the namespace whose selector matches the pod, with its defaulted spec. */
interface Selecting {
  policy: ChaosPolicy;
  spec: DefaultedPolicySpec;
}

export function createPolicyPlanner(cluster: ClusterView, now: () => number = Date.now): PolicyPlanner {
  const kernelPlan = (pod: V1Pod, namespace: string, selecting: readonly Selecting[]): KernelFaultPlan => {
    const policies = selecting.filter((s) => hasKernelFaults(s.policy));
    // A pod admitted while a switch holds its namespace starts with no kernel faults (they could not be lifted live).
    if (policies.length === 0 || pausedBy(cluster, namespace) !== undefined) return { io: [] };
    const ns = cluster.namespace(namespace) ?? { name: namespace };
    const owner = tenantForNamespace(ns, cluster.tenants());
    const maxPodPercent = 'tenant' in owner ? owner.tenant.spec.allow.limits?.maxPodPercent : undefined;
    const podName = pod.metadata?.name;
    const others = cluster.pods(namespace).filter((p) => isLive(p) && p.name !== podName);
    // plan.ts gives kernel faults to `all` policies and to pods already in
    // status.targets. The first-come radius decided here is handed to it as
    // an `all` view of the policy, for this one pod only.
    const effective = policies.map(({ policy, spec }): ChaosPolicy => {
      if (spec.mode.type === 'all') return policy;
      const matching = others.filter((p) => matchesSelector(spec.selector, p.labels));
      const admitted = admitsNewPod({ chaosId: chaosIdOf(policy), mode: spec.mode, ...(maxPodPercent !== undefined ? { maxPodPercent } : {}), matching });
      return admitted ? { ...policy, spec: { ...policy.spec, mode: { type: 'all' } } } : policy;
    });
    return kernelPlanFor({ ...pod, metadata: { ...pod.metadata, namespace } } as Parameters<typeof kernelPlanFor>[0], effective, now());
  };

  const outbound = (selecting: readonly Selecting[]): Upstream[] => {
    const upstreams: Upstream[] = [];
    for (const { spec } of selecting) {
      for (const f of spec.http) {
        const { host, port } = f.match;
        if (f.direction === 'outbound' && host !== undefined && port !== undefined) upstreams.push({ host, port });
      }
      for (const f of spec.tcp) if (f.host !== undefined) upstreams.push({ host: f.host, port: f.port });
    }
    return upstreams;
  };

  return {
    planFor(pod, namespace) {
      // The valid policies of the namespace whose selector matches the pod,
      // found once per review for both plans.
      const labels = pod.metadata?.labels ?? {};
      const selecting = cluster
        .policies(namespace)
        .filter((policy) => validatePolicy(policy).length === 0)
        .map((policy) => ({ policy, spec: applyDefaults(policy.spec) }))
        .filter(({ spec }) => matchesSelector(spec.selector, labels));
      return { kernel: kernelPlan(pod, namespace, selecting), outbound: outbound(selecting) };
    },
  };
}
