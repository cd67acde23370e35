// The HTTP path of one destination: connections whose port has HTTP faults are
// handed to a private http.Server (never listening itself), which parses each
// request once; the fault decision runs on that parse (rules compiled once per
// plan, http-faults.ts) and the request is forwarded over undici's keep-alive
// pool (http-upstream.ts, which says why undici). Bodies stream in both
// directions; the proxy never buffers them.
//
// Upgrades (WebSocket) pass through http-proxy-3, loaded on the first one. It won
// over http-proxy 1.18 by measurement (bench/sidecar.ts, proxyLibraries): after
// 5,000 requests aborted by their clients while the upstream was still
// thinking, http-proxy 1.18 left 554 and 849 upstream sockets open where
// http-proxy-3 left 0 and 2.

import http from 'node:http';
import type net from 'node:net';
import { createRequire } from 'node:module';
import type { ProxyServer } from 'http-proxy-3';
import type { PlannedHttpFault } from '../contract/plans.ts';
import type { Logger } from '../common/log.ts';
import { isKubeletRequest } from './capture/probes.ts';
import { handOff, type Sniffed } from './capture/sniff.ts';
import { compileFaults, faultHeader, NO_FAULT, type Decision } from './http-faults.ts';
import { HttpUpstream, type UpstreamError } from './http-upstream.ts';
import type { Metrics } from './metrics.ts';
import type { Target } from './targets.ts';

export const FAULT_HEADER = 'x-faultline-fault';

export interface HttpPathOptions {
  target: Target;
  /** The target's current HTTP faults (already expiry-filtered). */
  faults: () => readonly PlannedHttpFault[];
  /** Extra per-request delay from a handed-off netem delay (inbound only), in ms. */
  networkDelayMs: () => number;
  /** Add `x-faultline-fault` to responses a fault touched. */
  faultHeader: boolean;
  metrics: Metrics;
  log: Logger;
  /**
   * Per request: where its finished response (status, time as the caller saw
   * it, and on the HTTP/2 path the call's grpc-status) goes, or undefined when nobody judges it (no steady-state guard), so
   * an unguarded port pays nothing.
   */
  observer?: () => ((status: number, ms: number, grpcStatus?: number) => void) | undefined;
}

export class HttpPath {
  private readonly server: http.Server;
  private readonly upstream: HttpUpstream;
  /** WebSocket upgrades only, created on the first. */
  private proxy: ProxyServer | undefined;
  private readonly opts: HttpPathOptions;
  private readonly onUpstreamError: (err: UpstreamError, res: http.ServerResponse) => void;
  /** Observed responses' guard reports for a response its upstream cuts off (it never finishes). */
  private readonly cutOff = new WeakMap<http.ServerResponse, () => void>();

  constructor(opts: HttpPathOptions) {
    this.opts = opts;
    const { target } = opts;
    this.upstream = new HttpUpstream(target.connectHost, target.connectPort);
    this.onUpstreamError = (err, res) => this.upstreamFailed(err, res);
    this.server = http.createServer({ requestTimeout: 0, keepAliveTimeout: 60_000 }, (req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      this.opts.metrics.request(target.direction);
      this.upgrades().ws(req, socket, head);
    });
  }

  private upgrades(): ProxyServer {
    if (this.proxy) return this.proxy;
    const { target, metrics, log } = this.opts;
    const { createProxyServer } = createRequire(import.meta.url)('http-proxy-3') as typeof import('http-proxy-3');
    const proxy = createProxyServer({
      target: { host: target.connectHost, port: target.connectPort },
      ws: true,
      // A transparent proxy: the app must see the request exactly as sent
      // (Host included), so no x-forwarded-* and no origin rewriting.
      xfwd: false,
      changeOrigin: false,
    });
    proxy.on('error', (err, _req, socket) => {
      metrics.stats.upstreamErrors++;
      log.debug({ err: err.message, upstream: `${target.connectHost}:${target.connectPort}` }, 'upstream error (upgrade)');
      (socket as net.Socket | undefined)?.destroy();
    });
    this.proxy = proxy;
    return proxy;
  }

  /** Takes over a sniffed connection, its first bytes put back (capture/sniff.ts). */
  handleSniffed(socket: net.Socket, sniffed: Sniffed): void {
    handOff(this.server, socket, sniffed);
  }

  close(): void {
    this.server.closeAllConnections();
    this.upstream.close();
    this.proxy?.close();
  }

  /** Before the response started: a 502 naming the cause (400 for a request undici cannot express). After: the client's connection goes, as the upstream's did. */
  private upstreamFailed(err: UpstreamError, res: http.ServerResponse): void {
    const { metrics, log, target } = this.opts;
    metrics.stats.upstreamErrors++;
    log.debug({ err: err.message, upstream: `${target.connectHost}:${target.connectPort}` }, 'upstream error');
    if (res.headersSent || res.destroyed) {
      // Cut off mid-response by the upstream (not by the client leaving):
      // the guard counts it as a 502, the failure the caller saw.
      if (!res.destroyed) this.cutOff.get(res)?.();
      return void res.destroy();
    }
    const unforwardable = err.code === 'UND_ERR_INVALID_ARG' || err.code === 'UND_ERR_NOT_SUPPORTED';
    const body = unforwardable
      ? `faultline-proxy: request cannot be forwarded: ${err.message}\n`
      : `faultline-proxy: upstream ${target.connectHost}:${target.connectPort} failed: ${err.code ?? err.message}\n`;
    res.writeHead(unforwardable ? 400 : 502, { 'content-type': 'text/plain', connection: 'close' });
    res.end(body);
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const { metrics, target } = this.opts;
    metrics.request(target.direction);
    // Kubelet probes and hooks are never faulted (capture/probes.ts), nor
    // counted by the steady-state guard: they are not the app's traffic.
    if (isKubeletRequest(req.headers)) return this.respond(req, res, NO_FAULT);
    const observe = this.opts.observer?.();
    if (observe) {
      const t0 = performance.now();
      res.once('finish', () => observe(res.statusCode, performance.now() - t0));
      this.cutOff.set(res, () => observe(502, performance.now() - t0));
    }
    const faults = this.opts.faults();
    const decision = faults.length > 0 ? compileFaults(faults).decide({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers }) : NO_FAULT;
    const networkDelayMs = this.opts.networkDelayMs();
    const delayMs = decision.delayMs + networkDelayMs;
    for (const f of decision.fired) metrics.fault(f.kind === 'delay' ? 'http.delay' : 'http.abort', f.kind === 'delay' ? decision.delayMs : 0);
    if (networkDelayMs > 0) metrics.fault('network.delay', networkDelayMs);
    if (this.opts.faultHeader && decision !== NO_FAULT) {
      const value = faultHeader(decision);
      if (value) res.setHeader(FAULT_HEADER, value);
    }
    if (delayMs <= 0) return this.respond(req, res, decision);

    // A client that gives up during the delay must free everything at once:
    // the timer, and (via the socket's close) the connection itself.
    const onClose = (): void => {
      clearTimeout(timer);
      metrics.stats.clientAbortsDuringDelay++;
    };
    const timer = setTimeout(() => {
      res.off('close', onClose);
      this.respond(req, res, decision);
    }, delayMs);
    res.once('close', onClose);
  }

  private respond(req: http.IncomingMessage, res: http.ServerResponse, decision: Decision): void {
    if (!decision.abort) return this.upstream.forward(req, res, this.onUpstreamError);
    const body = decision.abort.body ?? 'fault filter abort';
    res.writeHead(decision.abort.status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }
}
