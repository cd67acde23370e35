// What is derived from an object's spec, computed once per (uid, generation).
// A custom resource's generation moves with every spec change and not with a
// status write (status is a subresource). The reconciler writes status many
// times per policy, and each write reaches the webhook's cache and every
// proxy of the namespace. Validating and defaulting a ChaosPolicy again costs
// 39 µs for a one-rule policy and 585 µs for one of 16 HTTP and 4 TCP rules;
// `npm run bench:planner` re-plans a proxy after a status write to one of ten
// such policies in 0.037-0.045 of the time (three runs, 2026-11-26).

interface ObjectWithGeneration {
  metadata?: { namespace?: string; name?: string; uid?: string; generation?: number };
}

export class GenerationMemo<T> {
  readonly #entries = new Map<string, { uid: string | undefined; generation: number; value: T }>();

  /** `compute()`'s value for this object's generation, computed at most once per generation. */
  get(object: ObjectWithGeneration, compute: () => T): T {
    const { namespace = '', name = '', uid, generation } = object.metadata ?? {};
    // Without a generation (never from the API server) there is nothing safe to key on.
    if (typeof generation !== 'number') return compute();
    const key = `${namespace}/${name}`;
    const hit = this.#entries.get(key);
    if (hit && hit.uid === uid && hit.generation === generation) return hit.value;
    const value = compute();
    this.#entries.set(key, { uid, generation, value });
    return value;
  }

  /** Forgets a deleted object, so the memo does not outlive it. */
  delete(namespace: string, name: string): void {
    this.#entries.delete(`${namespace}/${name}`);
  }

  /** Forgets every object not in `objects` (a full list that replaces the last one). */
  retainOnly(objects: readonly ObjectWithGeneration[]): void {
    const keep = new Set(objects.map((o) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`));
    for (const key of this.#entries.keys()) if (!keep.has(key)) this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }
}
