// The live fault plan as the datapath sees it: parsed strictly from JSON (a plan
// file is hand-written in tests and by the netns simulator, so every mistake gets
// a message naming the field), and filtered by expiry at the moment of use.

import type { LiveFaultPlan, PlannedGuard, PlannedHttpFault, PlannedTcpFault, PlannedToxic, ToxicType } from '../policies/types.ts';
import { TOXIC_TYPES } from '../policies/vocabulary.ts';

export const EMPTY_PLAN: LiveFaultPlan = Object.freeze({ http: [], tcp: [] }) as LiveFaultPlan;

export class PlanError extends Error {}

type Json = Record<string, unknown>;

function obj(v: unknown, at: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new PlanError(`${at}: expected an object`);
  return v as Json;
}
function arr(v: unknown, at: string): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new PlanError(`${at}: expected an array`);
  return v;
}
function num(v: unknown, at: string, min = -Infinity, max = Infinity): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new PlanError(`${at}: expected a number in [${min}, ${max}], got ${JSON.stringify(v)}`);
  }
  return v;
}
function str(v: unknown, at: string): string {
  if (typeof v !== 'string' || v === '') throw new PlanError(`${at}: expected a non-empty string`);
  return v;
}
function port(v: unknown, at: string): number {
  const n = num(v, at, 1, 65535);
  if (!Number.isInteger(n)) throw new PlanError(`${at}: expected an integer port`);
  return n;
}
function direction(v: unknown, at: string): 'inbound' | 'outbound' {
  if (v !== 'inbound' && v !== 'outbound') throw new PlanError(`${at}: expected "inbound" or "outbound"`);
  return v;
}
/** Epoch milliseconds; ISO strings are accepted too because hand-written plans are easier to read with them. */
function instant(v: unknown, at: string): number {
  if (typeof v === 'string') {
    const t = Date.parse(v);
    if (Number.isNaN(t)) throw new PlanError(`${at}: not a date: ${JSON.stringify(v)}`);
    return t;
  }
  return num(v, at, 0);
}

function httpFault(v: unknown, at: string): PlannedHttpFault {
  const f = obj(v, at);
  const match = obj(f.match ?? {}, `${at}.match`);
  if (match.port !== undefined) port(match.port, `${at}.match.port`);
  if (match.host !== undefined) str(match.host, `${at}.match.host`);
  if (match.path !== undefined) {
    const p = obj(match.path, `${at}.match.path`);
    const kinds = ['exact', 'prefix', 'regex'].filter((k) => p[k] !== undefined);
    if (kinds.length !== 1) throw new PlanError(`${at}.match.path: set exactly one of exact, prefix, regex`);
    const value = p[kinds[0]!];
    if (typeof value !== 'string') throw new PlanError(`${at}.match.path.${kinds[0]}: expected a string`);
    if (kinds[0] === 'regex') {
      try {
        new RegExp(value);
      } catch (err) {
        throw new PlanError(`${at}.match.path.regex: ${(err as Error).message}`);
      }
    }
  }
  for (const [i, m] of arr(match.methods, `${at}.match.methods`).entries()) str(m, `${at}.match.methods[${i}]`);
  for (const [k, hv] of Object.entries(obj(match.headers ?? {}, `${at}.match.headers`))) {
    if (typeof hv !== 'string') throw new PlanError(`${at}.match.headers.${k}: expected a string`);
  }
  const out: PlannedHttpFault = {
    chaosId: str(f.chaosId, `${at}.chaosId`),
    name: str(f.name, `${at}.name`),
    expiresAt: instant(f.expiresAt, `${at}.expiresAt`),
    direction: direction(f.direction, `${at}.direction`),
    match: match as PlannedHttpFault['match'],
  };
  if (f.delay !== undefined) {
    const d = obj(f.delay, `${at}.delay`);
    out.delay = {
      fixedMs: num(d.fixedMs, `${at}.delay.fixedMs`, 0),
      jitterMs: num(d.jitterMs ?? 0, `${at}.delay.jitterMs`, 0),
      percent: num(d.percent ?? 100, `${at}.delay.percent`, 0, 100),
    };
  }
  if (f.abort !== undefined) {
    const a = obj(f.abort, `${at}.abort`);
    const status = num(a.status, `${at}.abort.status`, 200, 599);
    if (!Number.isInteger(status)) throw new PlanError(`${at}.abort.status: expected an integer`);
    out.abort = { status, percent: num(a.percent ?? 100, `${at}.abort.percent`, 0, 100) };
    if (a.body !== undefined) {
      if (typeof a.body !== 'string') throw new PlanError(`${at}.abort.body: expected a string`);
      out.abort.body = a.body;
    }
  }
  if (!out.delay && !out.abort) throw new PlanError(`${at}: needs a delay or an abort`);
  return out;
}

