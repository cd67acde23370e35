// POST /validate/chaospolicies: the admission verdict of policies/verdict.ts
// over the cached cluster view, turned into an AdmissionResponse that kubectl
// prints as "admission webhook "chaospolicies.faultline.dev" denied the
// request: <message>".
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from '../common/log.ts';
import { durationMs } from '../policies/duration.ts';
import { isTerminating, policyExpiresAt, type PreparedPolicy } from '../policies/planner.ts';
import { maySharePods, stackedDelaysOver } from '../policies/pod-limits.ts';
import { matchesSelector } from '../policies/selection.ts';
import type { ChaosPolicySpec, ChaosTenant } from '../policies/types.ts';
import { child, index } from '../policies/field-error.ts';
import { reviewPolicy, reviewVerdict } from '../policies/verdict.ts';
import type { AdmissionRequest, AdmissionVerdict, Handler } from './admission.ts';
import type { ClusterView } from './cache/cluster-cache.ts';
import { isLive } from './kernel-plans.ts';
import { pausedBy, pausedDenial } from './pause.ts';

export interface ValidatorDeps {
  /** Undefined when the webhook runs without cluster access. */
  cluster: ClusterView | undefined;
  log: Logger;
  /** Counts a denial by the tenant that owns the namespace ("" when none does); why: paused, allowlist, stacking. */
  denied?: (tenant: string, why: 'paused' | 'allowlist' | 'stacking') => void;
}

/** What every policy write gets while the webhook cannot see the cluster: fail closed. */
export const NO_CLUSTER_VIEW =
  'the Faultline webhook has no cluster view (started without --kubeconfig and outside a cluster), so it cannot check policies against tenants; refusing';

export function deny(message: string): AdmissionVerdict {
  return { allowed: false, status: { code: 403, reason: 'Forbidden', message } };
}

/** Requests a validator does not judge: other kinds, subresources, deletes, objects being deleted. */
export function outOfScope(request: AdmissionRequest, resource: string): boolean {
  return (
    request.resource.resource !== resource ||
    // status is the reconciler's (and the webhook configuration does not send it); never block it.
    (request.subResource ?? '') !== '' ||
    (request.operation !== 'CREATE' && request.operation !== 'UPDATE') ||
    // Finalizers coming off a deleted object (the configuration's matchConditions skip these too).
    (request.object as { metadata?: { deletionTimestamp?: unknown } } | undefined)?.metadata?.deletionTimestamp != null
  );
}

export function createPolicyValidator(deps: ValidatorDeps): Handler {
  const { log } = deps;
  return async (request) => {
    if (outOfScope(request, 'chaospolicies')) return { allowed: true, result: 'ignored' };
    const cluster = deps.cluster;
    if (!cluster) return deny(NO_CLUSTER_VIEW);
    const namespaceName = request.namespace ?? '';
    const policyName = request.name ?? '';

    if (request.operation === 'UPDATE' && onlyStopsOrKeepsFaults(request.oldObject, request.object)) {
      // Metadata edits (labels, finalizers during deletion) and pausing must work
      // even when the tenant has tightened since the policy was admitted:
      // otherwise the kill switch would be refused by the very rules it obeys.
      return { allowed: true };
    }

    const sw = pausedBy(cluster, namespaceName);
    if (sw !== undefined) {
      log.info({ namespace: namespaceName, policy: policyName, user: request.userInfo.username, operation: request.operation, switch: sw }, 'policy denied: paused');
      deps.denied?.(admittedTenant(cluster, namespaceName), 'paused');
      return deny(pausedDenial(sw));
    }
    const namespace = cluster.namespace(namespaceName) ?? { name: namespaceName };
    // Validated and defaulted once here; the checks below read the same result.
    const review = reviewPolicy(request.object);
    // The owner as the cache resolved it, among tenants it validated on arrival.
    const admitted = cluster.admittedPolicies(namespaceName);
    const { owner } = admitted;
    const verdict = reviewVerdict(review, namespace, owner, { username: request.userInfo.username ?? '', groups: request.userInfo.groups ?? [] });
    const context = { namespace: namespaceName, policy: policyName, user: request.userInfo.username, operation: request.operation, uid: request.uid };
    if (!verdict.allowed) {
      log.info({ ...context, tenant: verdict.tenant, dryRun: request.dryRun === true, reason: verdict.message }, 'policy denied');
      deps.denied?.(verdict.tenant ?? '', 'allowlist');
      return { ...deny(verdict.message), warnings: verdict.warnings };
    }
    // Allowed: the owner is a tenant, the one the verdict names.
    const stacked = stackingDenial(review.prepared, 'tenant' in owner ? owner.tenant : undefined, admitted.policies);
    if (stacked !== undefined) {
      log.info({ ...context, tenant: verdict.tenant, dryRun: request.dryRun === true, reason: stacked }, 'policy denied: stacks over a limit');
      deps.denied?.(verdict.tenant ?? '', 'stacking');
      return { ...deny(stacked), warnings: verdict.warnings };
    }
    const warnings = [...verdict.warnings, ...selectionWarnings(review.prepared, namespaceName, cluster)];
    log.info({ ...context, tenant: verdict.tenant, faults: verdict.faults, dryRun: request.dryRun === true }, 'policy admitted');
    return { allowed: true, warnings };
  };
}

