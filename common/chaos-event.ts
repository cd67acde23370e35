// The chaos event log: one structured line per fault start, end, abort and
// expiry, per pod, from every component (proxy, faultline-kernel, reconciler),
// with the fields of seed 000 in snake_case, so one `chaos_id` follows an
// experiment across them: `jq 'select(.chaos_id == "<uid>/<generation>")'`.
import type { Logger } from 'pino';

export type ChaosEventStatus = 'started' | 'ended' | 'removed' | 'aborted' | 'expired' | 'lifted' | 'not_applied';

export interface ChaosEvent {
  /** The policy's uid and generation: "<uid>/<generation>" (a new generation is a new experiment). */
  chaos_id: string;
  /** "<namespace>/<name>", for people. */
  policy: string;
  /** The pod, and where in it: "web-1 inbound :8080". */
  target: string;
  /** The fault kind, as the allowlist names it: http.delay, tcp.latency, network.loss, … */
  fault: string;
  status: ChaosEventStatus;
  /** Planned duration at a start; time it was on at an end. */
  duration_ms: number;
  reason?: string;
  [extra: string]: unknown;
}

export function chaosIdOf(uid: string, generation: number): string {
  return `${uid}/${generation}`;
}

const MESSAGES: Record<ChaosEventStatus, string> = {
  started: 'fault started',
  ended: 'fault ended',
  removed: 'fault ended',
  aborted: 'fault ended',
  expired: 'fault ended',
  lifted: 'fault ended',
  not_applied: 'fault not applied',
};

/** Logs one chaos event; `sink` also receives it (the OTLP exporter, where one is configured). */
export function logChaosEvent(log: Logger, e: ChaosEvent, sink?: (e: ChaosEvent) => void): void {
  if (e.status === 'not_applied') log.warn({ event: 'chaos', ...e }, MESSAGES[e.status]);
  else log.info({ event: 'chaos', ...e }, MESSAGES[e.status]);
  sink?.(e);
}
