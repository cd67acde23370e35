// A metric label whose values come from users (policy names, tenants) would
// let them grow the series count without bound. The first `max` values get a
// series of their own; every later one shares OTHER until a slot is released.
export const OTHER = 'other';

export class BoundedLabels {
  readonly max: number;
  readonly #assigned = new Set<string>();

  constructor(max: number) {
    this.max = max;
  }

  /** The label value for `key`: itself while there is room, else OTHER. */
  label(key: string): string {
    if (this.#assigned.has(key)) return key;
    if (this.#assigned.size >= this.max || key === OTHER) return OTHER;
    this.#assigned.add(key);
    return key;
  }

  has(key: string): boolean {
    return this.#assigned.has(key);
  }

  /** Frees `key`'s slot; true when it had one (its series should be removed). */
  release(key: string): boolean {
    return this.#assigned.delete(key);
  }
}
