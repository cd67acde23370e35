// The brakes: which switch, if any, holds a policy's faults off right now.
//
// Two switches besides a policy's own spec.paused:
//   - per tenant: ChaosTenant.spec.paused;
//   - cluster-wide: the annotation faultline.dev/paused on the Namespace
//     faultline-system.
//
// Why a Namespace annotation for the cluster-wide switch: the Namespace is
// cluster-scoped, exists wherever Faultline is installed, is read by no
// admission webhook of ours (so the switch can be thrown while the webhook is
// down or failing closed) and needs no new CRD. Sidecars read that one object
// (RBAC resourceNames: [faultline-system]) and nothing else of the cluster's
// namespaces. Setting it needs `patch namespaces`, which only cluster admins
// hold — the right audience for a cluster-wide brake.
//
// Fail-safe reading: the annotation pauses unless its value is exactly
// "false", so a typo brakes rather than lets chaos run.
import { ownsNamespace } from './tenancy.ts';
import type { ChaosPolicy, ChaosTenant } from './types.ts';
import { SYSTEM_NAMESPACE } from './wellknown.ts';

export const PAUSE_ANNOTATION = 'faultline.dev/paused';
export const CLUSTER_SWITCH_NAMESPACE = SYSTEM_NAMESPACE;
export const CLUSTER_SWITCH = `the cluster-wide switch (annotation ${PAUSE_ANNOTATION} on Namespace ${CLUSTER_SWITCH_NAMESPACE})`;

export interface Switches {
  /** The cluster-wide switch is on. */
  cluster: boolean;
  /** Names of tenants whose spec.paused is true. */
  pausedTenants: ReadonlySet<string>;
  /** Paused tenants' explicitly listed namespaces → tenant (the sidecar cannot read namespace labels). */
  pausedNamespaces: ReadonlyMap<string, string>;
}

export const NO_SWITCHES: Switches = Object.freeze({ cluster: false, pausedTenants: new Set<string>(), pausedNamespaces: new Map<string, string>() });

/** The cluster-wide switch from the annotations of Namespace faultline-system. */
export function clusterPaused(annotations: Readonly<Record<string, string>> | undefined): boolean {
  const v = annotations?.[PAUSE_ANNOTATION];
  return v !== undefined && v.trim().toLowerCase() !== 'false';
}

export function switchesFrom(systemNamespaceAnnotations: Readonly<Record<string, string>> | undefined, tenants: readonly ChaosTenant[]): Switches {
  const paused = tenants.filter((t) => t.spec?.paused === true);
  return {
    cluster: clusterPaused(systemNamespaceAnnotations),
    pausedTenants: new Set(paused.map((t) => t.metadata?.name ?? '')),
    pausedNamespaces: new Map(paused.flatMap((t) => (t.spec.namespaces ?? []).map((ns): [string, string] => [ns, t.metadata?.name ?? '']))),
  };
}

export function tenantSwitch(name: string): string {
  return `ChaosTenant "${name}" spec.paused`;
}

/**
 * The switch holding faults in `namespace` off, by tenant name (the policy's
 * status.tenant, or the namespace's owner) and by explicit namespace listing;
 * undefined when none does.
 */
export function pausingSwitch(switches: Switches, namespace: string, tenant: string | undefined): string | undefined {
  if (switches.cluster) return CLUSTER_SWITCH;
  if (tenant !== undefined && switches.pausedTenants.has(tenant)) return tenantSwitch(tenant);
  const owner = switches.pausedNamespaces.get(namespace);
  return owner !== undefined ? tenantSwitch(owner) : undefined;
}

/** The switch holding this policy off, judged as a sidecar can (status.tenant, listed namespaces). */
export function policyPausedBy(policy: ChaosPolicy, switches: Switches): string | undefined {
  return pausingSwitch(switches, policy.metadata.namespace ?? '', policy.status?.tenant);
}

/** As the webhook judges it, with every tenant and the namespace's labels at hand. */
export function namespacePausedBy(clusterIsPaused: boolean, tenants: readonly ChaosTenant[], namespace: { name: string; labels?: Readonly<Record<string, string>> }): string | undefined {
  if (clusterIsPaused) return CLUSTER_SWITCH;
  const owner = tenants.find((t) => t.spec?.paused === true && ownsNamespace(t, namespace));
  return owner ? tenantSwitch(owner.metadata?.name ?? '') : undefined;
}
