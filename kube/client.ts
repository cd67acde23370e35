// The requests the proxy, faultline-kernel, `faultline pause` and the webhook's cache make to the API server — a bounded JSON GET
// (list pages), a streaming GET (watch) and a small JSON write — over one keep-alive TLS agent,
// plus the newline splitter that turns a watch body into events. See list-watch.ts
// for why this exists instead of @kubernetes/client-node.

import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { VERSION } from '../common/version.ts';
import type { KubeConnection } from './connection.ts';

/** A non-2xx answer, or a watch ERROR event: the API server's Status, when it sent one. */
export class KubeStatusError extends Error {
  readonly code: number;
  readonly reason: string | undefined;

  constructor(code: number, reason: string | undefined, message: string) {
    super(`HTTP ${code}${reason ? ` ${reason}` : ''}: ${message}`);
    this.name = 'KubeStatusError';
    this.code = code;
    this.reason = reason;
  }

  /** From a metav1.Status (an error body, or the object of a watch ERROR event). */
  static fromStatus(status: unknown, fallbackCode: number): KubeStatusError {
    const s = (status ?? {}) as { code?: unknown; reason?: unknown; message?: unknown };
    return new KubeStatusError(
      typeof s.code === 'number' ? s.code : fallbackCode,
      typeof s.reason === 'string' ? s.reason : undefined,
      typeof s.message === 'string' ? s.message : JSON.stringify(status),
    );
  }
}

/** Of an error body only the Status matters; anything longer is cut. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

export type Query = Record<string, string | number | boolean | undefined>;

export class KubeClient {
  readonly server: URL;
  readonly #conn: KubeConnection;
  readonly #agent: https.Agent;
  readonly #userAgent: string;

  /** `component` names the caller to the API server (audit log, metrics): faultline-proxy, faultline-webhook. */
  constructor(conn: KubeConnection, component = 'faultline-proxy') {
    this.#conn = conn;
    this.#userAgent = `${component}/${VERSION}`;
    this.server = conn.server;
    // keepAlive also turns on TCP keepalive for the sockets (a half-dead watch is noticed by the kernel too).
    this.#agent = new https.Agent({
      keepAlive: true,
      ca: conn.ca,
      cert: conn.clientCert,
      key: conn.clientKey,
      rejectUnauthorized: !conn.insecureSkipTLSVerify,
      servername: conn.tlsServerName,
    });
  }

  /** GET returning parsed JSON; a body over `maxBytes` is an error (the caller's memory bound). */
  async getJson(path: string, query: Query, signal: AbortSignal, maxBytes: number): Promise<unknown> {
    const res = await this.#get(path, query, signal);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBytes) {
        res.destroy();
        throw new Error(`GET ${path}: response larger than ${maxBytes} bytes`);
      }
      chunks.push(chunk);
    }
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  }

  /** GET whose 200 body the caller streams (a watch); any other status is thrown. */
  stream(path: string, query: Query, signal: AbortSignal): Promise<IncomingMessage> {
    return this.#get(path, query, signal);
  }

  close(): void {
    this.#agent.destroy();
  }

  async #get(path: string, query: Query, signal: AbortSignal): Promise<IncomingMessage> {
    return this.#send('GET', path, query, signal);
  }

  /**
   * A write with a JSON body (the brakes' CLI and the sidecar's abort notice);
   * resolves to the parsed answer, throws KubeStatusError on a non-2xx.
   */
  async writeJson(method: 'POST' | 'PATCH', path: string, body: unknown, signal: AbortSignal, contentType = 'application/json'): Promise<unknown> {
    const res = await this.#send(method, path, {}, signal, { body: JSON.stringify(body), contentType });
    const chunks: Buffer[] = [];
    for await (const chunk of res as AsyncIterable<Buffer>) chunks.push(chunk);
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
  }

  async #send(method: string, path: string, query: Query, signal: AbortSignal, write?: { body: string; contentType: string }): Promise<IncomingMessage> {
    const url = new URL(path, this.server);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
    const token = this.#conn.token ? await this.#conn.token.get() : undefined;
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = https.request(url, {
        method,
        agent: this.#agent,
        signal,
        headers: {
          accept: 'application/json',
          'user-agent': this.#userAgent,
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(write ? { 'content-type': write.contentType, 'content-length': Buffer.byteLength(write.body) } : {}),
        },
      });
      req.once('response', resolve);
      req.once('error', reject);
      req.end(write?.body);
    });
    if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300 && (method !== 'GET' || res.statusCode === 200)) return res;
    // Projected tokens rotate: a 401 is most likely a token the kubelet has replaced since we read it.
    if (res.statusCode === 401) this.#conn.token?.invalidate();
    throw await statusError(res);
  }
}

