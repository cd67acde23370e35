// One resource kept in memory by list + watch, the way client-go's reflector
// does it: a paginated list, then a watch from the list's resourceVersion;
// watch ends (the server's timeout, a dropped connection) resume from the
// last resourceVersion seen; errors back off exponentially; "410 Gone" (the
// resourceVersion was compacted away) relists.
//
// Not @kubernetes/client-node's makeInformer: its ObjectCache keeps every
// object whole, and whole pods (managedFields, container specs, status) are
// ten to a hundred times what admission reads of them. Here every object is
// projected on arrival, so only what callers use stays in memory.
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { Backoff } from '../../common/backoff.ts';
import type { Logger } from '../../common/log.ts';
import { errorMessage } from '../../kube/api-error.ts';

// Callers used to take the formatter from here; it lives in the Kubernetes layer now.
export { errorMessage };

/** The parts of a list response a reflector reads. */
export interface ListPage {
  metadata?: { resourceVersion?: string; _continue?: string; continue?: string };
  items: unknown[];
}

export type ListFn = (page: { limit: number; _continue?: string }) => Promise<ListPage>;

export type ChangeType = 'added' | 'modified' | 'deleted';

export interface ReflectorOptions<T> {
  /** For logs and errors: "pods", "chaospolicies". */
  name: string;
  kubeConfig: KubeConfig;
  /** Watch path without query, e.g. /api/v1/pods. */
  path: string;
  /** Extra watch query, e.g. a fieldSelector (the list function applies its own). */
  query?: Record<string, string>;
  list: ListFn;
  /** What is kept of an object. Called for every object listed or watched. */
  project: (raw: RawObject) => T;
  log: Logger;
  /** Called after the store changed. */
  onChange?: (type: ChangeType, namespace: string, name: string) => void;
}

export interface RawObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** Items per list page: bounds the memory a relist of a large cluster takes at once. */
const PAGE_SIZE = 500;
/** Server-side watch timeout, jittered so a fleet of webhooks does not rewatch in lockstep. */
const WATCH_TIMEOUT_S = 300;

export class Reflector<T> {
  readonly name: string;
  /** namespace ('' for cluster-scoped) → name → projected object. */
  readonly #store = new Map<string, Map<string, { rv: string; value: T }>>();
  readonly #opts: ReflectorOptions<T>;
  #resourceVersion = '';
  #synced = false;
  #stopped = false;
  #abort: AbortController | undefined;
  #retry: NodeJS.Timeout | undefined;
  readonly #backoff = new Backoff();
  readonly #syncWaiters: Array<() => void> = [];

  constructor(opts: ReflectorOptions<T>) {
    this.#opts = opts;
    this.name = opts.name;
  }

  /** Starts listing and watching in the background; see `synced`. */
  start(): void {
    void this.#listAndWatch();
  }

  /** Resolves once the first list has been stored (retrying failed lists meanwhile). */
  synced(): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise((resolve) => this.#syncWaiters.push(resolve));
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retry);
    this.#abort?.abort();
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

