// Transparent capture: one inbound and one outbound listener take every
// connection nft redirected (pod-setup/redirect/capture-rules.ts). Each connection's original
// destination (SO_ORIGINAL_DST) decides its fate (route.ts): refused if it
// was not really redirected, raw if nothing parses it, else sniffed and
// handed to the HTTP/1 or HTTP/2 path of its destination. Inbound traffic is
// forwarded to the destination the client dialled (the pod IP), so the app
// sees connections from the pod's address, never from 127.0.0.1.

import net from 'node:net';
import type { Logger } from '../../common/log.ts';
import type { LiveFaultPlan, PlannedHttpFault } from '../../contract/plans.ts';
import { HttpPath } from '../http-path.ts';
import { Http2Path } from '../http2-path.ts';
import type { Metrics } from '../metrics.ts';
import { pipeTo } from '../pipe.ts';
import type { HttpPathOptions } from '../http-path.ts';
import type { Target } from '../targets.ts';
import { PortObservations } from './observations.ts';
import { originalDestination, type Destination } from './original-destination.ts';
import { route, type Direction } from './route.ts';
import { DEFAULT_SNIFF_TIMEOUT_MS, sniff } from './sniff.ts';
import { UpstreamNames } from './upstream-names.ts';

export interface CaptureProxyOptions {
  /** '::' listens dual-stack. */
  listenHost: string;
  inboundPort: number;
  outboundPort: number;
  podAddresses: ReadonlySet<string>;
  nodeAddresses: ReadonlySet<string>;
  plan: () => LiveFaultPlan;
  /** Resolves the hosts outbound faults name (default: the pod's resolver, refreshed). */
  upstreamNames?: UpstreamNames;
  sniffTimeoutMs?: number;
  /**
   * Where a connection with TCP faults goes instead of its destination (its
   * Toxiproxy proxy), or undefined: faulted only by what the HTTP paths do.
   * `done` is called once the connection has closed.
   */
  divert?: (direction: Direction, destination: Destination) => { host: string; port: number; done: () => void } | undefined;
  /** Delay before an inbound connection's first byte or an inbound request (a handed-off netem delay), in ms. */
  networkDelayMs?: () => number;
  /** The steady-state guards' observer for the HTTP requests of one destination, given its faults (http-path.ts). */
  observer?: (faults: () => readonly PlannedHttpFault[]) => HttpPathOptions['observer'];
  faultHeader: boolean;
  metrics: Metrics;
  log: Logger;
}

/** Request paths kept per destination; past this the oldest is closed (outbound destinations are open-ended). */
const MAX_PATHS = 512;

/**
 * HTTP and gRPC faults for one captured destination. Inbound: by the app's
 * port. Outbound: by port and by host, a host matching while it resolves to
 * the destination's address (or contains it, for a CIDR).
 */
export function requestFaultsFor(plan: LiveFaultPlan, direction: Direction, d: Destination, names: UpstreamNames): PlannedHttpFault[] {
  return plan.http.filter(
    (f) =>
      f.direction === direction &&
      (f.match.port === undefined || f.match.port === d.port) &&
      (direction === 'inbound' || f.match.host === undefined || names.matches(f.match.host, d.address)),
  );
}

interface Paths {
  http: HttpPath;
  h2: Http2Path;
}

export class CaptureProxy {
  readonly refused: Array<{ direction: Direction; reason: string }> = [];
  /** What inbound connections showed per app port (protocols, port not served), for status. */
  readonly observations = new PortObservations();
  private readonly servers: net.Server[] = [];
  private readonly paths = new Map<string, Paths>();
  private readonly sockets = new Set<net.Socket>();
  private readonly names: UpstreamNames;
  private readonly ownsNames: boolean;
  private lastPlan: LiveFaultPlan | undefined;

  private readonly opts: CaptureProxyOptions;

  private constructor(opts: CaptureProxyOptions) {
    this.opts = opts;
    this.ownsNames = opts.upstreamNames === undefined;
    this.names = opts.upstreamNames ?? new UpstreamNames({ log: opts.log });
  }

  /** Client connections currently open on the two listeners. */
  get openConnections(): number {
    return this.sockets.size;
  }

  /** The current plan; a new plan's outbound hosts start resolving at once. */
  private plan(): LiveFaultPlan {
    const plan = this.opts.plan();
    if (plan !== this.lastPlan) {
      this.lastPlan = plan;
      void this.names.track([
        ...plan.http.flatMap((f) => (f.direction === 'outbound' && f.match.host !== undefined ? [f.match.host] : [])),
        ...plan.tcp.flatMap((f) => (f.direction === 'outbound' && f.host !== undefined ? [f.host] : [])),
      ]);
    }
    return plan;
  }

  /** Resolves once the current plan's outbound hosts have an answer (tests, start-up). */
  async ready(): Promise<void> {
    this.plan();
    await this.names.refresh();
  }

