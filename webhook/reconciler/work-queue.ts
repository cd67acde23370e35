// A deduplicating work queue in the manner of client-go's workqueue: a key
// added many times before it is processed is processed once; a key is never
// processed twice at the same time (added while in flight, it runs again
// after); a failed key is retried with per-key exponential backoff.

const BACKOFF_INITIAL_MS = 100;
const BACKOFF_MAX_MS = 30_000;

export class WorkQueue {
  readonly #work: (key: string) => Promise<void>;
  readonly #onError: (key: string, err: unknown) => void;
  readonly #concurrency: number;
  readonly #pending = new Set<string>();
  readonly #inFlight = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #retries = new Set<NodeJS.Timeout>();
  #stopped = false;

  constructor(work: (key: string) => Promise<void>, onError: (key: string, err: unknown) => void, concurrency = 4) {
    this.#work = work;
    this.#onError = onError;
    this.#concurrency = concurrency;
  }

  add(key: string): void {
    if (this.#stopped) return;
    this.#pending.add(key);
    this.#pump();
  }

  /** Keys waiting or being processed. */
  get size(): number {
    return new Set([...this.#pending, ...this.#inFlight]).size;
  }

  stop(): void {
    this.#stopped = true;
    this.#pending.clear();
    for (const t of this.#retries) clearTimeout(t);
    this.#retries.clear();
  }

  #pump(): void {
    for (const key of this.#pending) {
      if (this.#inFlight.size >= this.#concurrency) return;
      if (this.#inFlight.has(key)) continue;
      this.#pending.delete(key);
      this.#inFlight.add(key);
      void this.#run(key);
    }
  }

  async #run(key: string): Promise<void> {
    try {
      await this.#work(key);
      this.#failures.delete(key);
    } catch (err) {
      const failures = (this.#failures.get(key) ?? 0) + 1;
      this.#failures.set(key, failures);
      this.#onError(key, err);
      if (!this.#stopped) {
        const t = setTimeout(() => {
          this.#retries.delete(t);
          this.add(key);
        }, Math.min(BACKOFF_INITIAL_MS * 2 ** (failures - 1), BACKOFF_MAX_MS));
        t.unref();
        this.#retries.add(t);
      }
    } finally {
      this.#inFlight.delete(key);
      if (!this.#stopped) this.#pump();
    }
  }
}
