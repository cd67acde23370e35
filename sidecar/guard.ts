// The steady-state guard in the proxy: every response on the HTTP path of a
// guarded policy's port is counted (error or not, and its time as the caller
// saw it, injected delays and aborts included — the guard bounds what the
// experiment does to callers), and each policy's abortWhen is judged over its
// sliding window. A breach ends that policy's faults here at once (the
// sidecar drops it from its plan) and is handed on (onBreach) so the other
// pods' proxies and the reconciler learn of it.
//
// Memory and cost are fixed per guard, whatever the request rate: the window
// is ~30 time buckets, each a count, an error count and a log-scale latency
// histogram (bins 5% wide, so a percentile is exact to 5%). A request costs
// two increments; a judgement (at most every JUDGE_EVERY_MS per guard) sums
// the live buckets. Raw samples would make both grow with the rate.
import type { PlannedGuard } from '../contract/plans.ts';

export interface Breach {
  chaosId: string;
  uid: string;
  generation: number;
  condition: 'errorRate' | 'latency';
  /** Percent (errorRate) or milliseconds (latency). */
  observed: number;
  threshold: number;
  requests: number;
  windowMs: number;
}

export const JUDGE_EVERY_MS = 50;
const MIN_BUCKET_MS = 100;
const BUCKETS = 30;
const BIN_GROWTH = 1.05;
const BIN_MIN_MS = 0.25;
const BINS = Math.ceil(Math.log(600_000 / BIN_MIN_MS) / Math.log(BIN_GROWTH)) + 1;

function binOf(ms: number): number {
  if (ms <= BIN_MIN_MS) return 0;
  return Math.min(BINS - 1, Math.ceil(Math.log(ms / BIN_MIN_MS) / Math.log(BIN_GROWTH)));
}
/** The upper edge of a bin: a percentile is reported as at most this. */
function binUpperMs(bin: number): number {
  return BIN_MIN_MS * BIN_GROWTH ** bin;
}

/** Responses over a sliding window, in fixed memory. Pure apart from the `now` it is given. */
export class WindowStats {
  readonly windowMs: number;
  readonly #bucketMs: number;
  readonly #slots: number;
  readonly #start: Float64Array;
  readonly #count: Uint32Array;
  readonly #errors: Uint32Array;
  readonly #hist: Uint32Array;

  constructor(windowMs: number) {
    this.windowMs = windowMs;
    this.#bucketMs = Math.max(MIN_BUCKET_MS, Math.ceil(windowMs / BUCKETS));
    // One more slot than the window spans: the current, partly filled bucket.
    this.#slots = Math.ceil(windowMs / this.#bucketMs) + 1;
    this.#start = new Float64Array(this.#slots).fill(-Infinity);
    this.#count = new Uint32Array(this.#slots);
    this.#errors = new Uint32Array(this.#slots);
    this.#hist = new Uint32Array(this.#slots * BINS);
  }

  add(now: number, error: boolean, ms: number): void {
    const start = Math.floor(now / this.#bucketMs) * this.#bucketMs;
    const slot = Math.floor(now / this.#bucketMs) % this.#slots;
    if (this.#start[slot] !== start) {
      this.#start[slot] = start;
      this.#count[slot] = 0;
      this.#errors[slot] = 0;
      this.#hist.fill(0, slot * BINS, (slot + 1) * BINS);
    }
    this.#count[slot]!++;
    if (error) this.#errors[slot]!++;
    this.#hist[slot * BINS + binOf(ms)]!++;
  }

  /** Slots whose bucket overlaps (now - window, now]. */
  #live(now: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.#slots; i++) if (this.#start[i]! + this.#bucketMs > now - this.windowMs) out.push(i);
    return out;
  }

  totals(now: number): { requests: number; errors: number } {
    let requests = 0;
    let errors = 0;
    for (const i of this.#live(now)) {
      requests += this.#count[i]!;
      errors += this.#errors[i]!;
    }
    return { requests, errors };
  }

  /** The pNN response time in ms (upper edge of its 5 % bin), or undefined with no responses. */
  percentile(now: number, p: number): number | undefined {
    const live = this.#live(now);
    let total = 0;
    for (const i of live) total += this.#count[i]!;
    if (total === 0) return undefined;
    const rank = Math.ceil((p / 100) * total);
    let seen = 0;
    for (let b = 0; b < BINS; b++) {
      for (const i of live) seen += this.#hist[i * BINS + b]!;
      if (seen >= rank) return binUpperMs(b);
    }
    return binUpperMs(BINS - 1);
  }
}

/** One policy's guard: its windows and the verdict. */
export class Guard {
  readonly plan: PlannedGuard;
  readonly #errors: WindowStats | undefined;
  readonly #latency: WindowStats | undefined;
  #judgedAt = -Infinity;

  constructor(plan: PlannedGuard) {
    this.plan = plan;
    this.#errors = plan.errorRate ? new WindowStats(plan.errorRate.windowMs) : undefined;
    this.#latency = plan.latency ? new WindowStats(plan.latency.windowMs) : undefined;
  }

