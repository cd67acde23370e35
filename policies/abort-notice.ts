// How one pod's proxy tells everyone else that a policy's steady-state guard
// tripped: a core/v1 Event on the policy (reason SteadyStateBreached) whose
// annotation carries the breach. The other proxies of the namespace watch
// those Events and drop the policy; the reconciler watches them and records
// status.abort + condition Aborted, which keeps it off after the Event ages out.
//
// Why an Event and not a write to the policy: the sidecar then needs only
// `create events` in its own namespace — it cannot alter any policy's spec or
// status (status.targets decides which pods get faults; a pod able to write it
// could widen the blast radius). A forged notice can only stop chaos, never
// start or widen it: the failure mode is the safe one.
import type { PolicyAbort } from './types.ts';
import { API_GROUP_VERSION } from './wellknown.ts';

export const ABORT_REASON = 'SteadyStateBreached';
export const ABORT_ANNOTATION = 'faultline.dev/abort';
export const ABORT_FIELD_SELECTOR = `reason=${ABORT_REASON},involvedObject.kind=ChaosPolicy`;

export interface AbortNotice {
  namespace: string;
  policy: string;
  uid: string;
  abort: PolicyAbort;
}

export interface BreachLike {
  condition: 'errorRate' | 'latency' | 'prometheus';
  observed: number;
  threshold: number;
  requests: number;
  windowMs: number;
  uid: string;
  generation: number;
}

export function formatWindow(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

export function describeAbort(a: PolicyAbort): string {
  if (a.condition === 'prometheus') return `Prometheus query value ${a.observed} exceeded ${a.threshold} (evaluated every ${a.window}), seen by ${a.pod}`;
  const unit = a.condition === 'errorRate' ? '%' : ' ms';
  const what = a.condition === 'errorRate' ? 'error rate' : 'latency percentile';
  return `${what} ${a.observed}${unit} over ${a.window} (${a.requests} responses) exceeded ${a.threshold}${unit}, seen by pod ${a.pod}`;
}

/** The Event a proxy POSTs to /api/v1/namespaces/<namespace>/events. */
export function abortNoticeEvent(ref: { namespace: string; name: string }, b: BreachLike, pod: string, now: number, component: string): Record<string, unknown> {
  const at = new Date(now).toISOString();
  const abort: PolicyAbort = { generation: b.generation, condition: b.condition, observed: b.observed, threshold: b.threshold, requests: b.requests, window: formatWindow(b.windowMs), pod, at };
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { generateName: `${ref.name}.abort-`, namespace: ref.namespace, annotations: { [ABORT_ANNOTATION]: JSON.stringify(abort) } },
    involvedObject: { apiVersion: API_GROUP_VERSION, kind: 'ChaosPolicy', name: ref.name, namespace: ref.namespace, uid: b.uid },
    reason: ABORT_REASON,
    type: 'Warning',
    message: `steady-state guard breached (generation ${b.generation}): ${describeAbort(abort)}; faults end on every pod`,
    source: { component, host: pod },
    reportingComponent: component,
    reportingInstance: pod,
    firstTimestamp: at,
    lastTimestamp: at,
    count: 1,
  };
}

/** The notice an Event carries, or undefined for anything malformed (never trusted beyond stopping chaos). */
export function parseAbortNotice(event: unknown): AbortNotice | undefined {
  const e = event as { reason?: unknown; metadata?: { annotations?: Record<string, unknown> }; involvedObject?: Record<string, unknown> } | undefined;
  if (e?.reason !== ABORT_REASON) return undefined;
  const io = e.involvedObject ?? {};
  const raw = e.metadata?.annotations?.[ABORT_ANNOTATION];
  if (io.kind !== 'ChaosPolicy' || typeof io.uid !== 'string' || typeof io.name !== 'string' || typeof io.namespace !== 'string' || typeof raw !== 'string' || raw.length > 4096) return undefined;
  let a: Partial<PolicyAbort>;
  try {
    a = JSON.parse(raw) as Partial<PolicyAbort>;
  } catch {
    return undefined;
  }
  if (typeof a?.generation !== 'number' || (a.condition !== 'errorRate' && a.condition !== 'latency' && a.condition !== 'prometheus')) return undefined;
  const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const str = (v: unknown): string => (typeof v === 'string' ? v.slice(0, 253) : '');
  return {
    namespace: io.namespace,
    policy: io.name,
    uid: io.uid,
    abort: { generation: a.generation, condition: a.condition, observed: num(a.observed), threshold: num(a.threshold), requests: num(a.requests), window: str(a.window), pod: str(a.pod), at: str(a.at) },
  };
}
