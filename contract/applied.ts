// What a pod's datapath says it applies: the report each faultline-proxy serves
// read-only on its health port (GET /status) and the reconciler aggregates
// into ChaosPolicy status (appliedPods, condition Applied, per-pod detail).
//
// The reason vocabulary is closed: the reconciler, the CRD and users' alerts
// key on it. Any datapath source of "this can't apply here" (the proxy's own
// routing, Toxiproxy's health, pod setup's netem fallback, and the capture
// path's observations of real traffic — TLS, a port nobody serves, another
// protocol) speaks in these reasons.

import { child, formatFieldErrors, index, invalid, type FieldError } from '../policies/field-error.ts';
import { checkDocument, type Checked } from '../policies/schema-check.ts';
import { array, integer, object, string, type JSONSchemaProps } from '../policies/schema-builders.ts';
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
// Like contract/codec.ts: a structural schema checked by checkSchema, then
// semantic rules, then the values; every error names the field.

/** Bounds on what the reconciler accepts from a pod: a report is data from an app's network namespace. */
export const REPORT_LIMITS = { bytes: 64 * 1024, policies: 64, faults: 64, text: 256 } as const;

// Its own class, not codec.ts's PlanError: a report is another document, read the other way (pod to webhook).
export class ReportError extends Error {}

const text = (description: string): JSONSchemaProps => string(description, { maxLength: REPORT_LIMITS.text });
const faultRef = { kind: text('The allowlist\'s "<family>.<fault>".'), target: text('Where the fault acts.') };

const reportSchema = object('GET /status on the proxy\'s health port.', {
  pod: text('The pod; default "".'),
  policies: array('The policies whose faults reach the pod now.', object('One policy generation as the pod applies it.', {
    policy: text('"<namespace>/<name>".'),
    uid: text('The policy\'s metadata.uid.'),
    generation: integer('The policy\'s metadata.generation.', { minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    applied: array('Faults applied.', object('A fault applied.', { ...faultRef, via: text('The stand-in that applies it.') }, ['kind', 'target']), REPORT_LIMITS.faults),
    // reason's vocabulary is a rule, not an enum: its message lists the names as the reconciler has always logged them.
    notApplied: array('Faults that cannot apply.', object('A fault not applied.', {
      ...faultRef,
      reason: text('One of NOT_APPLIED_REASONS.'),
      message: text('The explanation; default the reason\'s sentence.'),
    }, ['kind', 'target', 'reason']), REPORT_LIMITS.faults),
  }, ['policy', 'uid', 'generation', 'applied', 'notApplied']), REPORT_LIMITS.policies),
}, ['policies']);

/**
 * The schema's bounds cut rather than refuse: the reconciler keeps a list's
 * first maxItems and a string's first maxLength, and never checks what it cut.
 * Fields the schema does not know are dropped.
 */
function cut(schema: JSONSchemaProps, v: unknown): unknown {
  if (schema.type === 'string' && typeof v === 'string') return v.slice(0, schema.maxLength);
  if (schema.type === 'array' && Array.isArray(v)) return v.slice(0, schema.maxItems).map((x) => cut(schema.items!, x));
  if (schema.type !== 'object' || typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [key, sub] of Object.entries(schema.properties ?? {})) if (Object.hasOwn(v, key)) out[key] = cut(sub, (v as Record<string, unknown>)[key]);
  return out;
}

/** The reasons are a closed vocabulary, checked after the structure. */
function reportRules(r: Checked): FieldError[] {
  return (r.policies as Checked[]).flatMap((p, i) =>
    (p.notApplied as Checked[]).flatMap((f, j) =>
      isNotAppliedReason(f.reason)
        ? []
        : [invalid(child(index(child(index('policies', i), 'notApplied'), j), 'reason'), f.reason, `reason must be one of ${NOT_APPLIED_REASON_NAMES.join(', ')}`)],
    ),
  );
}

const appliedFault = (f: Checked): AppliedFault => ({ kind: f.kind, target: f.target, ...(f.via !== undefined ? { via: f.via } : {}) });
const notAppliedFault = (f: Checked): NotAppliedFault => ({ kind: f.kind, target: f.target, reason: f.reason, message: f.message ?? NOT_APPLIED_REASONS[f.reason as NotAppliedReason] });
const policyReport = (p: Checked): PolicyApplyReport => ({
  policy: p.policy, uid: p.uid, generation: p.generation, applied: p.applied.map(appliedFault), notApplied: p.notApplied.map(notAppliedFault),
});

/** A report's JSON text, validated and cut to REPORT_LIMITS; throws ReportError on anything malformed. */
export function decodeDatapathReport(json: string): DatapathReport {
  if (json.length > REPORT_LIMITS.bytes) throw new ReportError(`report is ${json.length} bytes, over ${REPORT_LIMITS.bytes}`);
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new ReportError(`report is not JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || !Array.isArray((raw as Checked).policies)) throw new ReportError('report must be an object with a policies list');
  // null is absent, as in contract/codec.ts (checkDocument).
  const { value: r, errors } = checkDocument(reportSchema, cut(reportSchema, raw), '', reportRules);
  // The first error only, with a count: it lands in status (podReports[].message, at most 512 characters).
  if (errors.length > 0) throw new ReportError(`${formatFieldErrors(errors.slice(0, 1))}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}`);
  return { pod: r.pod ?? '', policies: r.policies.map(policyReport) };
}
