// A local HTTPS stand-in for kube-apiserver's list+watch of one namespaced
// collection, for the sidecar's Kubernetes client (unit tests, bench): paged
// lists with continue tokens, watches that replay history from a
// resourceVersion and then stream live events, bookmarks, compaction (a watch
// from before it gets the 410 ERROR event), bearer-token checks (401), forced
// HTTP statuses, dropped connections and events split across TLS records.
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { makeTestCertificates, type TestCertificates } from './webhook-tls.ts';

export interface Obj {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  [k: string]: unknown;
}

export interface SeenRequest {
  path: string;
  query: URLSearchParams;
  authorization: string | undefined;
  userAgent: string | undefined;
}

/** The API server takes any true-ish `watch` (client-go sends 1, others true). */
const isWatch = (q: URLSearchParams): boolean => ['1', 'true'].includes(q.get('watch') ?? '');

interface HistoryEntry {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: Obj;
}

export class FakeKubeApiserver {
  readonly ca: Buffer;
  url = '';
  /** The bearer token every request must carry; undefined accepts anything. */
  token: string | undefined;
  /** Statuses to answer the next watch requests with, in order (e.g. 410, 500). */
  readonly watchStatuses: number[] = [];
  /** Statuses to answer the next list requests with, in order. */
  readonly listStatuses: number[] = [];
  /** Write each event in two halves, 5 ms apart, so the client sees partial lines. */
  splitEvents = false;
  readonly requests: SeenRequest[] = [];
  readonly collection: string;

  readonly #server: https.Server;
  readonly #objects = new Map<string, Obj>();
  #history: HistoryEntry[] = [];
  #rv = 100;
  /** Watches from a resourceVersion below this get "410 Gone". */
  #compactedBelow = 0;
  readonly #watches = new Set<ServerResponse>();

  private constructor(collection: string, cert: TestCertificates) {
    this.collection = collection;
    this.ca = cert.ca;
    this.#server = https.createServer({ cert: cert.cert, key: cert.key }, (req, res) => this.#handle(req.url ?? '/', req.headers, res));
  }

