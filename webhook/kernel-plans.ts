// What a pod under admission gets from its namespace's policies, read from the
// cluster cache: the kernel faults (network/io/time) fixed at its start.
import type { V1Pod } from '@kubernetes/client-node';
import { admitsNewPod } from '../policies/admission-radius.ts';
import type { KernelFaultPlan } from '../contract/plans.ts';
import { isTerminating, mergePreparedKernelPlan, type PodLike, type PreparedPolicy } from '../policies/planner.ts';
import { hasKernelFaults } from '../policies/faults.ts';
import { matchesSelector } from '../policies/selection.ts';
import type { ClusterView, PodMeta } from './cache/cluster-cache.ts';
import { pausedBy } from './pause.ts';
import { selectingPolicies } from './cache/policy-index.ts';

/** What a pod under admission gets from its namespace's policies. */
export interface PodPolicyPlan {
  kernel: KernelFaultPlan;
}

export interface PolicyPlanner {
  planFor(pod: V1Pod, namespace: string): PodPolicyPlan;
}

/** A live pod: counts towards blast radii (not finished, not being deleted). */
export function isLive(p: PodMeta): boolean {
  return p.deletionTimestamp === undefined && p.phase !== 'Succeeded' && p.phase !== 'Failed';
}

export function createPolicyPlanner(cluster: ClusterView, now: () => number = Date.now): PolicyPlanner {
  const kernelPlan = (pod: V1Pod, namespace: string, selecting: readonly PreparedPolicy[], maxPodPercent: number | undefined): KernelFaultPlan => {
    const policies = selecting.filter((p) => hasKernelFaults(p.spec));
    // A pod admitted while a switch holds its namespace starts with no kernel faults (they could not be lifted live).
    if (policies.length === 0 || pausedBy(cluster, namespace) !== undefined) return { io: [] };
    const podName = pod.metadata?.name;
    let others: PodMeta[] | undefined;
    // The first-come radius (admission-radius.ts) under the tenant's pod ceiling.
    const inRadius = ({ chaosId, spec }: PreparedPolicy): boolean => {
      // Mode all under no ceiling admits every pod: nothing to count (the namespace's pods are copied and scanned otherwise).
      if (spec.mode.type === 'all' && maxPodPercent === undefined) return true;
      others ??= cluster.pods(namespace).filter((p) => isLive(p) && p.name !== podName);
      return admitsNewPod({ chaosId, mode: spec.mode, ...(maxPodPercent !== undefined ? { maxPodPercent } : {}), matching: others.filter((p) => matchesSelector(spec.selector, p.labels)) });
    };
    return mergePreparedKernelPlan({ ...pod, metadata: { ...pod.metadata, namespace } } as PodLike, policies, now(), inRadius).plan;
  };

  return {
    planFor(pod, namespace) {
      // Only what the namespace's tenant admits now, as the cache converted it:
      // nothing is validated or defaulted here, and nothing is rewritten.
      const admitted = cluster.admittedPolicies(namespace);
      const selecting = selectingPolicies(admitted, pod.metadata?.labels ?? {}).filter(({ policy }) => !isTerminating(policy));
      const { maxPodPercent } = admitted;
      return { kernel: kernelPlan(pod, namespace, selecting, maxPodPercent) };
    },
  };
}
