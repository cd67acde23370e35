// A deduplicating work queue in the manner of client-go's workqueue: a key
// added many times before it is processed is processed once; a key is never
// processed twice at the same time (added while in flight, it runs again
// after); a failed key is retried with per-key exponential backoff.

import { Backoff } from '../common/backoff.ts';

export class WorkQueue {
  readonly #work: (key: string) => Promise<void>;
  readonly #onError: (key: string, err: unknown) => void;
  readonly #concurrency: number;
  readonly #pending = new Set<string>();
  readonly #inFlight = new Set<string>();
  /** Keys whose last run failed, with the backoff of their next retry. */
  readonly #failures = new Map<string, Backoff>();
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
      let backoff = this.#failures.get(key);
      if (!backoff) this.#failures.set(key, (backoff = new Backoff(100, 30_000)));
      this.#onError(key, err);
      if (!this.#stopped) {
        const t = setTimeout(() => {
          this.#retries.delete(t);
          this.add(key);
        }, backoff.next());
        t.unref();
        this.#retries.add(t);
      }
    } finally {
      this.#inFlight.delete(key);
      if (!this.#stopped) this.#pump();
    }
  }
}
