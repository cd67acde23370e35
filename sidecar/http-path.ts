// The HTTP path of one listener: connections whose port has HTTP faults are
// handed to a private http.Server (never listening itself) and proxied with
// http-proxy-3 over a keep-alive agent. Bodies stream in both directions; the
// proxy never buffers them. Upgrades (WebSocket) pass through untouched.
//
// http-proxy-3 over http-proxy 1.18, by measurement (bench/sidecar.ts,
// proxyLibraries): max rates were within noise of each other on this machine,
// but after 5,000 requests aborted by their clients while the upstream was
// still thinking, http-proxy 1.18 left 554 and 849 upstream sockets open
// (+6.8 / +10.8 MB heap, two runs) where http-proxy-3 left 0 and 2 (+2.1 /
// +1.3 MB). A chaos proxy aborts and delays requests by design, so the leak
// decides it.

import http from 'node:http';
import type net from 'node:net';
import { createProxyServer, type ProxyServer } from 'http-proxy-3';
import type { PlannedHttpFault } from '../contract/plans.ts';
import type { Logger } from '../common/log.ts';
import { isKubeletRequest } from './capture/probes.ts';
import { handOff, type Sniffed } from './capture/sniff.ts';
import { decideRequest, faultHeader, type Decision } from './http-faults.ts';
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

const NO_FAULT: Decision = Object.freeze({ delayMs: 0, fired: [] }) as Decision;

export class HttpPath {
  private readonly server: http.Server;
  private readonly proxy: ProxyServer;
  private readonly agent: http.Agent;
  private readonly opts: HttpPathOptions;

  constructor(opts: HttpPathOptions) {
    this.opts = opts;
    const { target } = opts;
    this.agent = new http.Agent({ keepAlive: true, maxFreeSockets: 256 });
    this.proxy = createProxyServer({
      target: { host: target.connectHost, port: target.connectPort },
      agent: this.agent,
      ws: true,
      // A transparent proxy: the app must see the request exactly as sent
      // (Host included), so no x-forwarded-* and no origin rewriting.
      xfwd: false,
      changeOrigin: false,
    });
    this.proxy.on('error', (err, _req, res) => {
      opts.metrics.stats.upstreamErrors++;
      opts.log.debug({ err: err.message, target: target.listenPort }, 'upstream error');
      if (res instanceof http.ServerResponse) {
        if (!res.headersSent && !res.destroyed) {
          res.writeHead(502, { 'content-type': 'text/plain', connection: 'close' });
          res.end(`faultline-proxy: upstream ${target.connectHost}:${target.connectPort} failed: ${(err as NodeJS.ErrnoException).code ?? err.message}\n`);
        } else {
          res.destroy();
        }
      } else {
        (res as net.Socket | undefined)?.destroy();
      }
    });
    this.server = http.createServer({ requestTimeout: 0, keepAliveTimeout: 60_000 }, (req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      this.opts.metrics.request(target.direction);
      this.proxy.ws(req, socket, head);
    });
  }

  /** Takes over an accepted connection; the http.Server parses it from here. */
  handle(socket: net.Socket): void {
    this.server.emit('connection', socket);
  }

  /** Takes over a sniffed connection, its first bytes put back (capture/sniff.ts). */
  handleSniffed(socket: net.Socket, sniffed: Sniffed): void {
    handOff(this.server, socket, sniffed);
  }

  close(): void {
    this.server.closeAllConnections();
    this.agent.destroy();
    this.proxy.close();
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
    }
    const faults = this.opts.faults();
    const decision = faults.length > 0 ? decideRequest(faults, { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers }) : NO_FAULT;
    const networkDelayMs = this.opts.networkDelayMs();
    const delayMs = decision.delayMs + networkDelayMs;
    for (const f of decision.fired) metrics.fault(f.kind === 'delay' ? 'http.delay' : 'http.abort', f.kind === 'delay' ? decision.delayMs : 0);
    if (networkDelayMs > 0) metrics.fault('network.delay', networkDelayMs);
    if (this.opts.faultHeader) {
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
    if (!decision.abort) {
      this.proxy.web(req, res);
      return;
    }
    const body = decision.abort.body ?? 'fault filter abort';
    res.writeHead(decision.abort.status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }
}
