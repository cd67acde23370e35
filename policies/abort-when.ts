// The steady-state guard (spec.abortWhen): its rules beyond the schema and its
// form in the live plan (the tenant's rules on it are allowlist.ts's).
//
// Why the proxy judges it and not a monitoring system: the proxy is in the
// datapath of every targeted pod, so it sees each response's status and time
// first-hand, with no scrape interval, no query language and no control plane
// — a breach is acted on where it is seen (sidecar/guard.ts).
import { durationMs, parseDuration } from './duration.ts';
import { child, forbidden, invalid, type FieldError } from './field-error.ts';
import type { PlannedGuard } from '../contract/plans.ts';
import type { AbortWhen, ChaosPolicy } from './types.ts';

/** Fewer responses than this in the window are never judged. */
export const DEFAULT_MIN_REQUESTS = 10;
/** Longest window the proxy keeps (its memory is one bucket per second of window). */
export const MAX_WINDOW_MS = 60 * 60_000;

function windowErrors(window: string, path: string): FieldError[] {
  const parsed = parseDuration(window);
  if ('error' in parsed) return [invalid(path, window, parsed.error)];
  if (parsed.ms < 1_000) return [invalid(path, window, 'must be at least 1s')];
  if (parsed.ms > MAX_WINDOW_MS) return [invalid(path, window, 'must be at most 1h')];
  return [];
}

export const PROMETHEUS_INTERVAL = { defaultMs: 30_000, minMs: 5_000, maxMs: 10 * 60_000 } as const;

/** The canonical form of a Prometheus base URL (no trailing slash), or an error. */
export function prometheusBase(url: string): { base: string } | { error: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { error: 'must be an absolute URL' };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return { error: 'must be http or https' };
  if (u.username || u.password) return { error: 'must not carry credentials' };
  if (u.search || u.hash) return { error: 'must not carry a query or fragment (the query goes in abortWhen.prometheus.query)' };
  return { base: `${u.origin}${u.pathname.replace(/\/+$/, '')}` };
}

function prometheusErrors(p: NonNullable<AbortWhen['prometheus']>, path: string): FieldError[] {
  const errors: FieldError[] = [];
  const base = prometheusBase(p.url);
  if ('error' in base) errors.push(invalid(child(path, 'url'), p.url, base.error));
  if (p.query.trim() === '') errors.push(invalid(child(path, 'query'), p.query, 'must not be empty'));
  if (!Number.isFinite(p.above)) errors.push(invalid(child(path, 'above'), p.above, 'must be a finite number'));
  if (p.interval !== undefined) {
    const i = parseDuration(p.interval);
    if ('error' in i) errors.push(invalid(child(path, 'interval'), p.interval, i.error));
    else if (i.ms < PROMETHEUS_INTERVAL.minMs || i.ms > PROMETHEUS_INTERVAL.maxMs) errors.push(invalid(child(path, 'interval'), p.interval, 'must be between 5s and 10m'));
  }
  return errors;
}

/** Tenant-independent rules (validate.ts). */
export function abortWhenErrors(aw: AbortWhen, path: string): FieldError[] {
  const errors: FieldError[] = [];
  if (!aw.errorRate && !aw.latency && !aw.prometheus) errors.push(forbidden(path, 'set errorRate, latency, prometheus or several'));
  if (aw.prometheus) errors.push(...prometheusErrors(aw.prometheus, child(path, 'prometheus')));
  if (aw.errorRate) errors.push(...windowErrors(aw.errorRate.window, child(child(path, 'errorRate'), 'window')));
  if (aw.latency) {
    const at = child(path, 'latency');
    errors.push(...windowErrors(aw.latency.window, child(at, 'window')));
    const t = parseDuration(aw.latency.threshold);
    if ('error' in t) errors.push(invalid(child(at, 'threshold'), aw.latency.threshold, t.error));
    else if (t.ms <= 0) errors.push(invalid(child(at, 'threshold'), aw.latency.threshold, 'must be greater than zero'));
    if (!(aw.latency.percentile > 0 && aw.latency.percentile < 100)) errors.push(invalid(child(at, 'percentile'), aw.latency.percentile, 'must be in (0,100)'));
  }
  return errors;
}

/** The guard the proxy runs for a valid policy, or undefined when it has none. */
export function plannedGuard(policy: ChaosPolicy, chaosId: string): PlannedGuard | undefined {
  const aw = policy.spec.abortWhen;
  if (!aw || (!aw.errorRate && !aw.latency)) return undefined;
  const guard: PlannedGuard = { chaosId, uid: policy.metadata.uid ?? chaosId, generation: policy.metadata.generation ?? 0 };
  if (aw.errorRate) {
    guard.errorRate = { ratio: aw.errorRate.percent / 100, windowMs: durationMs(aw.errorRate.window), minRequests: aw.errorRate.minRequests ?? DEFAULT_MIN_REQUESTS };
  }
  if (aw.latency) {
    guard.latency = {
      percentile: aw.latency.percentile,
      thresholdMs: durationMs(aw.latency.threshold),
      windowMs: durationMs(aw.latency.window),
      minRequests: aw.latency.minRequests ?? DEFAULT_MIN_REQUESTS,
    };
  }
  return guard;
}

/** The abort recorded in status holds the current generation: the policy stays off. */
export function abortedNow(policy: ChaosPolicy): boolean {
  const a = policy.status?.abort;
  return a !== undefined && a.generation === (policy.metadata.generation ?? 0);
}
