// Per-request fault decision. Pure: the caller supplies the request's method,
// path and headers and a random source, and gets back what to do.
//
// Composition rule: the merge rule of policies/planner.ts, which lists rules
// oldest policy first. The FIRST matching rule that has a delay decides the
// delay and the FIRST matching rule that has an abort decides the abort; each
// rolls its percent once, and later rules are not consulted, so a percent
// means exactly what its policy says. Delay comes before abort, as in Istio
// (a delayed 503).
// Expired rules are dropped before this point (live-plan.ts effectivePlan).

import type { PlannedHttpFault } from '../contract/plans.ts';
import { backtrackingRisk } from '../policies/regex-safety.ts';

export interface RequestInfo {
  method: string;
  /** Request target as received (path + optional query). */
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface Decision {
  delayMs: number;
  abort?: { status: number; body?: string; grpcStatus?: number };
  /** Faults that fired, for logs, metrics and the opt-in response header. */
  fired: Array<{ fault: PlannedHttpFault; kind: 'delay' | 'abort' }>;
}

const regexCache = new WeakMap<PlannedHttpFault, RegExp>();
const MATCHES_NOTHING = /(?!)/;

function pathOf(url: string): string {
  // Match on the path alone, as Envoy does for exact matches: a query string
  // must not defeat `exact: /health`.
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** gRPC's content types (application/grpc, +proto, +json, ;…); grpc-web is a different protocol over HTTP/1. */
export function isGrpc(headers: RequestInfo['headers']): boolean {
  const ct = headers['content-type'];
  if (typeof ct !== 'string' || !ct.startsWith('application/grpc')) return false;
  const next = ct.charAt('application/grpc'.length);
  return next === '' || next === '+' || next === ';';
}

export function matches(f: PlannedHttpFault, req: RequestInfo): boolean {
  const m = f.match;
  if (f.protocol === 'grpc' && !isGrpc(req.headers)) return false;
  if (m.methods && m.methods.length > 0) {
    const method = req.method.toUpperCase();
    if (!m.methods.some((x) => x.toUpperCase() === method)) return false;
  }
  if (m.path) {
    const path = pathOf(req.url);
    if (m.path.exact !== undefined && path !== m.path.exact) return false;
    if (m.path.prefix !== undefined && !path.startsWith(m.path.prefix)) return false;
    if (m.path.regex !== undefined) {
      let re = regexCache.get(f);
      if (!re) {
        // Anchored like Envoy's safe_regex: the whole path must match. A regex
        // that could backtrack (admission refuses them) is never compiled: it matches nothing.
        re = backtrackingRisk(m.path.regex) === undefined ? new RegExp(`^(?:${m.path.regex})$`) : MATCHES_NOTHING;
        regexCache.set(f, re);
      }
      if (!re.test(path)) return false;
    }
  }
  if (m.headers) {
    for (const [name, want] of Object.entries(m.headers)) {
      const got = req.headers[name.toLowerCase()];
      const value = Array.isArray(got) ? got.join(', ') : got;
      if (value !== want) return false;
    }
  }
  return true;
}

/** Uniform in [base - jitter, base + jitter], never negative. */
export function jitteredMs(baseMs: number, jitterMs: number, random: () => number): number {
  return Math.max(0, baseMs + (jitterMs > 0 ? (random() * 2 - 1) * jitterMs : 0));
}

function rolled(percent: number, random: () => number): boolean {
  return percent >= 100 || random() * 100 < percent;
}

export function decideRequest(faults: readonly PlannedHttpFault[], req: RequestInfo, random: () => number = Math.random): Decision {
  const decision: Decision = { delayMs: 0, fired: [] };
  let delayDecided = false;
  let abortDecided = false;
  for (const f of faults) {
    if (delayDecided && abortDecided) break;
    if ((!f.delay || delayDecided) && (!f.abort || abortDecided)) continue;
    if (!matches(f, req)) continue;
    if (f.delay && !delayDecided) {
      delayDecided = true;
      if (rolled(f.delay.percent, random)) {
        decision.delayMs = jitteredMs(f.delay.fixedMs, f.delay.jitterMs, random);
        decision.fired.push({ fault: f, kind: 'delay' });
      }
    }
    if (f.abort && !abortDecided) {
      abortDecided = true;
      if (rolled(f.abort.percent, random)) {
        const { status, body, grpcStatus } = f.abort;
        decision.abort = { status, ...(body !== undefined ? { body } : {}), ...(grpcStatus !== undefined ? { grpcStatus } : {}) };
        decision.fired.push({ fault: f, kind: 'abort' });
      }
    }
  }
  return decision;
}

/** Value of the opt-in `x-faultline-fault` response header, e.g. "delay=120ms,abort=503". */
export function faultHeader(d: Decision): string | undefined {
  const parts: string[] = [];
  if (d.delayMs > 0) parts.push(`delay=${Math.round(d.delayMs)}ms`);
  if (d.abort) parts.push(d.abort.grpcStatus !== undefined ? `abort=grpc-${d.abort.grpcStatus}` : `abort=${d.abort.status}`);
  return parts.length > 0 ? parts.join(',') : undefined;
}
