// Forwards requests the HTTP/1 path has parsed (node:http's server) to one
// upstream over undici's Pool: keep-alive connections, bodies streamed both
// ways with back-pressure, nothing buffered.
//
// undici over http-proxy-3 on node:http's client, by measurement (same
// harness, loopback, 20k keep-alive requests, proxy CPU per request):
// http-proxy-3 229–258 µs, node:http's client with hand-written piping
// 177–212 µs, undici 116–133 µs. Most of the difference is node:http's
// ClientRequest/IncomingMessage machinery and http-proxy-3's per-request URL
// parsing and header copies; undici parses the response with llhttp and hands
// back status, raw headers and body chunks without building streams.
// The whole captured path against the http-proxy-3 one, alternating in the
// same run (bench:capture, BENCH_BASELINE=26eb9aa, 5 rounds, load 14–19): CPU
// per request 0.52–0.76 of it, max rate 1.3–1.8×.

import type http from 'node:http';
import { createRequire } from 'node:module';
import type { Dispatcher, Pool } from 'undici';

let undiciPool: typeof Pool | undefined;

/**
 * undici's Pool module alone: `undici`'s index also loads fetch, WebSocket,
 * caches and mocks. Measured after pino, prom-client and http-proxy-3 (gc'd
 * RSS): +1.3 MB for the Pool module, +6.7 MB for the index. Loaded when a
 * plan with HTTP faults arrives (the proxy calls this), not on the first
 * faulted request: requiring it took 140–400 ms on this (loaded) machine,
 * which that request would have waited for; a pod whose plans never fault
 * HTTP never loads it. undici has no exports map; the path is pinned by the
 * major version (^8).
 */
export function loadHttpUpstream(): typeof Pool {
  return (undiciPool ??= createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof Pool);
}

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection, not the
 * message: node:http's server frames the client's side and undici the
 * upstream's, so neither direction forwards them. `expect` is answered by
 * node:http's server (100 Continue) before the request reaches us, and
 * trailers are not relayed, so their announcement is not either.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'expect', 'trailer']);

/** Names the Connection header lists are hop-by-hop too; undefined when it lists none beyond the usual. */
function connectionTokens(value: string | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  // What nearly every message carries, without splitting it per request.
  const whole = value.length <= 10 ? value.toLowerCase() : '';
  if (whole === 'keep-alive' || whole === 'close') return undefined;
  const extra = value.split(',').map((t) => t.trim().toLowerCase()).filter((t) => t !== '' && t !== 'close' && t !== 'keep-alive');
  return extra.length > 0 ? new Set(extra) : undefined;
}

/** The request's headers as sent (case and order kept), minus hop-by-hop ones. */
function forwardedHeaders(req: http.IncomingMessage): string[] {
  const raw = req.rawHeaders;
  const listed = connectionTokens(req.headers.connection);
  const out: string[] = [];
  let host = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed?.has(lower)) continue;
    // node:http's parser keeps the first Host (req.headers.host); so does the upstream request.
    if (lower === 'host') {
      if (host) continue;
      host = true;
    }
    out.push(name, raw[i + 1]!);
  }
  return out;
}

/**
 * The response's headers as the upstream sent them (case and order kept),
 * minus hop-by-hop ones. `connection` is the value undici parsed already.
 */
function relayedHeaders(raw: Buffer[], connection: string | undefined): string[] {
  const listed = connectionTokens(connection);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed?.has(lower)) continue;
    out.push(name, raw[i + 1]!.toString('latin1'));
  }
  return out;
}

/** A request carries a body when it says so (RFC 9112 §6.3): a Transfer-Encoding, or a non-zero Content-Length. */
function hasBody(req: http.IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

export type UpstreamError = Error & { code?: string };

const EXCHANGE = Symbol('faultline.exchange');
type ExchangeResponse = http.ServerResponse & { [EXCHANGE]?: Exchange };

/** The client gave up: the upstream request goes too (its connection with it, mid-response). One shared listener, no closure per request. */
function onClientClose(this: ExchangeResponse): void {
  if (this.writableFinished) return;
  this[EXCHANGE]?.clientClosed();
}

/**
 * One forwarded request: undici's handler object. A class rather than
 * closures: the hot path allocates one object per request.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private clientGone = false;
  private readonly res: http.ServerResponse;
  private readonly onError: (err: UpstreamError, res: http.ServerResponse) => void;

  constructor(res: http.ServerResponse, onError: (err: UpstreamError, res: http.ServerResponse) => void) {
    this.res = res;
    this.onError = onError;
    (res as ExchangeResponse)[EXCHANGE] = this;
    res.on('close', onClientClose);
  }

  clientClosed(): void {
    this.clientGone = true;
    this.controller?.abort(new Error('client closed'));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    // 1xx interim responses are the upstream hop's business, as node:http's client treated them.
    if (statusCode < 200) return;
    const connection = headers.connection;
    this.res.writeHead(statusCode, statusMessage, relayedHeaders(controller.rawHeaders as Buffer[], Array.isArray(connection) ? connection.join(',') : connection));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.res.write(chunk)) return;
    controller.pause();
    this.res.once('drain', () => controller.resume());
  }

  onResponseEnd(): void {
    this.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, err: Error): void {
    if (this.clientGone) return;
    this.onError(err, this.res);
  }
}

export class HttpUpstream {
  private readonly pool: Pool;

  constructor(host: string, port: number) {
    const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    const UndiciPool = loadHttpUpstream();
    // No header or body timeouts: long polls and event streams are the app's to end, as before.
    this.pool = new UndiciPool(origin, { headersTimeout: 0, bodyTimeout: 0, pipelining: 1 });
  }

  /**
   * Sends `req` upstream and streams the answer into `res`. `onError` gets
   * failures before and after the response started (a refused connection, an
   * upstream reset, a request undici cannot express) with the response as it is.
   */
  forward(req: http.IncomingMessage, res: http.ServerResponse, onError: (err: UpstreamError, res: http.ServerResponse) => void): void {
    this.pool.dispatch(
      { path: req.url ?? '/', method: req.method ?? 'GET', headers: forwardedHeaders(req), body: hasBody(req) ? req : null },
      new Exchange(res, onError),
    );
  }

  close(): void {
    void this.pool.destroy().catch(() => undefined);
  }
}
