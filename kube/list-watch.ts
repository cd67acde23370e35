// List+watch of one collection, the way client-go's reflector does it, for
// the proxy, faultline-kernel and the webhook's cache: a paged list, then a
// watch from the list's resourceVersion (bookmarks on, so a quiet collection
// still advances it); a watch the server ends is resumed from the last
// resourceVersion seen; "410 Gone" (that resourceVersion was compacted away,
// as an HTTP status or an ERROR event) relists, reporting what changed
// meanwhile; anything else backs off with jitter and retries, keeping the last
// state — the proxy's faults still expire on their own clock, and the
// webhook admits from what it knew.
//
// Every object is projected on arrival, so only what callers read stays in
// memory: whole pods (managedFields, container specs, status) are ten to a
// hundred times what admission reads of them. That is also why the webhook
// does not use client-node's makeInformer, whose ObjectCache keeps objects whole.
//
// Why not @kubernetes/client-node here (the webhook keeps it): the proxy runs
// in every pod with an idle RSS target of 60 MB, and importing client-node
// alone takes a bare Node 24 process from 42 to 112–122 MB RSS (heapUsed 3.7 →
// 26 MB: every generated model and API class, plus undici). Measured gc'd on
// Node 24.21: the old client-node policy source module cost 70 MB RSS over a
// TypeScript baseline, this one 18 MB, half of that node:https itself. An idle
// sidecar watching one policy (as bench/sidecar.ts runs it, not gc'd) went
// from 151–170 MB to 101–121 MB RSS, heapUsed 34–36 → 16.6 MB. The sidecar needs two GETs of one resource with a
// service-account token, which is what this module, client.ts and connection.ts
// are. Left out on purpose: exec/auth-provider credentials, protobuf, HTTP/2,
// proxies (connection.ts refuses a kubeconfig that needs them).

import { setTimeout as sleep } from 'node:timers/promises';
import { Backoff } from '../common/backoff.ts';
import type { Logger } from '../common/log.ts';
import { KubeStatusError, watchEvents, type KubeClient, type Query } from './client.ts';

export interface KubeObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; [key: string]: unknown };
  [key: string]: unknown;
}

export type ChangeType = 'added' | 'modified' | 'deleted';

/** Items per list page: bounds what one response holds in memory. */
const PAGE_SIZE = 100;
/**
 * A list page at most: PAGE_SIZE objects of a few KiB each are well under; a
 * page this large means something is wrong, and buffering it would blow the
 * proxy's memory budget.
 */
const MAX_PAGE_BYTES = 16 * 1024 * 1024;
/** One watch event at most: etcd's default object limit (1.5 MiB) plus the event envelope. */
const MAX_EVENT_BYTES = 2 * 1024 * 1024;
/**
 * Server-side watch timeout, jittered to [1, 2)× like client-go's reflector so a
 * fleet of sidecars does not re-watch in lockstep.
 */
const WATCH_TIMEOUT_S = 300;
/** The server ends a watch at timeoutSeconds; a watch still open this much later is treated as hung. */
const WATCH_GRACE_S = 30;
/** A list that has not answered by now is retried (a frozen API server answers nothing). */
const LIST_TIMEOUT_MS = 30_000;
/** A watch that ends sooner than this without any event is a failure, not a server timeout. */
const MIN_WATCH_MS = 1_000;

export interface ListWatchOptions<T> {
  client: KubeClient;
  /** Collection path without query, e.g. /apis/<group>/<version>/namespaces/<ns>/<plural>, or /api/v1/pods for all namespaces. */
  path: string;
  /** Added to list and watch, e.g. a fieldSelector (RBAC resourceNames allow a list/watch only with metadata.name). */
  query?: Query;
  /** For logs: "ChaosPolicy". */
  kind: string;
  log: Logger;
  /** What is kept of each object (drop what the caller never reads). */
  project: (obj: KubeObject) => T;
  /** Every object of the collection, after each list and after every change. */
  onChange?: (objects: T[]) => void;
  /** Each object that changed, after the store changed; a relist reports what changed since the last list. */
  onDelta?: (type: ChangeType, namespace: string, name: string) => void;
  backoff?: Backoff;
  /** Tests shorten these; the webhook's cluster-wide lists take larger pages. */
  pageSize?: number;
  maxPageBytes?: number;
  watchTimeoutS?: number;
}

type WatchEnd = 'gone' | 'ended' | 'ended-early';

