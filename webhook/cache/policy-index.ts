// ChaosPolicies and ChaosTenants as admission reads them: each converted once
// on arrival (validated, defaulted), remembered by generation so a status
// write — the reconciler's, many per policy — costs no re-validation, and per
// namespace the policies the owning tenant CURRENTLY admits, recomputed only
// after a policy, tenant or namespace changed. A pod review then reads a
// ready list: its cost does not grow with its neighbours' policy sizes.
import { GenerationMemo } from '../../policies/generation-memo.ts';
import type { DefaultedPolicySpec } from '../../policies/defaults.ts';
import { preparePolicy, type PreparedPolicy } from '../../policies/planner.ts';
import { matchesSelector } from '../../policies/selection.ts';
import { tenantForNamespace, type NamespaceInfo, type Ownership } from '../../policies/tenancy.ts';
import type { ChaosPolicy, ChaosTenant } from '../../policies/types.ts';
import { validateTenant } from '../../policies/validate.ts';
import { judgeValidPolicy } from '../../policies/verdict.ts';

/** A policy as stored in the cache: the object, and its prepared form when valid. */
export interface CachedPolicy {
  policy: ChaosPolicy;
  prepared: PreparedPolicy | undefined;
}

export interface CachedTenant {
  tenant: ChaosTenant;
  valid: boolean;
}

/** What a namespace's pods may get: policies the owner admits now, and the owner's pod ceiling. */
export interface AdmittedPolicies {
  /** The one owner among the valid tenants, or why there is none; a policy write there is judged against it too. */
  owner: Ownership;
  policies: readonly PreparedPolicy[];
  maxPodPercent?: number;
}

const NONE: readonly PreparedPolicy[] = Object.freeze([]);

/**
 * The policies of `ns` its one owning tenant admits under its current
 * allowlist (no author check: that was the policy write's). No owner, several
 * owners, or a namespace not opted in: none.
 */
export function admittedIn(ns: NamespaceInfo, validTenants: readonly ChaosTenant[], policies: readonly CachedPolicy[]): AdmittedPolicies {
  const owner = tenantForNamespace(ns, validTenants);
  const admitted: PreparedPolicy[] = [];
  for (const { prepared } of policies) {
    if (prepared && admits(prepared.spec, ns, owner)) admitted.push(prepared);
  }
  if (admitted.length === 0 || 'error' in owner) return { owner, policies: NONE };
  const maxPodPercent = owner.tenant.spec.allow.limits?.maxPodPercent;
  return { owner, policies: admitted, ...(maxPodPercent !== undefined ? { maxPodPercent } : {}) };
}

/**
 * The verdict on a policy generation's spec (the memo's, one object per
 * generation), kept while the namespace and owning tenant are the same
 * objects: the cache replaces an object on every change, so a new one is a
 * new question. A status write re-lists the namespace without re-judging it:
 * 0.008-0.011 of the time for ten 16+4-rule policies (npm run bench:planner).
 */
const verdicts = new WeakMap<DefaultedPolicySpec, { ns: NamespaceInfo; tenant: ChaosTenant; allowed: boolean }>();

function admits(spec: DefaultedPolicySpec, ns: NamespaceInfo, owner: Ownership): boolean {
  if ('error' in owner) return false;
  const hit = verdicts.get(spec);
  if (hit && hit.ns === ns && hit.tenant === owner.tenant) return hit.allowed;
  const allowed = judgeValidPolicy(spec, ns, owner, undefined).allowed;
  verdicts.set(spec, { ns, tenant: owner.tenant, allowed });
  return allowed;
}

/** Converts on arrival, once per (object, generation). */
export class PolicyIndex {
  readonly #policies = new GenerationMemo<PreparedPolicy | undefined>();
  readonly #tenants = new GenerationMemo<boolean>();
  /** Bumped by every tenant or namespace change; per namespace by its policy changes. */
  #clusterRevision = 0;
  readonly #namespaceRevisions = new Map<string, number>();
  readonly #admitted = new Map<string, { cluster: number; namespace: number; value: AdmittedPolicies }>();

  convertPolicy(policy: ChaosPolicy): CachedPolicy {
    const prepared = this.#policies.get(policy, () => preparePolicy(policy));
    // The memo holds the spec of this generation; the object (status, deletionTimestamp) is always the newest.
    return { policy, prepared: prepared && { ...prepared, policy } };
  }

  convertTenant(tenant: ChaosTenant): CachedTenant {
    return { tenant, valid: this.#tenants.get(tenant, () => validateTenant(tenant).length === 0) };
  }

  /** Call after the store changed (and on delete, so the memo does not outlive the object). */
  changed(kind: 'namespaces' | 'chaostenants' | 'chaospolicies', type: 'added' | 'modified' | 'deleted', namespace: string, name: string): void {
    if (kind === 'chaospolicies') {
      this.#namespaceRevisions.set(namespace, (this.#namespaceRevisions.get(namespace) ?? 0) + 1);
      if (type === 'deleted') this.#policies.delete(namespace, name);
      return;
    }
    this.#clusterRevision++;
    if (kind === 'chaostenants' && type === 'deleted') this.#tenants.delete('', name);
    if (kind === 'namespaces' && type === 'deleted') {
      this.#namespaceRevisions.delete(name);
      this.#admitted.delete(name);
    }
  }

  /** `admittedIn`, recomputed only when something it reads has changed since the last call. */
  admitted(namespace: string, read: () => AdmittedPolicies): AdmittedPolicies {
    const revision = { cluster: this.#clusterRevision, namespace: this.#namespaceRevisions.get(namespace) ?? 0 };
    const memo = this.#admitted.get(namespace);
    if (memo && memo.cluster === revision.cluster && memo.namespace === revision.namespace) return memo.value;
    const value = read();
    this.#admitted.set(namespace, { ...revision, value });
    return value;
  }
}

/** Per admitted list: policies by the first matchLabels pair of their selector, and those without one. */
const labelIndexes = new WeakMap<Pick<AdmittedPolicies, 'policies'>, { unindexed: number[]; byLabel: Map<string, number[]> }>();

/**
 * The admitted policies whose selector matches `labels`, in list order. An
 * inverted index on one matchLabels pair per policy means a review looks only
 * at policies that could match, not at every neighbour's.
 */
export function selectingPolicies(admitted: Pick<AdmittedPolicies, 'policies'>, labels: Readonly<Record<string, string>>): PreparedPolicy[] {
  let index = labelIndexes.get(admitted);
  if (!index) {
    index = { unindexed: [], byLabel: new Map() };
    admitted.policies.forEach((p, i) => {
      const first = Object.entries(p.spec.selector.matchLabels ?? {})[0];
      if (!first) index!.unindexed.push(i);
      else {
        const key = `${first[0]}=${first[1]}`;
        index!.byLabel.set(key, [...(index!.byLabel.get(key) ?? []), i]);
      }
    });
    labelIndexes.set(admitted, index);
  }
  const candidates = [...index.unindexed];
  for (const [k, v] of Object.entries(labels)) candidates.push(...(index.byLabel.get(`${k}=${v}`) ?? []));
  return candidates
    .sort((a, b) => a - b)
    .map((i) => admitted.policies[i]!)
    .filter((p) => matchesSelector(p.spec.selector, labels));
}
