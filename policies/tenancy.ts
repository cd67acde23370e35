// Which ChaosTenant owns a namespace, and the rule that no namespace has two
// owners: a policy's limits must come from exactly one tenant.

import { matchesSelector } from './selection.ts';
import type { ChaosTenant } from './types.ts';
import { NAMESPACE_NAME_LABEL } from './wellknown.ts';

export interface NamespaceInfo {
  name: string;
  labels?: Readonly<Record<string, string>>;
  /** Kept for the cluster-wide pause switch (policies/switches.ts) only. */
  annotations?: Readonly<Record<string, string>>;
}

export function ownsNamespace(tenant: ChaosTenant, ns: NamespaceInfo): boolean {
  if ((tenant.spec.namespaces ?? []).includes(ns.name)) return true;
  const selector = tenant.spec.namespaceSelector;
  // The apiserver labels every namespace with its name; offline callers may not.
  return selector !== undefined && matchesSelector(selector, { [NAMESPACE_NAME_LABEL]: ns.name, ...ns.labels });
}

export type Ownership = { tenant: ChaosTenant } | { error: string };

export function tenantForNamespace(ns: NamespaceInfo, tenants: readonly ChaosTenant[]): Ownership {
  const owners = tenants.filter((t) => ownsNamespace(t, ns));
  const [only] = owners;
  if (owners.length === 1 && only) return { tenant: only };
  if (owners.length === 0) return { error: `namespace "${ns.name}" belongs to no ChaosTenant` };
  return { error: `namespace "${ns.name}" is claimed by several ChaosTenants (${owners.map((t) => `"${t.metadata?.name}"`).join(', ')}); an admin must resolve the overlap` };
}

export interface TenantConflict {
  namespace: string;
  /** The other tenant that already owns the namespace. */
  tenant: string;
}

/**
 * Namespaces the candidate tenant would share with another: every namespace
 * listed by name (known or not yet created) and every known namespace either
 * selector matches.
 */
export function tenantConflicts(candidate: ChaosTenant, others: readonly ChaosTenant[], namespaces: readonly NamespaceInfo[]): TenantConflict[] {
  const known = new Map(namespaces.map((ns) => [ns.name, ns]));
  for (const name of [candidate, ...others].flatMap((t) => t.spec.namespaces ?? [])) {
    if (!known.has(name)) known.set(name, { name });
  }
  const conflicts: TenantConflict[] = [];
  for (const other of others) {
    if (other.metadata?.name === candidate.metadata?.name) continue;
    for (const ns of known.values()) {
      if (ownsNamespace(candidate, ns) && ownsNamespace(other, ns)) conflicts.push({ namespace: ns.name, tenant: other.metadata?.name ?? '' });
    }
  }
  return conflicts.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.tenant.localeCompare(b.tenant));
}

/** `ChaosTenant "web" would share namespaces with other tenants: "shop" (tenant "payments"), …` */
export function formatTenantConflicts(candidateName: string, conflicts: readonly TenantConflict[]): string {
  const list = conflicts.map((c) => `"${c.namespace}" (tenant "${c.tenant}")`).join(', ');
  return `ChaosTenant "${candidateName}" would share namespaces with other tenants: ${list}; a namespace belongs to at most one tenant`;
}