/** The one tenant owning the namespace among the valid ones, as the verdict resolves it, or "" (a denials-by-tenant label). */
function admittedTenant(cluster: ClusterView, namespace: string): string {
  const { owner } = cluster.admittedPolicies(namespace);
  return 'tenant' in owner ? owner.tenant.metadata?.name ?? '' : '';
}

/** An UPDATE that leaves the spec as it was, or only pauses it. */
function onlyStopsOrKeepsFaults(oldObject: unknown, newObject: unknown): boolean {
  const spec = (o: unknown): ChaosPolicySpec | undefined => (o as { spec?: ChaosPolicySpec } | undefined)?.spec;
  const before = spec(oldObject);
  const after = spec(newObject);
  if (before === undefined || after === undefined) return false;
  if (isDeepStrictEqual(before, after)) return true;
  return after.paused === true && isDeepStrictEqual({ ...before, paused: true }, after);
}

/**
 * Limits hold per pod (issue 13 L1): the candidate's TCP delays, chained with
 * those of every admitted, unexpired policy of its namespace (`admitted`, the
 * cache's list the verdict's owner came with) that can reach the same pods,
 * must stay within the tenant's maxDelay.
 */
function stackingDenial(candidate: PreparedPolicy | undefined, tenant: ChaosTenant | undefined, admitted: readonly PreparedPolicy[], now = Date.now()): string | undefined {
  const maxDelay = tenant?.spec.allow.limits?.maxDelay;
  if (maxDelay === undefined || candidate === undefined || candidate.spec.tcp.length === 0) return undefined;
  const { policy } = candidate;
  const others = admitted.filter((p) => p.policy.metadata.name !== policy.metadata.name && !isTerminating(p.policy) && (policyExpiresAt(p.policy) ?? 0) > now);
  const over = stackedDelaysOver([...maySharePods(candidate.spec.selector, others), candidate], durationMs(maxDelay)).filter(
    (s): s is typeof s & { candidateIndex: number } => s.candidateIndex !== undefined && s.chaosIds.length > 1,
  );
  if (over.length === 0) return undefined;
  return `tenant "${tenant?.metadata.name}": ${over
    .map((s) => `${index(child('spec', 'tcp'), s.candidateIndex)} ${s.what} on ${s.upstream} (${s.stream}) adds up to ${s.totalMs}ms with ${s.chaosIds.slice(0, -1).join(', ')}, which can reach the same pods, exceeding the tenant maximum of ${maxDelay} (Toxiproxy chains every toxic on one upstream)`)
    .join('; ')}`;
}

/** Soft problems the author should hear about now rather than find in the status later. */
function selectionWarnings(prepared: PreparedPolicy | undefined, namespace: string, cluster: ClusterView): string[] {
  if (prepared === undefined) return [];
  const { spec } = prepared;
  const live = cluster.pods(namespace).filter(isLive);
  const matching = live.filter((p) => matchesSelector(spec.selector, p.labels));
  if (matching.length === 0) return [`spec.selector matches no pod in namespace "${namespace}" yet; the policy targets matching pods as they appear`];
  if (!matching.some((p) => p.injected))
    return [`none of the ${matching.length} pod(s) spec.selector matches in namespace "${namespace}" has the faultline proxy; restart them to inject it`];
  return [];
}