async function statusError(res: IncomingMessage): Promise<KubeStatusError> {
  const code = res.statusCode ?? 0;
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      if (size < MAX_ERROR_BODY_BYTES) chunks.push(chunk);
      size += chunk.length;
    }
  } catch {
    // A body cut short still leaves the status code to report.
  }
  const text = Buffer.concat(chunks).toString('utf8').slice(0, MAX_ERROR_BODY_BYTES);
  try {
    return KubeStatusError.fromStatus(JSON.parse(text), code);
  } catch {
    return new KubeStatusError(code, res.statusMessage, text.trim() || '(no body)');
  }
}

/**
 * Splits a byte stream into newline-terminated lines (a watch body is one JSON
 * object per line, but chunk boundaries fall anywhere, inside a line or inside
 * a multi-byte character). Lines are returned as bytes and decoded whole, so a
 * character split across chunks is never mangled. A line longer than
 * `maxLineBytes` is an error: the server would never send one (etcd caps an
 * object at 1.5 MiB), so it is a broken or hostile stream, not something to buffer.
 */
export class LineSplitter {
  readonly maxLineBytes: number;
  #parts: Buffer[] = [];
  #size = 0;

  constructor(maxLineBytes: number) {
    this.maxLineBytes = maxLineBytes;
  }

  /** Bytes of an unfinished line held back; non-zero at the end of a stream means it was cut mid-line. */
  get pending(): number {
    return this.#size;
  }

  /** The lines this chunk completes, without their '\n'. */
  push(chunk: Buffer): Buffer[] {
    const lines: Buffer[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, nl);
      this.#grow(piece.length);
      lines.push(this.#parts.length === 0 ? piece : Buffer.concat([...this.#parts, piece]));
      this.#parts = [];
      this.#size = 0;
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.#grow(rest.length);
      // A copy: holding a slice would keep the whole (up to 64 KiB) chunk alive.
      this.#parts.push(Buffer.from(rest));
    }
    return lines;
  }

  #grow(n: number): void {
    this.#size += n;
    if (this.#size > this.maxLineBytes) throw new Error(`watch event larger than ${this.maxLineBytes} bytes`);
  }
}

export interface WatchEvent {
  type: string;
  object: Record<string, unknown>;
}

/** One line of a watch body; blank lines yield undefined (servers may send them as keep-alives). */
export function decodeEvent(line: Buffer): WatchEvent | undefined {
  const text = line.toString('utf8').trim();
  if (text === '') return undefined;
  const ev = JSON.parse(text) as Partial<WatchEvent>;
  if (typeof ev?.type !== 'string' || ev.object === null || typeof ev.object !== 'object' || Array.isArray(ev.object)) {
    throw new Error(`not a watch event: ${text.slice(0, 200)}`);
  }
  return ev as WatchEvent;
}

/** The events of a watch response, in order; throws if the stream breaks or ends mid-event. */
export async function* watchEvents(res: AsyncIterable<Buffer>, maxEventBytes: number): AsyncGenerator<WatchEvent> {
  const splitter = new LineSplitter(maxEventBytes);
  for await (const chunk of res) {
    for (const line of splitter.push(chunk)) {
      const ev = decodeEvent(line);
      if (ev) yield ev;
    }
  }
  if (splitter.pending > 0) throw new Error('watch stream ended in the middle of an event');
}