function toxic(v: unknown, at: string): PlannedToxic {
  const t = obj(v, at);
  if (!TOXIC_TYPES.includes(t.type as ToxicType)) {
    throw new PlanError(`${at}.type: expected one of ${TOXIC_TYPES.join(', ')}, got ${JSON.stringify(t.type)}`);
  }
  const stream = t.stream ?? 'downstream';
  if (stream !== 'upstream' && stream !== 'downstream') throw new PlanError(`${at}.stream: expected "upstream" or "downstream"`);
  const attributes: Record<string, number> = {};
  for (const [k, a] of Object.entries(obj(t.attributes ?? {}, `${at}.attributes`))) {
    attributes[k] = num(a, `${at}.attributes.${k}`, 0);
  }
  return {
    name: str(t.name, `${at}.name`),
    type: t.type as ToxicType,
    stream,
    toxicity: num(t.toxicity ?? 1, `${at}.toxicity`, 0, 1),
    attributes,
  };
}

function tcpFault(v: unknown, at: string): PlannedTcpFault {
  const f = obj(v, at);
  const out: PlannedTcpFault = {
    chaosId: str(f.chaosId, `${at}.chaosId`),
    expiresAt: instant(f.expiresAt, `${at}.expiresAt`),
    direction: direction(f.direction, `${at}.direction`),
    port: port(f.port, `${at}.port`),
    toxics: arr(f.toxics, `${at}.toxics`).map((t, i) => toxic(t, `${at}.toxics[${i}]`)),
  };
  if (f.host !== undefined) out.host = str(f.host, `${at}.host`);
  if (out.direction === 'outbound' && out.host === undefined) throw new PlanError(`${at}.host: required for outbound faults`);
  const names = new Set<string>();
  for (const t of out.toxics) {
    if (names.has(t.name)) throw new PlanError(`${at}.toxics: duplicate toxic name "${t.name}"`);
    names.add(t.name);
  }
  return out;
}

function guard(v: unknown, at: string): PlannedGuard {
  const g = obj(v, at);
  const generation = num(g.generation ?? 0, `${at}.generation`, 0);
  const out: PlannedGuard = { chaosId: str(g.chaosId, `${at}.chaosId`), uid: str(g.uid, `${at}.uid`), generation };
  const window = (w: unknown, p: string): number => num(w, p, 1_000, 3_600_000);
  const minRequests = (m: unknown, p: string): number => num(m ?? 10, p, 1);
  if (g.errorRate !== undefined) {
    const e = obj(g.errorRate, `${at}.errorRate`);
    out.errorRate = { ratio: num(e.ratio, `${at}.errorRate.ratio`, 0, 1), windowMs: window(e.windowMs, `${at}.errorRate.windowMs`), minRequests: minRequests(e.minRequests, `${at}.errorRate.minRequests`) };
  }
  if (g.latency !== undefined) {
    const l = obj(g.latency, `${at}.latency`);
    out.latency = {
      percentile: num(l.percentile, `${at}.latency.percentile`, 0, 100),
      thresholdMs: num(l.thresholdMs, `${at}.latency.thresholdMs`, 0),
      windowMs: window(l.windowMs, `${at}.latency.windowMs`),
      minRequests: minRequests(l.minRequests, `${at}.latency.minRequests`),
    };
  }
  if (!out.errorRate && !out.latency) throw new PlanError(`${at}: needs errorRate or latency`);
  return out;
}