  static async start(opts: CaptureProxyOptions): Promise<CaptureProxy> {
    const proxy = new CaptureProxy(opts);
    for (const [direction, port] of [['inbound', opts.inboundPort], ['outbound', opts.outboundPort]] as const) {
      const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => proxy.onConnection(direction, s));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: opts.listenHost, port, ipv6Only: false }, () => resolve());
      });
      proxy.servers.push(server);
    }
    return proxy;
  }

  get ports(): { inbound: number; outbound: number } {
    const [i, o] = this.servers.map((s) => (s.address() as net.AddressInfo).port);
    return { inbound: i!, outbound: o! };
  }

  async close(): Promise<void> {
    if (this.ownsNames) this.names.close();
    for (const s of this.sockets) s.destroy();
    for (const p of this.paths.values()) {
      p.http.close();
      p.h2.close();
    }
    this.paths.clear();
    await Promise.all(this.servers.map((s) => new Promise((r) => s.close(r))));
  }

  /** Does an outbound fault naming `host` (a name, an address or a CIDR) cover `address` now? */
  hostMatches(host: string, address: string): boolean {
    this.plan();
    return this.names.matches(host, address);
  }

  private target(direction: Direction, d: Destination): Target {
    return { direction, port: d.port, ...(direction === 'outbound' ? { host: d.address } : {}), connectHost: d.address, connectPort: d.port };
  }

  private pathsFor(direction: Direction, d: Destination): Paths {
    const key = `${direction}|${d.address}|${d.port}`;
    let p = this.paths.get(key);
    if (p) return p;
    const target = this.target(direction, d);
    const faults = this.faultsOf(direction, d);
    const observer = this.opts.observer?.(faults);
    const common = {
      target,
      faults,
      networkDelayMs: () => this.delayMs(direction),
      ...(observer ? { observer } : {}),
      faultHeader: this.opts.faultHeader,
      metrics: this.opts.metrics,
      log: this.opts.log,
    };
    p = { http: new HttpPath(common), h2: new Http2Path(common) };
    this.paths.set(key, p);
    if (this.paths.size > MAX_PATHS) {
      const [oldest, evicted] = this.paths.entries().next().value!;
      this.paths.delete(oldest);
      evicted.http.close();
      evicted.h2.close();
    }
    return p;
  }

  /**
   * The destination's faults as one array per plan, so the HTTP paths reuse
   * the matchers they compiled for it (http-faults.ts) instead of compiling
   * per request. Outbound rules naming a host follow its resolution, so while
   * the plan has any, the list is recomputed per request (same array kept
   * while its content is).
   */
  private faultsOf(direction: Direction, d: Destination): () => PlannedHttpFault[] {
    let seen: LiveFaultPlan | undefined;
    let faults: PlannedHttpFault[] = [];
    let followsNames = false;
    return () => {
      const plan = this.plan();
      if (plan === seen && !followsNames) return faults;
      const next = requestFaultsFor(plan, direction, d, this.names);
      if (plan !== seen || next.length !== faults.length || next.some((f, i) => f !== faults[i])) faults = next;
      seen = plan;
      followsNames = direction === 'outbound' && plan.http.some((f) => f.direction === 'outbound' && f.match.host !== undefined);
      return faults;
    };
  }

  private onConnection(direction: Direction, socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const r = route(direction, originalDestination(socket), socket.remoteAddress, {
      podAddresses: this.opts.podAddresses,
      nodeAddresses: this.opts.nodeAddresses,
      hasRequestFaults: (dir, d) => requestFaultsFor(this.plan(), dir, d, this.names).length > 0,
    });
    if (r.action === 'refuse') {
      this.refused.push({ direction, reason: r.reason });
      if (this.refused.length > 100) this.refused.shift();
      this.opts.log.debug({ direction, remote: socket.remoteAddress, reason: r.reason }, 'connection refused');
      socket.resetAndDestroy();
      return;
    }
    const { destination } = r;
    // TCP faults take the whole connection through Toxiproxy; kubelet probes never get them.
    const diverted = r.probe ? undefined : this.opts.divert?.(direction, destination);
    if (r.action === 'raw' || diverted) return this.raw(socket, direction, destination, r.probe, diverted);
    void sniff(socket, this.opts.sniffTimeoutMs ?? DEFAULT_SNIFF_TIMEOUT_MS).then((s) => {
      if (socket.destroyed) return;
      if (direction === 'inbound') this.observations.record(destination.port, s.protocol);
      if (s.protocol === 'http1') {
        this.opts.metrics.connection('http');
        this.pathsFor(direction, destination).http.handleSniffed(socket, s);
      } else if (s.protocol === 'h2') {
        this.opts.metrics.connection('h2');
        this.pathsFor(direction, destination).h2.handOff(socket, s);
      } else {
        // TLS and everything else: bytes only (TCP faults still apply); HTTP faults cannot.
        this.raw(socket, direction, destination, false, undefined, s.head);
      }
    });
  }

  private delayMs(direction: Direction): number {
    return direction === 'inbound' ? (this.opts.networkDelayMs?.() ?? 0) : 0;
  }

  /** Bytes only: to the connection's Toxiproxy proxy when it has TCP faults, else straight on. */
  private raw(socket: net.Socket, direction: Direction, destination: Destination, probe: boolean, diverted: ReturnType<NonNullable<CaptureProxyOptions['divert']>>, head?: Buffer): void {
    const delayMs = probe ? 0 : this.delayMs(direction);
    if (delayMs > 0) this.opts.metrics.fault('network.delay', delayMs);
    const headOpt = head ? { head } : {};
    if (diverted) {
      this.opts.metrics.connection('toxiproxy');
      this.opts.metrics.fault('tcp.toxiproxy');
      pipeTo(socket, diverted.host, diverted.port, { ...headOpt, delayMs, onClose: diverted.done });
      return;
    }
    this.opts.metrics.connection('raw');
    const onUpstream =
      direction === 'inbound'
        ? (accepted: boolean) => (accepted ? this.observations.recordServed(destination.port) : this.observations.recordRefused(destination.port))
        : undefined;
    pipeTo(socket, destination.address, destination.port, { ...headOpt, delayMs, ...(onUpstream ? { onUpstream } : {}) });
  }
}