  observe(now: number, error: boolean, ms: number): void {
    this.#errors?.add(now, error, ms);
    this.#latency?.add(now, error, ms);
  }

  /** Whether a judgement is due (they are throttled per guard). */
  due(now: number): boolean {
    return now - this.#judgedAt >= JUDGE_EVERY_MS;
  }

  judge(now: number): Breach | undefined {
    this.#judgedAt = now;
    const { plan } = this;
    const base = { chaosId: plan.chaosId, uid: plan.uid, generation: plan.generation };
    if (plan.errorRate && this.#errors) {
      const { requests, errors } = this.#errors.totals(now);
      // Strictly above the threshold, and only on enough requests: one bad request never trips it.
      if (requests >= plan.errorRate.minRequests && errors / requests > plan.errorRate.ratio) {
        return { ...base, condition: 'errorRate', observed: round((100 * errors) / requests), threshold: round(plan.errorRate.ratio * 100), requests, windowMs: plan.errorRate.windowMs };
      }
    }
    if (plan.latency && this.#latency) {
      const { requests } = this.#latency.totals(now);
      const p = this.#latency.percentile(now, plan.latency.percentile);
      if (requests >= plan.latency.minRequests && p !== undefined && p > plan.latency.thresholdMs) {
        return { ...base, condition: 'latency', observed: round(p), threshold: plan.latency.thresholdMs, requests, windowMs: plan.latency.windowMs };
      }
    }
    return undefined;
  }
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

/** The key an abort holds: one generation of one policy. */
export function abortKey(g: { uid: string; generation: number }): string {
  return `${g.uid}/${g.generation}`;
}

/**
 * Every guard of the pod's plan. Guards of the same policy generation keep
 * their windows across plan changes; an aborted generation stays aborted here
 * (the sidecar drops its faults) until the plan names a newer generation.
 */
export class Guards {
  readonly #byChaosId = new Map<string, Guard>();
  readonly #aborted = new Map<string, Breach>();
  readonly #onBreach: (b: Breach) => void;
  readonly #now: () => number;
  #pending: NodeJS.Timeout | undefined;

  constructor(onBreach: (b: Breach) => void, now: () => number = Date.now) {
    this.#onBreach = onBreach;
    this.#now = now;
  }

  get size(): number {
    return this.#byChaosId.size;
  }

  setPlan(guards: readonly PlannedGuard[]): void {
    const next = new Map<string, Guard>();
    for (const g of guards) {
      const old = this.#byChaosId.get(g.chaosId);
      next.set(g.chaosId, old && abortKey(old.plan) === abortKey(g) ? old : new Guard(g));
    }
    this.#byChaosId.clear();
    for (const [k, v] of next) this.#byChaosId.set(k, v);
  }

  /** Whether this generation was aborted here or told to us (markAborted). */
  isAborted(g: { uid: string; generation: number }): boolean {
    return this.#aborted.has(abortKey(g));
  }

  /** An abort another pod's proxy saw, or the reconciler recorded. */
  markAborted(b: Breach): boolean {
    if (this.#aborted.has(abortKey(b))) return false;
    this.#aborted.set(abortKey(b), b);
    return true;
  }

  /** One response on a port whose faults come from `chaosIds` (duplicates allowed). */
  observe(chaosIds: readonly string[], error: boolean, ms: number): void {
    if (this.#byChaosId.size === 0) return;
    const now = this.#now();
    for (let i = 0; i < chaosIds.length; i++) {
      const id = chaosIds[i]!;
      // Once per policy, wherever its rules sit in the list (a handful of ids: no Set).
      if (chaosIds.indexOf(id) !== i) continue;
      const guard = this.#byChaosId.get(id);
      if (!guard || this.isAborted(guard.plan)) continue;
      guard.observe(now, error, ms);
      if (guard.due(now)) this.#judge(guard, now);
      else this.#judgeLater();
    }
  }

  #judge(guard: Guard, now: number): void {
    const breach = guard.judge(now);
    if (breach && this.markAborted(breach)) this.#onBreach(breach);
  }

  /** A response that fell inside the throttle is judged a moment later even if no other arrives. */
  #judgeLater(): void {
    if (this.#pending) return;
    this.#pending = setTimeout(() => {
      this.#pending = undefined;
      const now = this.#now();
      for (const g of this.#byChaosId.values()) if (!this.isAborted(g.plan)) this.#judge(g, now);
    }, JUDGE_EVERY_MS);
    this.#pending.unref();
  }

  stop(): void {
    clearTimeout(this.#pending);
  }
}

/** HTTP 5xx, or a gRPC status other than OK (0) where the datapath reads one. */
export function isErrorResponse(httpStatus: number, grpcStatus?: number): boolean {
  return httpStatus >= 500 || (grpcStatus !== undefined && grpcStatus !== 0);
}