interface Entry<T> {
  rv: string;
  value: T;
}

export class ListWatch<T = KubeObject> {
  readonly #opts: ListWatchOptions<T>;
  readonly #backoff: Backoff;
  readonly #stop = new AbortController();
  /** namespace ('' for cluster-scoped) → name → projected object. */
  #store = new Map<string, Map<string, Entry<T>>>();
  #resourceVersion = '';
  /** 410s since the last watch event: the first relists at once, a repeat backs off (a server stuck answering 410 is not hammered). */
  #gone = 0;
  #firstAttempt: (() => void) | undefined;
  #synced = false;
  readonly #syncWaiters: Array<() => void> = [];

  constructor(opts: ListWatchOptions<T>) {
    this.#opts = opts;
    this.#backoff = opts.backoff ?? new Backoff();
  }

  /** The last resourceVersion seen (list, event or bookmark); '' before the first list. */
  get resourceVersion(): string {
    return this.#resourceVersion;
  }

  /**
   * Runs in the background until `stop`. Resolves once the first list has
   * succeeded or failed (then it keeps retrying; until it succeeds the caller
   * has no objects, which for the sidecar means no faults: fail open).
   */
  start(): Promise<void> {
    const first = new Promise<void>((resolve) => (this.#firstAttempt = resolve));
    void this.#run();
    return first;
  }

  /** Resolves once a first list has been stored (however many attempts that takes). */
  synced(): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise((resolve) => this.#syncWaiters.push(resolve));
  }

  stop(): void {
    this.#stop.abort();
  }

  get(namespace: string, name: string): T | undefined {
    return this.#store.get(namespace)?.get(name)?.value;
  }

  /** Objects of one namespace ('' for cluster-scoped kinds). */
  inNamespace(namespace: string): T[] {
    return [...(this.#store.get(namespace)?.values() ?? [])].map((e) => e.value);
  }

  all(): T[] {
    return [...this.#store.values()].flatMap((m) => [...m.values()].map((e) => e.value));
  }

  get size(): number {
    let n = 0;
    for (const m of this.#store.values()) n += m.size;
    return n;
  }

  async #run(): Promise<void> {
    const { log, kind } = this.#opts;
    let needList = true;
    while (!this.#stop.signal.aborted) {
      try {
        if (needList) {
          await this.#list();
          needList = false;
          this.#backoff.reset();
          this.#settleFirst();
        }
        const end = await this.#watch();
        if (end === 'ended') continue;
        if (end === 'gone') throw new KubeStatusError(410, 'Expired', 'watch resourceVersion too old');
        throw new Error('watch closed as soon as it opened');
      } catch (err) {
        if (this.#stop.signal.aborted) break;
        if (err instanceof KubeStatusError && err.code === 410) {
          // The resourceVersion (or a list's continue token) was compacted away: only a fresh list helps.
          needList = true;
          if (this.#gone++ === 0) {
            log.info({ kind, resourceVersion: this.#resourceVersion }, `${kind} watch expired; relisting`);
            continue;
          }
        }
        this.#settleFirst();
        const delay = this.#backoff.next();
        log.warn({ kind, stage: needList ? 'list' : 'watch', err: (err as Error).message, retryInMs: delay }, `${kind} watch failed; keeping the last state`);
        await sleep(delay, undefined, { signal: this.#stop.signal }).catch(() => {});
      }
    }
    this.#settleFirst();
  }

  #settleFirst(): void {
    this.#firstAttempt?.();
    this.#firstAttempt = undefined;
  }

  /** Every page, then the store is replaced at once: the caller never sees half a list. */
  async #list(): Promise<void> {
    const { client, path, project } = this.#opts;
    const fresh = new Map<string, Map<string, Entry<T>>>();
    let resourceVersion = '';
    let cont: string | undefined;
    do {
      const signal = AbortSignal.any([this.#stop.signal, AbortSignal.timeout(LIST_TIMEOUT_MS)]);
      const query = { ...this.#opts.query, limit: this.#opts.pageSize ?? PAGE_SIZE, continue: cont };
      const page = (await client.getJson(path, query, signal, this.#opts.maxPageBytes ?? MAX_PAGE_BYTES)) as {
        metadata?: { resourceVersion?: string; continue?: string };
        items?: unknown;
      };
      if (!Array.isArray(page?.items)) throw new Error(`GET ${path}: not a list`);
      for (const item of page.items as KubeObject[]) {
        const { name, namespace = '', resourceVersion: rv = '' } = item?.metadata ?? {};
        if (typeof name !== 'string') continue;
        let ns = fresh.get(namespace);
        if (!ns) fresh.set(namespace, (ns = new Map()));
        ns.set(name, { rv, value: project(item) });
      }
      resourceVersion = page.metadata?.resourceVersion ?? '';
      cont = page.metadata?.continue || undefined;
    } while (cont);
    // Without it there is nothing to watch from.
    if (!resourceVersion) throw new Error(`GET ${path}: list without a resourceVersion`);
    const deltas = this.#opts.onDelta ? diffStores(this.#store, fresh) : [];
    this.#store = fresh;
    this.#resourceVersion = resourceVersion;
    this.#opts.log.info({ kind: this.#opts.kind, objects: this.size, resourceVersion }, `${this.#opts.kind} list synced`);
    for (const [type, namespace, name] of deltas) this.#opts.onDelta?.(type, namespace, name);
    this.#changed();
    if (!this.#synced) {
      this.#synced = true;
      for (const resolve of this.#syncWaiters.splice(0)) resolve();
    }
  }

  async #watch(): Promise<WatchEnd> {
    const { client, path } = this.#opts;
    const timeoutSeconds = Math.round((this.#opts.watchTimeoutS ?? WATCH_TIMEOUT_S) * (1 + Math.random()));
    const signal = AbortSignal.any([this.#stop.signal, AbortSignal.timeout((timeoutSeconds + WATCH_GRACE_S) * 1000)]);
    const started = Date.now();
    const res = await client.stream(
      path,
      { ...this.#opts.query, watch: 1, resourceVersion: this.#resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
      signal,
    );
    let events = 0;
    // Leaving the loop early (return/throw) destroys the response, closing the watch.
    for await (const ev of watchEvents(res, MAX_EVENT_BYTES)) {
      events++;
      if (ev.type === 'ERROR') {
        const status = KubeStatusError.fromStatus(ev.object, 500);
        if (status.code === 410) return 'gone';
        throw status;
      }
      // A real event arrived: the watch works, so the next failure starts the backoff afresh.
      this.#backoff.reset();
      this.#gone = 0;
      const obj = ev.object as KubeObject;
      const { name, namespace = '', resourceVersion: rv } = obj.metadata ?? {};
      if (typeof rv === 'string' && rv !== '') this.#resourceVersion = rv;
      if (ev.type === 'BOOKMARK' || typeof name !== 'string') continue;
      const type = this.#apply(ev.type, namespace, name, rv ?? '', obj);
      if (!type) continue;
      this.#opts.onDelta?.(type, namespace, name);
      this.#changed();
    }
    return events === 0 && Date.now() - started < MIN_WATCH_MS ? 'ended-early' : 'ended';
  }

  /** Stores one watch event; what it changed, if anything. */
  #apply(event: string, namespace: string, name: string, rv: string, obj: KubeObject): ChangeType | undefined {
    let ns = this.#store.get(namespace);
    if (event === 'DELETED') {
      if (!ns?.delete(name)) return undefined;
      if (ns.size === 0) this.#store.delete(namespace);
      return 'deleted';
    }
    if (event !== 'ADDED' && event !== 'MODIFIED') return undefined;
    if (!ns) this.#store.set(namespace, (ns = new Map()));
    const existed = ns.has(name);
    ns.set(name, { rv, value: this.#opts.project(obj) });
    return existed ? 'modified' : 'added';
  }

  #changed(): void {
    this.#opts.onChange?.(this.all());
  }
}

/** What a relist changed: added, modified (another resourceVersion) and deleted objects. Pure. */
export function diffStores<T>(before: ReadonlyMap<string, ReadonlyMap<string, Entry<T>>>, after: ReadonlyMap<string, ReadonlyMap<string, Entry<T>>>): Array<[ChangeType, string, string]> {
  const changes: Array<[ChangeType, string, string]> = [];
  for (const [namespace, names] of after)
    for (const [name, entry] of names) {
      const old = before.get(namespace)?.get(name);
      if (!old) changes.push(['added', namespace, name]);
      else if (old.rv !== entry.rv) changes.push(['modified', namespace, name]);
    }
  for (const [namespace, names] of before)
    for (const name of names.keys()) if (!after.get(namespace)?.has(name)) changes.push(['deleted', namespace, name]);
  return changes;
}