/** Parses and checks a LiveFaultPlan; throws PlanError naming the offending field. */
export function parsePlan(value: unknown): LiveFaultPlan {
  const p = obj(value, 'plan');
  const plan: LiveFaultPlan = {
    http: arr(p.http, 'plan.http').map((f, i) => httpFault(f, `plan.http[${i}]`)),
    tcp: arr(p.tcp, 'plan.tcp').map((f, i) => tcpFault(f, `plan.tcp[${i}]`)),
  };
  if (p.guards !== undefined) plan.guards = arr(p.guards, 'plan.guards').map((g, i) => guard(g, `plan.guards[${i}]`));
  if (p.networkDelay !== undefined) {
    const d = obj(p.networkDelay, 'plan.networkDelay');
    plan.networkDelay = {
      chaosId: str(d.chaosId, 'plan.networkDelay.chaosId'),
      expiresAt: instant(d.expiresAt, 'plan.networkDelay.expiresAt'),
      latencyMs: num(d.latencyMs, 'plan.networkDelay.latencyMs', 0),
      jitterMs: num(d.jitterMs ?? 0, 'plan.networkDelay.jitterMs', 0),
      correlation: num(d.correlation ?? 0, 'plan.networkDelay.correlation', 0, 100),
    };
  }
  if (p.time !== undefined) {
    const t = obj(p.time, 'plan.time');
    plan.time = {
      chaosId: str(t.chaosId, 'plan.time.chaosId'),
      expiresAt: instant(t.expiresAt, 'plan.time.expiresAt'),
      offsetMs: num(t.offsetMs, 'plan.time.offsetMs'),
      containers: arr(t.containers, 'plan.time.containers').map((c, i) => str(c, `plan.time.containers[${i}]`)),
    };
  }
  return plan;
}

/** The plan minus everything expired at `now`: the only view the datapath ever uses. */
export function effectivePlan(plan: LiveFaultPlan, now: number): LiveFaultPlan {
  const out: LiveFaultPlan = {
    http: plan.http.filter((f) => f.expiresAt > now),
    tcp: plan.tcp.filter((f) => f.expiresAt > now && f.toxics.length > 0),
  };
  if (plan.networkDelay && plan.networkDelay.expiresAt > now) out.networkDelay = plan.networkDelay;
  if (plan.time && plan.time.expiresAt > now) out.time = plan.time;
  if (plan.guards) out.guards = plan.guards;
  return out;
}

/** The plan without the faults (and guards) of these policies: what an abort leaves. */
export function withoutPolicies(plan: LiveFaultPlan, chaosIds: ReadonlySet<string>): LiveFaultPlan {
  if (chaosIds.size === 0) return plan;
  const keep = (f: { chaosId: string }): boolean => !chaosIds.has(f.chaosId);
  const out: LiveFaultPlan = { http: plan.http.filter(keep), tcp: plan.tcp.filter(keep) };
  if (plan.networkDelay && keep(plan.networkDelay)) out.networkDelay = plan.networkDelay;
  if (plan.time && keep(plan.time)) out.time = plan.time;
  if (plan.guards) out.guards = plan.guards.filter(keep);
  return out;
}

/** The earliest expiry still ahead of `now`, or undefined when nothing will expire. */
export function nextExpiry(plan: LiveFaultPlan, now: number): number | undefined {
  let next = Infinity;
  const consider = (t: number): void => {
    if (t > now && t < next) next = t;
  };
  for (const f of plan.http) consider(f.expiresAt);
  for (const f of plan.tcp) consider(f.expiresAt);
  if (plan.networkDelay) consider(plan.networkDelay.expiresAt);
  if (plan.time) consider(plan.time.expiresAt);
  return next === Infinity ? undefined : next;
}
