// What a pod's datapath says it applies: the report each faultline-proxy serves
// read-only on its health port (GET /status) and the reconciler aggregates
// into ChaosPolicy status (appliedPods, condition Applied, per-pod detail).
//
// The reason vocabulary is closed: the reconciler, the CRD and users' alerts
// key on it. Any datapath source of "this can't apply here" (the proxy's own
// routing, Toxiproxy's health, pod setup's netem fallback, and the capture
// path's observations of real traffic — TLS, a port nobody serves, another
// protocol) speaks in these reasons.

import type { PlannedHttpFault } from './plans.ts';

/** Why a planned fault is not applied on a pod, one sentence each (the sentence is what users read). */
export const NOT_APPLIED_REASONS = {
  PortNotServed: 'no proxy listener serves the port the fault names',
  Tls: 'the port carries TLS: the proxy cannot read requests in it (TCP faults still apply)',
  Protocol: 'the port carries another protocol than the fault acts on',
  ToxiproxyDown: 'toxiproxy-server is not answering: connections pass untouched until it is back',
  ToxiproxyDisabled: 'the proxy runs without toxiproxy-server: TCP faults cannot apply',
  NetemMissing: 'the node lacks sch_netem and no fallback reproduces this fault',
  Superseded: 'an older policy owns this fault family on the pod',
  NotInPodPlan: 'kernel faults are fixed at pod start and this pod started without them',
} as const;
export type NotAppliedReason = keyof typeof NOT_APPLIED_REASONS;
export const NOT_APPLIED_REASON_NAMES = Object.keys(NOT_APPLIED_REASONS) as NotAppliedReason[];

export function isNotAppliedReason(v: unknown): v is NotAppliedReason {
  return typeof v === 'string' && Object.hasOwn(NOT_APPLIED_REASONS, v);
}

/** One fault as reports name it: its kind (the allowlist's `<family>.<fault>`) and where it acts. */
export interface FaultRef {
  kind: string;
  /** "inbound :8080", "outbound db:5432", "eth0", a container list, … */
  target: string;
}

export interface AppliedFault extends FaultRef {
  /** Set when a stand-in applies it (e.g. the proxy delaying what netem would have). */
  via?: string;
}

export interface NotAppliedFault extends FaultRef {
  reason: NotAppliedReason;
  message: string;
}

/** One policy generation as one pod applies it. */
export interface PolicyApplyReport {
  /** "<namespace>/<name>". */
  policy: string;
  uid: string;
  generation: number;
  applied: AppliedFault[];
  notApplied: NotAppliedFault[];
}

/** GET /status on the proxy's health port. */
export interface DatapathReport {
  pod: string;
  /** The policies whose faults reach this pod now (paused, expired and aborted ones are absent). */
  policies: PolicyApplyReport[];
}

/**
 * A source of per-fault datapath facts the plan alone can't tell (the capture
 * path sniffs each connection: TLS, no listener, another protocol). Undefined
 * means nothing says the fault can't apply.
 */
export interface DatapathObservations {
  notApplicable(fault: PlannedHttpFault): { reason: Extract<NotAppliedReason, 'Tls' | 'PortNotServed' | 'Protocol'>; message: string } | undefined;
}

// ------------------------------------------------------------ decoding (the reconciler's side)

/** Bounds on what the reconciler accepts from a pod: a report is data from an app's network namespace. */
export const REPORT_LIMITS = { bytes: 64 * 1024, policies: 64, faults: 64, text: 256 } as const;

export class ReportError extends Error {}

const text = (v: unknown, what: string): string => {
  if (typeof v !== 'string') throw new ReportError(`${what} must be a string`);
  return v.slice(0, REPORT_LIMITS.text);
};

function faultRef(v: unknown, what: string): FaultRef {
  const o = (v ?? {}) as Record<string, unknown>;
  return { kind: text(o.kind, `${what}.kind`), target: text(o.target, `${what}.target`) };
}

/** A report's JSON text, validated and cut to REPORT_LIMITS; throws ReportError on anything malformed. */
export function decodeDatapathReport(json: string): DatapathReport {
  if (json.length > REPORT_LIMITS.bytes) throw new ReportError(`report is ${json.length} bytes, over ${REPORT_LIMITS.bytes}`);
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new ReportError(`report is not JSON: ${(err as Error).message}`);
  }
  const r = raw as Record<string, unknown> | null;
  if (typeof r !== 'object' || r === null || !Array.isArray(r.policies)) throw new ReportError('report must be an object with a policies list');
  const policies = r.policies.slice(0, REPORT_LIMITS.policies).map((p: unknown, i): PolicyApplyReport => {
    const o = (p ?? {}) as Record<string, unknown>;
    const at = `policies[${i}]`;
    if (!Number.isSafeInteger(o.generation) || (o.generation as number) < 0) throw new ReportError(`${at}.generation must be a non-negative integer`);
    if (!Array.isArray(o.applied) || !Array.isArray(o.notApplied)) throw new ReportError(`${at} needs applied and notApplied lists`);
    return {
      policy: text(o.policy, `${at}.policy`),
      uid: text(o.uid, `${at}.uid`),
      generation: o.generation as number,
      applied: o.applied.slice(0, REPORT_LIMITS.faults).map((f: unknown, j) => {
        const via = (f as Record<string, unknown> | null)?.via;
        return { ...faultRef(f, `${at}.applied[${j}]`), ...(via !== undefined ? { via: text(via, `${at}.applied[${j}].via`) } : {}) };
      }),
      notApplied: o.notApplied.slice(0, REPORT_LIMITS.faults).map((f: unknown, j) => {
        const o2 = (f ?? {}) as Record<string, unknown>;
        if (!isNotAppliedReason(o2.reason)) throw new ReportError(`${at}.notApplied[${j}].reason must be one of ${NOT_APPLIED_REASON_NAMES.join(', ')}`);
        return { ...faultRef(f, `${at}.notApplied[${j}]`), reason: o2.reason, message: text(o2.message ?? NOT_APPLIED_REASONS[o2.reason], `${at}.notApplied[${j}].message`) };
      }),
    };
  });
  return { pod: text(r.pod ?? '', 'pod'), policies };
}
