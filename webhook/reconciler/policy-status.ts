// What a ChaosPolicy's status should be, and which Events a status change is
// worth: pure functions of the policy, the cluster view and the clock, so the
// controller around them only reads the cache and writes results.
import { isDeepStrictEqual } from 'node:util';
import type { DefaultedPolicySpec } from '../../policies/defaults.ts';
import { hasKernelFaults } from '../../policies/faults.ts';
import { chaosIdOf, policyExpiresAt, type PreparedPolicy } from '../../policies/planner.ts';
import { matchesSelector, pickTargets, targetCount } from '../../policies/selection.ts';
import type { NamespaceInfo, Ownership } from '../../policies/tenancy.ts';
import { ABORT_REASON, describeAbort, type AbortNotice } from '../../policies/abort-notice.ts';
import type { ChaosPolicy, ChaosPolicyStatus, ChaosTenant, Condition, PolicyAbort } from '../../policies/types.ts';
import { ownerAmongValid, reviewPolicy, reviewVerdict, type PolicyReview } from '../../policies/verdict.ts';
import type { PodMeta } from '../cache/cluster-cache.ts';
import { isLive } from '../kernel-plans.ts';
import { policyPausedBy, switchesFrom } from '../../policies/switches.ts';
import { appliedSummary, type PodReportState } from './applied-status.ts';

export const CONDITION_TYPES = ['Admitted', 'Active', 'Applied', 'Paused', 'Expired', 'Aborted'] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

export interface StatusInput {
  policy: ChaosPolicy;
  namespace: NamespaceInfo | undefined;
  tenants: readonly ChaosTenant[];
  /** Pods of the policy's namespace. */
  pods: readonly PodMeta[];
  now: number;
  /** Steady-state abort notices naming this policy (any generation). */
  notices?: readonly AbortNotice[];
  /** What each pod's proxy last reported (datapath-reports.ts); absent: nothing read yet. */
  reports?: (pod: string) => PodReportState | undefined;
  /** Annotations of Namespace faultline-system (the cluster-wide switch). */
  clusterSwitch?: Readonly<Record<string, string>>;
  /** `policy` as the cache converted it (ClusterCache.preparedPolicy); absent or undefined: validated and defaulted here. */
  prepared?: PreparedPolicy | undefined;
  /** The namespace's owner among the valid tenants, as the cache resolved it (admittedPolicies(ns).owner); absent: resolved from `tenants`. */
  owner?: Ownership;
}

/**
 * The abort holding the policy's current generation: the one already in
 * status, else the earliest notice for this uid and generation. A person
 * resumes by changing the spec (a new generation).
 */
export function currentAbort(policy: ChaosPolicy, notices: readonly AbortNotice[]): PolicyAbort | undefined {
  const generation = policy.metadata.generation ?? 0;
  if (policy.status?.abort?.generation === generation) return policy.status.abort;
  const mine = notices.filter((n) => n.uid === policy.metadata.uid && n.abort.generation === generation);
  return mine.sort((a, b) => a.abort.at.localeCompare(b.abort.at))[0]?.abort;
}

/** A pod the sidecar contract can target: running, not leaving, with the proxy in it. */
export function isTargetable(p: PodMeta): boolean {
  return isLive(p) && p.phase === 'Running' && p.injected;
}

