// Per pod, what changed in what its datapath applies of one policy since the
// last reconcile: the chaos events (common/chaos-event.ts) the reconciler
// logs, and the Kubernetes Events it records on the policy — one per pod and
// kind of change, at most MAX_POD_EVENTS per reconcile (the rest summed up in
// one), so a policy over a thousand pods cannot flood the Event store. Pure.
import type { PolicyApplyReport } from '../../contract/applied.ts';
import type { ChaosEvent, ChaosEventStatus } from '../../common/chaos-event.ts';
import type { PolicyEvent } from './policy-status.ts';

/** What one pod applied as of the last reconcile: fault key → when it was first seen applied. */
export interface PodSeen {
  chaosId: string;
  applied: Map<string, number>;
  notApplied: Set<string>;
}

export type PodEntryState =
  /** The report names this generation of the policy. */
  | { kind: 'reported'; policy: PolicyApplyReport }
  /** The pod's proxy answered without this generation (it dropped the policy, or has not caught up). */
  | { kind: 'absent' }
  /** No report could be read: nothing is known, nothing is concluded. */
  | { kind: 'unknown' };

export interface TransitionInput {
  policy: string;
  chaosId: string;
  previous: ReadonlyMap<string, PodSeen>;
  /** Targeted pods now; pods missing here but in `previous` left the blast radius. */
  pods: ReadonlyMap<string, PodEntryState>;
  /** How faults that go away end: the policy's own state (expired, aborted) or just removed. */
  endStatus: Extract<ChaosEventStatus, 'ended' | 'removed' | 'aborted' | 'expired'>;
  now: number;
}

export interface RelatedPolicyEvent extends PolicyEvent {
  /** The pod the Event is about (Event.related). */
  pod?: string;
}

export const MAX_POD_EVENTS = 50;

const faultKey = (f: { kind: string; target: string }): string => `${f.kind} ${f.target}`;

export function podTransitions(input: TransitionInput): { next: Map<string, PodSeen>; chaos: ChaosEvent[]; events: RelatedPolicyEvent[] } {
  const { policy, now } = input;
  const next = new Map<string, PodSeen>();
  const chaos: ChaosEvent[] = [];
  const events: RelatedPolicyEvent[] = [];
  const end = (pod: string, seen: PodSeen, keys: Iterable<string>, status: ChaosEvent['status']): string[] => {
    const ended: string[] = [];
    for (const key of keys) {
      const since = seen.applied.get(key);
      if (since === undefined) continue;
      const [fault = '', ...where] = key.split(' ');
      chaos.push({ chaos_id: seen.chaosId, policy, target: `${pod} ${where.join(' ')}`, fault, status, duration_ms: now - since });
      ended.push(key);
    }
    return ended;
  };

  for (const [pod, state] of input.pods) {
    const before = input.previous.get(pod);
    if (state.kind === 'unknown') {
      if (before) next.set(pod, before);
      continue;
    }
    if (state.kind === 'absent') {
      if (before) {
        const ended = end(pod, before, before.applied.keys(), input.endStatus === 'ended' ? 'removed' : input.endStatus);
        if (ended.length > 0) events.push({ type: 'Normal', reason: 'FaultsEnded', message: `pod ${pod}: ${ended.join(', ')} ended (${input.endStatus})`, pod });
      }
      continue;
    }
    const p = state.policy;
    const seen: PodSeen = { chaosId: input.chaosId, applied: new Map(), notApplied: new Set() };
    // A new generation is a new experiment: the old one's faults end, the new one's start.
    const carried = before && before.chaosId === input.chaosId ? before : undefined;
    if (before && !carried) {
      const ended = end(pod, before, before.applied.keys(), 'removed');
      if (ended.length > 0) events.push({ type: 'Normal', reason: 'FaultsEnded', message: `pod ${pod}: ${ended.join(', ')} ended (policy changed)`, pod });
    }
    const started: string[] = [];
    for (const f of p.applied) {
      const key = faultKey(f);
      const since = carried?.applied.get(key);
      seen.applied.set(key, since ?? now);
      if (since === undefined) {
        started.push(f.via ? `${key} (via ${f.via})` : key);
        chaos.push({ chaos_id: input.chaosId, policy, target: `${pod} ${f.target}`, fault: f.kind, status: 'started', duration_ms: 0, ...(f.via ? { via: f.via } : {}) });
      }
    }
    const failed: string[] = [];
    for (const f of p.notApplied) {
      const key = faultKey(f);
      seen.notApplied.add(key);
      if (carried?.notApplied.has(key)) continue;
      failed.push(`${key}: ${f.reason} (${f.message})`);
      chaos.push({ chaos_id: input.chaosId, policy, target: `${pod} ${f.target}`, fault: f.kind, status: 'not_applied', duration_ms: 0, reason: f.reason, message: f.message });
    }
    if (carried) {
      const gone = [...carried.applied.keys()].filter((k) => !seen.applied.has(k));
      const ended = end(pod, carried, gone, 'removed');
      if (ended.length > 0) events.push({ type: 'Normal', reason: 'FaultsEnded', message: `pod ${pod}: ${ended.join(', ')} no longer applied`, pod });
    }
    if (started.length > 0) events.push({ type: 'Normal', reason: 'FaultsApplied', message: `pod ${pod} applies ${started.join(', ')}`, pod });
    if (failed.length > 0) events.push({ type: 'Warning', reason: 'FaultsNotApplied', message: `pod ${pod} cannot apply ${failed.join('; ')}`, pod });
    next.set(pod, seen);
  }
  // Pods that left the blast radius (deleted, no longer selected, or the policy went off).
  for (const [pod, before] of input.previous) {
    if (input.pods.has(pod)) continue;
    const ended = end(pod, before, before.applied.keys(), input.endStatus);
    if (ended.length > 0) events.push({ type: 'Normal', reason: 'FaultsEnded', message: `pod ${pod}: ${ended.join(', ')} ended (${input.endStatus})`, pod });
  }
  if (events.length > MAX_POD_EVENTS) {
    const rest = events.splice(MAX_POD_EVENTS - 1);
    const pods = new Set(rest.map((e) => e.pod));
    events.push({ type: 'Normal', reason: 'FaultsChanged', message: `${rest.length} more per-pod changes on ${pods.size} pod(s); status.podReports and the reconciler's chaos log have them all` });
  }
  return { next, chaos, events };
}
