// From the targeted pods' datapath reports (contract/applied.ts) to the
// policy's status: how many pods apply its faults (status.appliedPods, the
// APPLIED column), a bounded per-pod detail (status.podReports) and the
// condition Applied. Pure: the reports come in as a lookup.
import type { DatapathReport, PolicyApplyReport } from '../../contract/applied.ts';
import { POD_REPORT_TEXT_MAX } from '../../policies/schema.ts';
import type { ChaosPolicy, PodApplyStatus } from '../../policies/types.ts';

/** What the reconciler last read from one pod (datapath-reports.ts). */
export interface PodReportState {
  report?: DatapathReport;
  /** Why the last read failed (unreachable, timeout, malformed). */
  error?: string;
}

/** Pods listed in status.podReports (problems first), faults listed per pod: a policy over 1,000 pods stays a small object. */
export const MAX_POD_DETAILS = 20;
export const MAX_FAULTS_PER_POD = 8;
/**
 * podReports' strings fit the schema's bound, or the API server refuses the
 * whole status. A report's fields are cut to 256 each, so "<kind> <target>
 * (via …)" or a read error can pass it.
 */
const clip = (text: string): string => (text.length <= POD_REPORT_TEXT_MAX ? text : `${text.slice(0, POD_REPORT_TEXT_MAX - 1)}…`);

export type PodApplyState = PodApplyStatus['state'];

export interface AppliedSummary {
  appliedPods: number;
  podReports: PodApplyStatus[];
  podReportsOmitted: number;
  condition: { status: 'True' | 'False' | 'Unknown'; reason: string; message: string };
  /** Every targeted pod's share of the policy (the Events and chaos log are per pod, not bounded like status). */
  perPod: Map<string, { state: PodApplyState; policy?: PolicyApplyReport }>;
}

/** The policy's entry in a report, if the report speaks of this uid and generation. */
export function policyEntry(report: DatapathReport | undefined, policy: ChaosPolicy): PolicyApplyReport | undefined {
  const id = `${policy.metadata.namespace ?? ''}/${policy.metadata.name ?? ''}`;
  const generation = policy.metadata.generation ?? 0;
  return report?.policies.find((p) => p.policy === id && (p.uid === '' || p.uid === policy.metadata.uid) && p.generation === generation);
}

const ORDER: Record<PodApplyState, number> = { NotApplied: 0, Partial: 1, Unreachable: 2, Pending: 3, Applied: 4 };

/**
 * `active`: the policy's faults should be on (admitted, not paused, held,
 * expired or aborted). An inactive policy's pods report nothing by design.
 */
export function appliedSummary(policy: ChaosPolicy, targets: readonly string[], reportOf: (pod: string) => PodReportState | undefined, active: { on: boolean; reason: string; message: string }): AppliedSummary {
  const perPod = new Map<string, { state: PodApplyState; policy?: PolicyApplyReport }>();
  const details: PodApplyStatus[] = [];
  for (const pod of targets) {
    const state = reportOf(pod);
    const entry = policyEntry(state?.report, policy);
    let s: PodApplyState;
    let message: string;
    if (entry) {
      s = entry.notApplied.length === 0 ? (entry.applied.length > 0 ? 'Applied' : 'NotApplied') : entry.applied.length > 0 ? 'Partial' : 'NotApplied';
      message = entry.applied.length === 0 && entry.notApplied.length === 0 ? 'the proxy has none of the policy\'s faults to apply on this pod' : '';
    } else if (state?.error !== undefined && state.report === undefined) {
      s = 'Unreachable';
      message = state.error;
    } else {
      s = 'Pending';
      message = state?.report ? `the proxy does not report generation ${policy.metadata.generation ?? 0} yet` : 'no report read yet';
    }
    perPod.set(pod, { state: s, ...(entry ? { policy: entry } : {}) });
    details.push({
      pod,
      state: s,
      ...(entry ? { applied: entry.applied.slice(0, MAX_FAULTS_PER_POD).map((f) => clip(`${f.kind} ${f.target}${f.via ? ` (via ${f.via})` : ''}`)) } : {}),
      ...(entry && entry.notApplied.length > 0 ? { notApplied: entry.notApplied.slice(0, MAX_FAULTS_PER_POD).map((f) => ({ fault: clip(`${f.kind} ${f.target}`), reason: f.reason, message: clip(f.message) })) } : {}),
      ...(message ? { message: clip(message) } : {}),
    });
  }
  details.sort((a, b) => ORDER[a.state] - ORDER[b.state] || a.pod.localeCompare(b.pod));
  const count = (st: PodApplyState): number => [...perPod.values()].filter((p) => p.state === st).length;
  const applied = count('Applied') + count('Partial');
  const reported = count('Applied') + count('Partial') + count('NotApplied');
  const total = targets.length;

  let condition: AppliedSummary['condition'];
  if (!active.on) condition = { status: 'False', reason: active.reason, message: `faults are off: ${active.message}` };
  else if (total === 0) condition = { status: 'False', reason: 'NoTargets', message: 'no pod is targeted' };
  else if (count('Applied') === total) condition = { status: 'True', reason: 'Applied', message: `the datapath of all ${total} targeted pod(s) confirms every fault` };
  else if (reported > 0 && applied === 0 && reported === total) condition = { status: 'False', reason: 'NotApplied', message: `nothing is faulted: ${firstProblems(details)}` };
  else if (count('Partial') + count('NotApplied') > 0) condition = { status: 'False', reason: 'PartlyApplied', message: `${count('Applied')} of ${total} pod(s) apply every fault; ${firstProblems(details)}` };
  else condition = { status: 'Unknown', reason: 'Unconfirmed', message: `${total - reported} of ${total} targeted pod(s) have not confirmed yet (${count('Unreachable')} unreachable)` };

  return {
    appliedPods: applied,
    podReports: details.slice(0, MAX_POD_DETAILS),
    podReportsOmitted: Math.max(0, details.length - MAX_POD_DETAILS),
    condition,
    perPod,
  };
}

function firstProblems(details: readonly PodApplyStatus[]): string {
  const lines = details
    .filter((d) => d.state === 'NotApplied' || d.state === 'Partial')
    .slice(0, 3)
    .map((d) => `pod ${d.pod}: ${(d.notApplied ?? []).slice(0, 2).map((f) => `${f.fault}: ${f.reason}`).join('; ') || (d.message ?? 'no fault applies')}`);
  return lines.join('; ');
}