export function desiredStatus(input: StatusInput): ChaosPolicyStatus {
  const { policy, now } = input;
  const previous = policy.status ?? {};
  const namespace = input.namespace ?? { name: policy.metadata.namespace ?? '' };
  // A prepared policy is a valid one, and the status shows no warnings: nothing left to inspect.
  const review: PolicyReview = input.prepared ? { inspection: { errors: [], unknownFields: [] }, prepared: input.prepared } : reviewPolicy(policy);
  // No author here: who wrote the policy was checked at admission. Everything
  // else is re-checked, so a tenant tightened later stops policies it no longer allows.
  const owner = input.owner ?? ownerAmongValid(namespace, input.tenants);
  const verdict = reviewVerdict(review, namespace, owner, undefined);
  const admitted = verdict.allowed;
  const startedAt = previous.startedAt ?? (admitted ? new Date(now).toISOString() : undefined);
  const expiresAtMs = startedAt !== undefined ? policyExpiresAt({ ...policy, status: { startedAt } }) : undefined;
  const expired = expiresAtMs !== undefined && now >= expiresAtMs;
  const paused = policy.spec.paused === true;
  const abort = currentAbort(policy, input.notices ?? []);
  const maxPodPercent = verdict.tenant !== undefined && 'tenant' in owner ? owner.tenant.spec.allow.limits?.maxPodPercent : undefined;
  // Aborted: no pod is targeted, so every sidecar drops it even if it missed the notice.
  const spec = review.prepared?.spec;
  const targets = admitted && !expired && !abort && spec ? chooseTargets(policy, spec, input.pods, maxPodPercent) : [];

  const generation = policy.metadata.generation;
  const cond = (type: ConditionType, status: boolean, reason: string, message: string, tri?: Condition['status']): Condition =>
    condition(previous.conditions, { type, status: tri ?? (status ? 'True' : 'False'), reason, message, ...(generation !== undefined ? { observedGeneration: generation } : {}) }, now);
  const held = policyPausedBy({ ...policy, status: { ...previous, ...(verdict.tenant !== undefined ? { tenant: verdict.tenant } : {}) } }, switchesFrom(input.clusterSwitch, input.tenants));
  const targeting = admitted && !paused && !expired && !abort && held === undefined && targets.length > 0;
  const [offReason, offMessage] = !admitted ? ['NotAdmitted', 'the policy is not admitted'] : expired ? ['Expired', 'the duration has elapsed'] : abort ? ['Aborted', 'the steady-state guard aborted it']
    : paused ? ['Paused', 'spec.paused is true'] : held !== undefined ? ['Held', `${held} is on`] : ['NoTargets', 'no running, injected pod matches spec.selector'];
  const applied = appliedSummary(policy, targets, input.reports ?? (() => undefined), { on: targeting, reason: offReason, message: offMessage });
  // Never Active while the datapath of every targeted pod says nothing of it applies.
  const active = targeting && applied.condition.reason !== 'NotApplied';
  const conditions: Condition[] = [
    admitted ? cond('Admitted', true, 'Allowed', `within the allowlist of tenant "${verdict.tenant}"`) : cond('Admitted', false, 'Denied', verdict.message),
    cond('Active', active, active ? 'Targeting' : targeting ? 'NothingApplied' : offReason,
      active ? `faults apply to ${targets.length} pod(s)` : targeting ? `targets ${targets.length} pod(s) but ${applied.condition.message}` : offMessage),
    cond('Applied', applied.condition.status === 'True', applied.condition.reason, applied.condition.message, applied.condition.status),
    cond('Paused', paused, paused ? 'Paused' : 'Running', paused ? 'spec.paused is true' : 'spec.paused is false'),
    cond('Expired', expired, expired ? 'DurationElapsed' : 'Running',
      expired ? `duration ${policy.spec.duration} elapsed at ${new Date(expiresAtMs!).toISOString()}` : expiresAtMs !== undefined ? `expires at ${new Date(expiresAtMs).toISOString()}` : 'not started'),
  ];
  // Only guarded (or aborted) policies carry the condition: the others have nothing to report.
  if (abort) conditions.push(cond('Aborted', true, ABORT_REASON, `${describeAbort(abort)}; faults ended on every pod; change the policy (a new generation) to run it again`));
  else if (policy.spec.abortWhen) conditions.push(cond('Aborted', false, 'SteadyState', 'the steady-state guard holds'));

  return {
    conditions,
    ...(abort ? { abort } : {}),
    ...(verdict.tenant !== undefined ? { tenant: verdict.tenant } : {}),
    ...(verdict.faults !== undefined ? { faults: verdict.faults } : {}),
    targets,
    targetedPods: targets.length,
    appliedPods: applied.appliedPods,
    ...(applied.podReports.length > 0 ? { podReports: applied.podReports } : {}),
    ...(applied.podReportsOmitted > 0 ? { podReportsOmitted: applied.podReportsOmitted } : {}),
    ...(startedAt !== undefined ? { startedAt } : {}),
    ...(expiresAtMs !== undefined ? { expiresAt: new Date(expiresAtMs).toISOString() } : {}),
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
}

/**
 * The blast radius over targetable pods. Pods started with the policy's kernel
 * faults come first (the admission radius put them there; live faults belong
 * on the same pods), then the rest; within each group pickTargets keeps
 * previous targets, so reconciles do not churn. `spec` is the policy's
 * validated, defaulted spec.
 */
export function chooseTargets(policy: ChaosPolicy, spec: DefaultedPolicySpec, pods: readonly PodMeta[], maxPodPercent: number | undefined): string[] {
  const chaosId = chaosIdOf(policy);
  const matching = pods.filter((p) => isTargetable(p) && matchesSelector(spec.selector, p.labels));
  const count = targetCount(spec.mode, matching.length, maxPodPercent);
  const carriers = matching.filter((p) => p.kernelChaosIds.includes(chaosId));
  const others = matching.filter((p) => !p.kernelChaosIds.includes(chaosId));
  const base = { uid: policy.metadata.uid ?? chaosId, selector: spec.selector, previousTargets: policy.status?.targets ?? [] };
  const first = pickTargets({ ...base, mode: { type: 'fixed', value: count } }, carriers);
  const rest = pickTargets({ ...base, mode: { type: 'fixed', value: count - first.length } }, others);
  return [...first, ...rest].sort();
}

/** `next`, keeping the previous lastTransitionTime unless the status flipped. */
function condition(previous: readonly Condition[] | undefined, next: Omit<Condition, 'lastTransitionTime'>, now: number): Condition {
  const old = previous?.find((c) => c.type === next.type);
  const lastTransitionTime = old && old.status === next.status && old.lastTransitionTime ? old.lastTransitionTime : new Date(now).toISOString();
  return { ...next, lastTransitionTime };
}

/** Whether writing `next` would change anything (absent and empty fields compare equal). */
export function statusChanged(current: ChaosPolicyStatus | undefined, next: ChaosPolicyStatus): boolean {
  return !isDeepStrictEqual(normalize(current ?? {}), normalize(next));
}

function normalize(status: ChaosPolicyStatus): ChaosPolicyStatus {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(status).sort(([a], [b]) => a.localeCompare(b))) {
    if (v === undefined || (Array.isArray(v) && v.length === 0) || ((k === 'targetedPods' || k === 'appliedPods') && v === 0)) continue;
    out[k] = k === 'conditions' ? [...(v as Condition[])].sort((a, b) => a.type.localeCompare(b.type)).map((c) => ({ ...c })) : v;
  }
  return out as ChaosPolicyStatus;
}