  async #listAndWatch(): Promise<void> {
    if (this.#stopped) return;
    try {
      await this.#relist();
    } catch (err) {
      this.#retryLater('list failed', err, () => void this.#listAndWatch());
      return;
    }
    this.#backoff.reset();
    if (!this.#synced) {
      this.#synced = true;
      this.#opts.log.info({ resource: this.name, objects: this.all().length }, 'cache synced');
      for (const resolve of this.#syncWaiters.splice(0)) resolve();
    }
    await this.#watch();
  }

  /** Lists every page, then replaces the store, reporting what changed since the last list. */
  async #relist(): Promise<void> {
    const fresh = new Map<string, Map<string, { rv: string; value: T }>>();
    let resourceVersion = '';
    let cont: string | undefined;
    do {
      const page = await this.#opts.list({ limit: PAGE_SIZE, ...(cont ? { _continue: cont } : {}) });
      for (const raw of page.items as RawObject[]) {
        const { namespace = '', name = '', resourceVersion: rv = '' } = raw.metadata ?? {};
        let ns = fresh.get(namespace);
        if (!ns) fresh.set(namespace, (ns = new Map()));
        ns.set(name, { rv, value: this.#opts.project(raw) });
      }
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      cont = page.metadata?._continue ?? page.metadata?.continue;
    } while (cont);
    const changes: Array<[ChangeType, string, string]> = [];
    for (const [namespace, names] of fresh)
      for (const [name, entry] of names) {
        const old = this.#store.get(namespace)?.get(name);
        if (!old) changes.push(['added', namespace, name]);
        else if (old.rv !== entry.rv) changes.push(['modified', namespace, name]);
      }
    for (const [namespace, names] of this.#store)
      for (const name of names.keys()) if (!fresh.get(namespace)?.has(name)) changes.push(['deleted', namespace, name]);
    this.#store.clear();
    for (const [k, v] of fresh) this.#store.set(k, v);
    this.#resourceVersion = resourceVersion;
    for (const [type, namespace, name] of changes) this.#opts.onChange?.(type, namespace, name);
  }

  async #watch(): Promise<void> {
    if (this.#stopped) return;
    let gone = false;
    const timeoutSeconds = Math.round(WATCH_TIMEOUT_S * (1 + Math.random()));
    const started = Date.now();
    const onEvent = (type: string, obj: RawObject): void => {
      // Something arrived: the connection works, so the next failure starts the backoff afresh.
      this.#backoff.reset();
      if (type === 'ERROR') {
        // A Status object: 410 Gone means our resourceVersion is too old to resume from.
        const status = obj as { code?: number; message?: string };
        if (status.code === 410) gone = true;
        else this.#opts.log.warn({ resource: this.name, code: status.code, message: status.message }, 'watch error event');
        return;
      }
      const rv = obj.metadata?.resourceVersion;
      if (rv) this.#resourceVersion = rv;
      if (type === 'BOOKMARK') return;
      this.#apply(type, obj);
    };
    const onDone = (err: unknown): void => {
      this.#abort = undefined;
      if (this.#stopped) return;
      if (gone) {
        this.#opts.log.info({ resource: this.name }, 'watch resourceVersion expired; relisting');
        void this.#listAndWatch();
      } else if (err) {
        this.#retryLater('watch failed', err, () => void this.#watch());
      } else if (Date.now() - started < 1000) {
        // Closed as soon as it opened (a proxy, an apiserver going away): not a timeout, back off.
        this.#retryLater('watch closed at once', new Error('connection closed'), () => void this.#watch());
      } else {
        // The server ended the watch (timeoutSeconds): resume where we are.
        void this.#watch();
      }
    };
    try {
      this.#abort = await new Watch(this.#opts.kubeConfig).watch(
        this.#opts.path,
        { ...this.#opts.query, resourceVersion: this.#resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
        onEvent,
        onDone,
      );
      if (this.#stopped) this.#abort.abort();
    } catch (err) {
      onDone(err);
    }
  }

  #apply(type: string, raw: RawObject): void {
    const { namespace = '', name = '', resourceVersion: rv = '' } = raw.metadata ?? {};
    let ns = this.#store.get(namespace);
    if (type === 'DELETED') {
      if (!ns?.delete(name)) return;
      if (ns.size === 0) this.#store.delete(namespace);
      this.#opts.onChange?.('deleted', namespace, name);
      return;
    }
    if (type !== 'ADDED' && type !== 'MODIFIED') return;
    if (!ns) this.#store.set(namespace, (ns = new Map()));
    const existed = ns.has(name);
    ns.set(name, { rv, value: this.#opts.project(raw) });
    this.#opts.onChange?.(existed ? 'modified' : 'added', namespace, name);
  }

  #retryLater(what: string, err: unknown, again: () => void): void {
    if (this.#stopped) return;
    const delay = this.#backoff.next();
    this.#opts.log.warn({ resource: this.name, err: errorMessage(err), retryInMs: delay }, `${what}; retrying`);
    this.#retry = setTimeout(again, delay);
    this.#retry.unref();
  }
}
