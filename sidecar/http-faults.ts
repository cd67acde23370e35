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

/**
 * One rule's match, prepared once per plan rather than per request: methods
 * upper-cased into a set, header names lower-cased, the regex compiled.
 */
interface CompiledMatch {
  grpc: boolean;
  methods: ReadonlySet<string> | undefined;
  exact: string | undefined;
  prefix: string | undefined;
  regex: RegExp | undefined;
  headers: ReadonlyArray<readonly [name: string, want: string]>;
}

function compileMatch(f: PlannedHttpFault): CompiledMatch {
  const m = f.match;
  let regex: RegExp | undefined;
  if (m.path?.regex !== undefined) {
    // Anchored like Envoy's safe_regex: the whole path must match. A regex
    // that could backtrack (admission refuses them) is never compiled: it matches nothing.
    regex = backtrackingRisk(m.path.regex) === undefined ? new RegExp(`^(?:${m.path.regex})$`) : MATCHES_NOTHING;
  }
  return {
    grpc: f.protocol === 'grpc',
    methods: m.methods && m.methods.length > 0 ? new Set(m.methods.map((x) => x.toUpperCase())) : undefined,
    exact: m.path?.exact,
    prefix: m.path?.prefix,
    regex,
    headers: Object.entries(m.headers ?? {}).map(([name, want]) => [name.toLowerCase(), want] as const),
  };
}

function matchesCompiled(c: CompiledMatch, req: RequestInfo): boolean {
  if (c.grpc && !isGrpc(req.headers)) return false;
  if (c.methods && !c.methods.has(req.method.toUpperCase())) return false;
  if (c.exact !== undefined || c.prefix !== undefined || c.regex !== undefined) {
    const path = pathOf(req.url);
    if (c.exact !== undefined && path !== c.exact) return false;
    if (c.prefix !== undefined && !path.startsWith(c.prefix)) return false;
    if (c.regex !== undefined && !c.regex.test(path)) return false;
  }
  for (const [name, want] of c.headers) {
    const got = req.headers[name];
    const value = Array.isArray(got) ? got.join(', ') : got;
    if (value !== want) return false;
  }
  return true;
}

const compiledMatches = new WeakMap<PlannedHttpFault, CompiledMatch>();

function compiled(f: PlannedHttpFault): CompiledMatch {
  let c = compiledMatches.get(f);
  if (!c) {
    c = compileMatch(f);
    compiledMatches.set(f, c);
  }
  return c;
}

export function matches(f: PlannedHttpFault, req: RequestInfo): boolean {
  return matchesCompiled(compiled(f), req);
}

/** Uniform in [base - jitter, base + jitter], never negative. */
export function jitteredMs(baseMs: number, jitterMs: number, random: () => number): number {
  return Math.max(0, baseMs + (jitterMs > 0 ? (random() * 2 - 1) * jitterMs : 0));
}

function rolled(percent: number, random: () => number): boolean {
  return percent >= 100 || random() * 100 < percent;
}

/** What a request no rule fired on gets; shared, so the common case allocates nothing. */
export const NO_FAULT: Decision = Object.freeze({ delayMs: 0, fired: Object.freeze([]) as unknown as Decision['fired'] });

/**
 * The rules of one plan, each match compiled once. A path that sees the same
 * rule list (the plan's array, unchanged until the next plan) reuses it.
 */
export class CompiledFaults {
  readonly size: number;
  private readonly rules: ReadonlyArray<{ fault: PlannedHttpFault; match: CompiledMatch }>;

  constructor(faults: readonly PlannedHttpFault[]) {
    this.rules = faults.map((fault) => ({ fault, match: compiled(fault) }));
    this.size = faults.length;
  }

  decide(req: RequestInfo, random: () => number = Math.random): Decision {
    let decision: Decision | undefined;
    let delayDecided = false;
    let abortDecided = false;
    for (const { fault: f, match } of this.rules) {
      if (delayDecided && abortDecided) break;
      if ((!f.delay || delayDecided) && (!f.abort || abortDecided)) continue;
      if (!matchesCompiled(match, req)) continue;
      if (f.delay && !delayDecided) {
        delayDecided = true;
        if (rolled(f.delay.percent, random)) {
          decision ??= { delayMs: 0, fired: [] };
          decision.delayMs = jitteredMs(f.delay.fixedMs, f.delay.jitterMs, random);
          decision.fired.push({ fault: f, kind: 'delay' });
        }
      }
      if (f.abort && !abortDecided) {
        abortDecided = true;
        if (rolled(f.abort.percent, random)) {
          const { status, body, grpcStatus } = f.abort;
          decision ??= { delayMs: 0, fired: [] };
          decision.abort = { status, ...(body !== undefined ? { body } : {}), ...(grpcStatus !== undefined ? { grpcStatus } : {}) };
          decision.fired.push({ fault: f, kind: 'abort' });
        }
      }
    }
    return decision ?? NO_FAULT;
  }
}

const compiledLists = new WeakMap<readonly PlannedHttpFault[], CompiledFaults>();

/** The compiled form of a rule list, built on its first request and kept while the list lives. */
export function compileFaults(faults: readonly PlannedHttpFault[]): CompiledFaults {
  let c = compiledLists.get(faults);
  if (!c) {
    c = new CompiledFaults(faults);
    compiledLists.set(faults, c);
  }
  return c;
}

export function decideRequest(faults: readonly PlannedHttpFault[], req: RequestInfo, random: () => number = Math.random): Decision {
  return compileFaults(faults).decide(req, random);
}

/** Value of the opt-in `x-faultline-fault` response header, e.g. "delay=120ms,abort=503". */
export function faultHeader(d: Decision): string | undefined {
  const parts: string[] = [];
  if (d.delayMs > 0) parts.push(`delay=${Math.round(d.delayMs)}ms`);
  if (d.abort) parts.push(d.abort.grpcStatus !== undefined ? `abort=grpc-${d.abort.grpcStatus}` : `abort=${d.abort.status}`);
  return parts.length > 0 ? parts.join(',') : undefined;
}