export interface PolicyEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

function conditionTrue(status: ChaosPolicyStatus | undefined, type: ConditionType): boolean {
  return status?.conditions?.find((c) => c.type === type)?.status === 'True';
}

/** The Events a status transition is worth, in the order they happened. */
export function statusEvents(policy: ChaosPolicy, previous: ChaosPolicyStatus | undefined, next: ChaosPolicyStatus, pods: readonly PodMeta[]): PolicyEvent[] {
  const events: PolicyEvent[] = [];
  const flipped = (type: ConditionType): boolean => conditionTrue(next, type) && !conditionTrue(previous, type);
  const targets = next.targets ?? [];
  const list = (names: readonly string[]): string => (names.length > 0 ? names.join(', ') : 'none');
  const deniedBefore = previous?.conditions?.find((c) => c.type === 'Admitted')?.status === 'False';
  const admittedCondition = next.conditions?.find((c) => c.type === 'Admitted');
  if (admittedCondition?.status === 'False' && !deniedBefore)
    events.push({ type: 'Warning', reason: 'NotAdmitted', message: admittedCondition.message ?? 'the policy is no longer admitted' });
  if (flipped('Active')) events.push({ type: 'Normal', reason: 'Started', message: `faults active on ${targets.length} pod(s): ${list(targets)}` });
  else if (conditionTrue(previous, 'Active') && conditionTrue(next, 'Active') && !isDeepStrictEqual(previous?.targets ?? [], targets))
    events.push({ type: 'Normal', reason: 'TargetsChanged', message: `targets now ${list(targets)} (were ${list(previous?.targets ?? [])})` });
  if (flipped('Paused')) events.push({ type: 'Normal', reason: 'Paused', message: 'spec.paused is true: sidecars stop applying the live faults' });
  const aborted = next.conditions?.find((c) => c.type === 'Aborted');
  if (flipped('Aborted')) events.push({ type: 'Warning', reason: 'Aborted', message: aborted?.message ?? 'steady-state guard breached' });
  if (flipped('Expired')) events.push({ type: 'Normal', reason: 'Expired', message: `duration ${policy.spec.duration} elapsed; faults ended` });

  const before = new Set(previous?.targets ?? []);
  const newTargets = targets.filter((t) => !before.has(t));
  if (hasKernelFaults(policy.spec) && conditionTrue(next, 'Active') && newTargets.length > 0) {
    const chaosId = chaosIdOf(policy);
    const byName = new Map(pods.map((p) => [p.name, p]));
    const lacking = newTargets.filter((name) => !byName.get(name)?.kernelChaosIds.includes(chaosId));
    if (lacking.length > 0)
      events.push({
        type: 'Warning',
        reason: 'RestartRequired',
        message: `network, io and time faults are fixed at pod start; restart ${list(lacking)} to apply them (live faults apply now)`,
      });
  }
  return events;
}

/** Epoch ms of the policy's next expiry still ahead, for the controller's timer. */
export function pendingExpiry(status: ChaosPolicyStatus, now: number): number | undefined {
  const at = Date.parse(status.expiresAt ?? '');
  return Number.isFinite(at) && at > now ? at : undefined;
}
