// What a pod under admission gets from its namespace's policies, read from the
// cluster cache: the kernel faults (network/io/time) fixed at its start, and
// the outbound upstreams its policies fault, which must be wired now for the
// proxy to see that traffic at all.
import type { V1Pod } from '@kubernetes/client-node';
import { admitsNewPod } from '../policies/admission-radius.ts';
import { applyDefaults } from '../policies/defaults.ts';
import { chaosIdOf, kernelPlanFor } from '../policies/plan.ts';
import { matchesSelector } from '../policies/selection.ts';
import { tenantForNamespace } from '../policies/tenancy.ts';
import type { ChaosPolicy, KernelFaultPlan } from '../policies/types.ts';
import { validatePolicy } from '../policies/validate.ts';
import type { ClusterView, PodMeta } from './cache/cluster-cache.ts';
import type { Upstream } from './wiring.ts';

export interface PolicyPlanner {
  kernelPlanFor(pod: V1Pod, namespace: string): KernelFaultPlan;
  outboundFor(pod: V1Pod, namespace: string): Upstream[];
}

/** A live pod: counts towards blast radii (not finished, not being deleted). */
export function isLive(p: PodMeta): boolean {
  return p.deletionTimestamp === undefined && p.phase !== 'Succeeded' && p.phase !== 'Failed';
}

/** Network, io or time faults: fixed at pod start, so they reach running pods only on restart. */
export function hasKernelFaults(policy: ChaosPolicy): boolean {
  return policy.spec.network !== undefined || (policy.spec.io?.length ?? 0) > 0 || policy.spec.time !== undefined;
}

export function createPolicyPlanner(cluster: ClusterView, now: () => number = Date.now): PolicyPlanner {
  /** The valid policies of the namespace whose selector matches the pod. */
  const selecting = (pod: V1Pod, namespace: string): ChaosPolicy[] => {
    const labels = pod.metadata?.labels ?? {};
    return cluster.policies(namespace).filter((p) => validatePolicy(p).length === 0 && matchesSelector(applyDefaults(p.spec).selector, labels));
  };

  return {
    kernelPlanFor(pod, namespace) {
      const policies = selecting(pod, namespace).filter(hasKernelFaults);
      if (policies.length === 0) return { io: [] };
      const ns = cluster.namespace(namespace) ?? { name: namespace };
      const owner = tenantForNamespace(ns, cluster.tenants());
      const maxPodPercent = 'tenant' in owner ? owner.tenant.spec.allow.limits?.maxPodPercent : undefined;
      const podName = pod.metadata?.name;
      const others = cluster.pods(namespace).filter((p) => isLive(p) && p.name !== podName);
      // plan.ts gives kernel faults to `all` policies and to pods already in
      // status.targets. The first-come radius decided here is handed to it as
      // an `all` view of the policy, for this one pod only.
      const effective = policies.map((policy): ChaosPolicy => {
        const spec = applyDefaults(policy.spec);
        if (spec.mode.type === 'all') return policy;
        const matching = others.filter((p) => matchesSelector(spec.selector, p.labels));
        const admitted = admitsNewPod({ chaosId: chaosIdOf(policy), mode: spec.mode, ...(maxPodPercent !== undefined ? { maxPodPercent } : {}), matching });
        return admitted ? { ...policy, spec: { ...policy.spec, mode: { type: 'all' } } } : policy;
      });
      return kernelPlanFor({ ...pod, metadata: { ...pod.metadata, namespace } } as Parameters<typeof kernelPlanFor>[0], effective, now());
    },

    outboundFor(pod, namespace) {
      const upstreams: Upstream[] = [];
      for (const policy of selecting(pod, namespace)) {
        const spec = applyDefaults(policy.spec);
        for (const f of spec.http) {
          const { host, port } = f.match;
          if (f.direction === 'outbound' && host !== undefined && port !== undefined) upstreams.push({ host, port });
        }
        for (const f of spec.tcp) if (f.host !== undefined) upstreams.push({ host: f.host, port: f.port });
      }
      return upstreams;
    },
  };
}
