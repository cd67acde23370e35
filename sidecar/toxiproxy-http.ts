// toxiproxy-node-client's HttpClient (get, post, delete, getText: what its
// Toxiproxy, Proxy and Toxic call) on node:http instead of fetch().
//
// Why: the library calls the global fetch(), which is Node's own copy of
// undici. Its first call loads that copy and compiles its WebAssembly llhttp
// (and V8 tiers it up), a second undici beside the npm one the HTTP/1 fault
// path forwards with. For a few small JSON calls to a child on loopback: idle
// RSS with the Kubernetes source 88.1 MB with fetch(), 76.1 MB with this
// (dist/, the image's flags and ENV, 3 interleaved runs each, load 4,
// 2026-11-26). node:http's parser is native and already loaded by the
// proxy's own servers.
//
// The library's semantics are kept (test/unit/sidecar-toxiproxy-http.test.ts
// runs both clients against one server): a JSON body with
// `Content-Type: application/json`; a non-2xx answer throws
// ToxiproxyError('Error', 'Request failed with status code N'); a transport
// error or an unparsable answer throws a ToxiproxyError carrying its name and
// message; an empty answer is `{ data: undefined }`.

import http from 'node:http';
import { ToxiproxyError } from 'toxiproxy-node-client';

/** Toxiproxy's answers are a few KB (its proxies with their toxics); anything near this is not Toxiproxy. */
const MAX_ANSWER_BYTES = 8 * 1024 * 1024;
/** fetch()'s own limits (undici's headers and body timeouts), so a call waits no less than it did. */
const DEFAULT_TIMEOUT_MS = 300_000;

export class ToxiproxyHttpClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  private readonly timeoutMs: number;

  constructor(opts: { timeoutMs?: number } = {}) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  get<T>(url: string): Promise<{ data: T }> {
    return this.json<T>('GET', url);
  }

  post<T>(url: string, body?: unknown): Promise<{ data: T }> {
    return this.json<T>('POST', url, body);
  }

  async delete(url: string): Promise<void> {
    await this.json('DELETE', url);
  }

  getText(url: string): Promise<string> {
    return this.send('GET', url);
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.agent.destroy();
  }

  private async json<T>(method: string, url: string, body?: unknown): Promise<{ data: T }> {
    const text = await this.send(method, url, body === undefined ? undefined : JSON.stringify(body));
    if (text.length === 0) return { data: undefined as T };
    try {
      return { data: JSON.parse(text) as T };
    } catch (e) {
      throw toxiproxyError(e);
    }
  }

  /** The answer's text when its status is 2xx. */
  private send(method: string, url: string, body?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
      const req = http.request(url, { method, headers, agent: this.agent, timeout: this.timeoutMs }, (res) => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 299) {
          res.resume();
          reject(new ToxiproxyError('Error', `Request failed with status code ${status}`));
          return;
        }
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > MAX_ANSWER_BYTES) res.destroy(new ToxiproxyError('Error', `answer larger than ${MAX_ANSWER_BYTES} bytes`));
          else chunks.push(chunk);
        });
        res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        res.on('error', (e) => reject(toxiproxyError(e)));
      });
      req.on('timeout', () => req.destroy(new ToxiproxyError('TimeoutError', `no answer from ${url} in ${this.timeoutMs} ms`)));
      req.on('error', (e) => reject(toxiproxyError(e)));
      req.end(body);
    });
  }
}

function toxiproxyError(e: unknown): ToxiproxyError {
  if (e instanceof ToxiproxyError) return e;
  const err = e instanceof Error ? e : new Error(String(e));
  return new ToxiproxyError(err.name, err.message, err.stack);
}