  /**
   * `collection` is the path served, e.g. /apis/chaos.faultline.dev/v1alpha1/namespaces/ns/chaospolicies;
   * pass `certs` to reuse certificates across servers (openssl takes a while).
   */
  static async start(collection: string, certs?: TestCertificates): Promise<FakeKubeApiserver> {
    const s = new FakeKubeApiserver(collection, certs ?? (await makeTestCertificates('fake-kube-apiserver-ca')));
    await new Promise<void>((r) => s.#server.listen(0, '127.0.0.1', r));
    s.url = `https://127.0.0.1:${(s.#server.address() as AddressInfo).port}`;
    return s;
  }

  get resourceVersion(): string {
    return String(this.#rv);
  }

  get openWatches(): number {
    return this.#watches.size;
  }

  watchRequests(): SeenRequest[] {
    return this.requests.filter((r) => isWatch(r.query));
  }

  listRequests(): SeenRequest[] {
    return this.requests.filter((r) => !isWatch(r.query));
  }

  /** Creates or replaces `name`; `fields` (spec, status, apiVersion, kind…) are the object's other top-level fields; `fields.metadata` (a namespace, labels) is merged. */
  upsert(name: string, fields: Record<string, unknown> = {}): Obj {
    const type = this.#objects.has(name) ? 'MODIFIED' : 'ADDED';
    const object: Obj = { apiVersion: 'v1', kind: 'Thing', ...fields, metadata: { ...(fields.metadata as object | undefined), name, resourceVersion: String(++this.#rv), managedFields: [{ manager: 'kubectl' }] } };
    this.#objects.set(name, object);
    this.#emit({ rv: this.#rv, type, object });
    return object;
  }

  remove(name: string): void {
    const old = this.#objects.get(name);
    if (!old) throw new Error(`no object ${name}`);
    this.#objects.delete(name);
    this.#emit({ rv: ++this.#rv, type: 'DELETED', object: { ...old, metadata: { ...old.metadata, resourceVersion: String(this.#rv) } } });
  }

  /** A change the watchers never hear about (as if it happened while they were away), and history before it compacted. */
  upsertUnseen(name: string, fields: Record<string, unknown> = {}): void {
    this.#objects.set(name, { apiVersion: 'v1', kind: 'Thing', ...fields, metadata: { ...(fields.metadata as object | undefined), name, resourceVersion: String(++this.#rv) } });
    this.compact();
  }

  /** Forgets history up to now: a watch from an older resourceVersion is answered with 410. */
  compact(): void {
    this.#compactedBelow = this.#rv;
    this.#history = [];
  }

  /** Sends a BOOKMARK at the current resourceVersion to every open watch. */
  bookmark(): void {
    for (const res of this.#watches) this.#write(res, { type: 'BOOKMARK', object: { kind: 'Thing', metadata: { resourceVersion: String(this.#rv) } } });
  }

  /** Sends `line` as is to every open watch (malformed-stream tests). */
  sendRaw(line: string): void {
    for (const res of this.#watches) res.write(line);
  }

  /** Cuts every open watch's connection without ending the response. */
  dropWatches(): void {
    for (const res of this.#watches) res.socket?.destroy();
    this.#watches.clear();
  }

  /** Ends every open watch cleanly, as the server's timeoutSeconds would. */
  endWatches(): void {
    for (const res of this.#watches) res.end();
    this.#watches.clear();
  }

  async close(): Promise<void> {
    this.dropWatches();
    this.#server.closeAllConnections();
    await new Promise((r) => this.#server.close(r));
  }

  #emit(entry: HistoryEntry): void {
    this.#history.push(entry);
    for (const res of this.#watches) this.#write(res, { type: entry.type, object: entry.object });
  }

  /** Per watch, the end of the writes in flight: split events must not interleave. */
  readonly #pending = new WeakMap<ServerResponse, Promise<void>>();

  #write(res: ServerResponse, event: unknown): void {
    const line = `${JSON.stringify(event)}\n`;
    const cut = this.splitEvents ? Math.floor(line.length / 2) : line.length;
    const done = (this.#pending.get(res) ?? Promise.resolve()).then(async () => {
      if (!res.writable) return;
      res.write(line.slice(0, cut));
      if (cut === line.length) return;
      await new Promise((r) => setTimeout(r, 5));
      if (res.writable) res.write(line.slice(cut));
    });
    this.#pending.set(res, done);
  }

  #handle(rawUrl: string, headers: IncomingHttpHeaders, res: ServerResponse): void {
    const url = new URL(rawUrl, 'https://x');
    const { authorization, 'user-agent': userAgent } = headers;
    this.requests.push({ path: url.pathname, query: url.searchParams, authorization, userAgent });
    const status = (code: number, reason: string, message: string): void => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message }));
    };
    if (this.token !== undefined && authorization !== `Bearer ${this.token}`) return status(401, 'Unauthorized', 'Unauthorized');
    if (url.pathname !== this.collection) return status(404, 'NotFound', `no such path ${url.pathname}`);
    const watch = isWatch(url.searchParams);
    const forced = (watch ? this.watchStatuses : this.listStatuses).shift();
    if (forced !== undefined) return status(forced, forced === 410 ? 'Expired' : 'InternalError', `forced ${forced}`);
    if (!watch) return this.#list(url.searchParams, res);

    const from = Number(url.searchParams.get('resourceVersion'));
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    if (!(from >= this.#compactedBelow)) {
      res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 410, reason: 'Expired', message: `too old resource version: ${from} (${this.#compactedBelow})` } })}\n`);
      return;
    }
    // Headers out at once, as the real server flushes them before the first event.
    res.flushHeaders();
    for (const e of this.#history) if (e.rv > from) this.#write(res, { type: e.type, object: e.object });
    this.#watches.add(res);
    res.on('close', () => this.#watches.delete(res));
    const timeoutS = Number(url.searchParams.get('timeoutSeconds'));
    if (timeoutS > 0) {
      const t = setTimeout(() => res.end(), timeoutS * 1000);
      res.on('close', () => clearTimeout(t));
    }
  }

  #list(query: URLSearchParams, res: ServerResponse): void {
    const all = [...this.#objects.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const limit = Number(query.get('limit')) || all.length;
    const offset = Number(query.get('continue') ?? 0);
    const items = all.slice(offset, offset + limit);
    const next = offset + limit < all.length ? String(offset + limit) : undefined;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ apiVersion: 'v1', kind: 'ThingList', metadata: { resourceVersion: String(this.#rv), ...(next ? { continue: next } : {}) }, items }));
  }
}
