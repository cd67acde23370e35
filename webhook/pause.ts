// The pause switches as the webhook reads them from its cluster cache: while
// one holds a namespace, policy writes there are denied naming it and pods
// admitted there get no kernel faults (sidecars and faultline-kernel watch
// the same switches themselves; policies/switches.ts).
import { clusterPaused, CLUSTER_SWITCH_NAMESPACE, namespacePausedBy } from '../policies/switches.ts';
import type { ClusterView } from './cache/cluster-cache.ts';

export function pausedBy(cluster: ClusterView, namespace: string): string | undefined {
  const system = cluster.namespace(CLUSTER_SWITCH_NAMESPACE);
  return namespacePausedBy(clusterPaused(system?.annotations), cluster.tenants(), cluster.namespace(namespace) ?? { name: namespace });
}

export function pausedDenial(sw: string): string {
  return `chaos is paused by ${sw}: new and changed ChaosPolicies are refused until it is resumed (faultline resume)`;
}
