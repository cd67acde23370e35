/**
 * Capped exponential backoff with jitter: the base doubles from `initialMs` to
 * `maxMs` and each delay is drawn uniformly from [base/2, base], so clients
 * that lost a server together (every sidecar of a cluster, every webhook
 * replica) do not come back in lockstep.
 */
export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly #random: () => number;
  #base: number;

  constructor(initialMs = 200, maxMs = 30_000, random: () => number = Math.random) {
    this.initialMs = initialMs;
    this.maxMs = maxMs;
    this.#random = random;
    this.#base = initialMs;
  }

  next(): number {
    const base = this.#base;
    this.#base = Math.min(base * 2, this.maxMs);
    return Math.round(base / 2 + (this.#random() * base) / 2);
  }

  reset(): void {
    this.#base = this.initialMs;
  }
}
