// faultline-proxy: one process per pod. Owns capture's two traffic listeners
// (wiring.capture: nft sends every inbound and outbound TCP connection there,
// and capture/capture-proxy.ts decides per connection from its original
// destination), routes each new connection by the current effective plan, and
// keeps Toxiproxy, the time offset file and the fault event log in step with
// that plan. Tests and benches run it the same way, in a network namespace
// (test/support/netns-proxy.ts).
//
// Routing, decided once per connection (new connections follow a plan change at
// once; established ones finish on the path they started on):
//   TCP toxics for the destination, Toxiproxy up and synced → splice into its proxy;
//   else HTTP faults for it                → HTTP/1 or HTTP/2 path (per request or stream);
//   else                                   → raw pipe (no parsing).
// Anything missing (no source, Toxiproxy down, plan expired) degrades to the
// raw pipe: the proxy fails open.

import http from 'node:http';
import { isDeepStrictEqual } from 'node:util';
import { getHeapSpaceStatistics } from 'node:v8';
import type { CaptureWiring, KernelFaultPlan, LiveFaultPlan, PlannedHttpFault, PlannedToxic } from '../contract/plans.ts';
import type { DatapathObservations, DatapathReport } from '../contract/applied.ts';
import { CaptureProxy } from './capture/capture-proxy.ts';
import type { Destination } from './capture/original-destination.ts';
import type { Direction } from './capture/route.ts';
import { literalMatcher } from './capture/upstream-names.ts';
import { datapathReport, type ReportInput } from './applied-report.ts';
import { observationsForReport } from './capture/observations.ts';
import type { Logger } from '../common/log.ts';
import { runAt } from '../common/timer.ts';
import { freePorts } from '../common/ports.ts';
import { adminHandler, healthHandler, listen, metricsHandler, type AdminView } from './admin.ts';
import { FaketimeFile } from './time-offset-file.ts';
import { FaultEvents } from './fault-events.ts';
import { jitteredMs } from './http-faults.ts';
import { loadHttpUpstream } from './http-upstream.ts';
import { lazyGlibcHeap, MallocRelease } from './malloc-release.ts';
import { Metrics } from './metrics.ts';
import { Guards, isErrorResponse, type Breach } from './guard.ts';
import { EMPTY_PLAN, effectivePlan, nextExpiry, withoutPolicies } from './live-plan.ts';
import type { PolicySource } from './policy-source.ts';
import { label, tcpFaultsFor, toxiproxyName, type Target } from './targets.ts';
import type { DesiredProxy } from './toxiproxy-diff.ts';
import { ToxiproxyReconciler } from './toxiproxy-reconciler.ts';
import { ToxiproxySupervisor } from './toxiproxy-supervisor.ts';

/**
 * Free C-heap bytes a check leaves alone: an idle proxy holds 0.4-1.3 MB free,
 * one that has served a burst 13-21 MB (mallinfo2 read over gdb, the proxy as
 * bench:sidecar runs it in a pod).
 */
const MALLOC_RELEASE_THRESHOLD_BYTES = 4 * 1024 * 1024;

export interface SidecarOptions {
  /** The plan's wiring.capture: the two listeners nft redirects to, the exclusions, a mesh sidecar. */
  capture: CaptureWiring;
  /** Address the traffic listeners bind ('::': both families). */
  listenHost: string;
  /** The pod's addresses (status.podIPs); inbound connections to anything else are refused. */
  podAddresses?: readonly string[];
  /** The node's addresses (status.hostIP/hostIPs); connections from there are kubelet probes. */
  nodeAddresses?: readonly string[];
  source: PolicySource | undefined;
  /** toxiproxy-server executable; undefined disables TCP faults (they fail open). */
  toxiproxyBin: string | undefined;
  /** Ports; 0 picks a free one (tests). */
  toxiproxyPort: number;
  adminPort: number;
  healthPort: number;
  metricsPort: number;
  faultHeader: boolean;
  faketimeFile: string;
  /** Network delay handed off by the init program (handoff.json). */
  handoffDelay: LiveFaultPlan['networkDelay'];
  /** How often free C-heap pages go back to the kernel (malloc-release.ts); 0 or absent: never. */
  mallocReleaseIntervalMs?: number;
  /** This pod's name and the kernel faults it was started with, for the datapath report (GET /status). */
  podName?: string;
  kernelPlan?: KernelFaultPlan;
  /** Per-fault facts from real traffic, folded into the report (default: what the capture listeners saw). */
  observations?: DatapathObservations;
  log: Logger;
}

export class Sidecar {
  readonly metrics = new Metrics();
  /** The steady-state guards of the plan's policies (guard.ts). */
  readonly guards: Guards;
  readonly ports = { admin: 0, health: 0, metrics: 0, toxiproxy: 0 };
  supervisor: ToxiproxySupervisor | undefined;
  reconciler: ToxiproxyReconciler | undefined;
  /** The capture listeners (wiring.capture), once bound. */
  capture: CaptureProxy | undefined;
  /** Hands free C-heap pages back to the kernel; undefined when off. Stops at its first check where libc cannot (musl). */
  mallocRelease: MallocRelease | undefined;

  private readonly opts: SidecarOptions;
  private readonly log: Logger;
  private readonly events: FaultEvents;
  private readonly faketime: FaketimeFile;
  private sourcePlan: LiveFaultPlan = EMPTY_PLAN;
  private plan: LiveFaultPlan = EMPTY_PLAN;
  /** The TCP-faulted destinations and their Toxiproxy proxies. */
  private captureRoutes: Array<{ target: Target; toxiproxy: string }> = [];
  /** The Toxiproxy targets for the current plan (captureTargets), for the routes and the status report. */
  private captureTcpTargets: Target[] = [];
  private readonly servers: http.Server[] = [];
  private readonly toxiproxyConnections = new Map<string, number>();
  private expiryTimer: { cancel(): void } | undefined;
  private bound = false;

  private constructor(opts: SidecarOptions) {
    this.opts = opts;
    this.log = opts.log;
    this.events = new FaultEvents(opts.log, opts.podName);
    this.faketime = new FaketimeFile(opts.faketimeFile, opts.log);
    this.guards = new Guards((b) => this.onBreach(b));
  }

  static async start(opts: SidecarOptions): Promise<Sidecar> {
    const s = new Sidecar(opts);
    try {
      await s.boot();
    } catch (err) {
      await s.close();
      throw err;
    }
    return s;
  }

  private async boot(): Promise<void> {
    const { opts } = this;
    const view = this.adminView();
    const servers: Array<[keyof Sidecar['ports'], http.RequestListener, number, string]> = [
      ['admin', adminHandler(view), opts.adminPort, '127.0.0.1'],
      ['metrics', metricsHandler(this.metrics.registry), opts.metricsPort, opts.listenHost],
      ['health', healthHandler(view), opts.healthPort, opts.listenHost],
    ];
    for (const [name, handler, port, host] of servers) {
      const server = http.createServer(handler);
      this.servers.push(server);
      this.ports[name] = await listen(server, port, host);
    }

    if (opts.toxiproxyBin) {
      this.ports.toxiproxy = opts.toxiproxyPort || (await freePorts(1))[0]!;
      const reconciler = new ToxiproxyReconciler({
        apiUrl: `http://127.0.0.1:${this.ports.toxiproxy}`,
        log: this.log,
        inUse: (name) => (this.toxiproxyConnections.get(name) ?? 0) > 0,
      });
      this.reconciler = reconciler;
      this.supervisor = new ToxiproxySupervisor({
        bin: opts.toxiproxyBin,
        port: this.ports.toxiproxy,
        log: this.log,
        metrics: this.metrics,
        onUp: () => reconciler.serverUp(),
        onDown: () => reconciler.serverDown(),
      });
      this.supervisor.start();
    }

    this.applyPlan();
    await this.startCapture(opts.capture);
    this.bound = true;
    this.startMallocRelease();
    if (opts.source) await opts.source.start((plan) => this.setSourcePlan(plan));
    this.log.info(
      {
        listeners: this.capture!.ports,
        ports: this.ports,
        source: opts.source?.name ?? 'none',
        ...(opts.capture.mesh ? { mesh: opts.capture.mesh } : {}),
      },
      'faultline-proxy ready',
    );
  }

  private startMallocRelease(): void {
    const intervalMs = this.opts.mallocReleaseIntervalMs ?? 0;
    if (intervalMs <= 0) return;
    this.mallocRelease = new MallocRelease({
      heap: lazyGlibcHeap(),
      intervalMs,
      thresholdBytes: MALLOC_RELEASE_THRESHOLD_BYTES,
      onError: (err) => this.log.warn({ err }, 'malloc release stopped'),
    }).start();
  }

  private async startCapture(c: CaptureWiring): Promise<void> {
    const { opts } = this;
    const pod = new Set((opts.podAddresses ?? []).map((a) => a.toLowerCase()));
    // Mesh first: the mesh proxy hands inbound connections to the app on the pod IP or on loopback.
    if (c.mesh) for (const a of ['127.0.0.1', '::1']) pod.add(a);
    const options = {
      inboundPort: c.inboundPort,
      outboundPort: c.outboundPort,
      podAddresses: pod,
      nodeAddresses: new Set((opts.nodeAddresses ?? []).map((a) => a.toLowerCase())),
      plan: () => this.plan,
      faultHeader: opts.faultHeader,
      metrics: this.metrics,
      log: this.log,
      divert: (direction: Direction, d: Destination) => this.divert(direction, d),
      networkDelayMs: () => this.inboundNetworkDelayMs(),
      observer: (faults: () => readonly PlannedHttpFault[]) => () =>
        this.guards.size === 0 ? undefined : (status: number, ms: number, grpc?: number) => this.guards.observe(faults().map((f) => f.chaosId), isErrorResponse(status, grpc), ms),
    };
    try {
      this.capture = await CaptureProxy.start({ ...options, listenHost: opts.listenHost });
    } catch (err) {
      // A pod without IPv6 cannot bind '::': IPv4 alone is then all there is to capture.
      if (opts.listenHost !== '::' || !['EAFNOSUPPORT', 'EADDRNOTAVAIL'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
      this.capture = await CaptureProxy.start({ ...options, listenHost: '0.0.0.0' });
    }
    await this.capture.ready();
  }

  /** A captured connection's Toxiproxy proxy, when its destination has TCP faults and Toxiproxy serves them. */
  private divert(direction: Direction, d: Destination): { host: string; port: number; done: () => void } | undefined {
    const r = this.captureRoutes.find(
      ({ target: t }) => t.direction === direction && t.port === d.port && (direction === 'inbound' || this.capture?.hostMatches(t.host!, d.address)),
    );
    return r ? this.claimToxiproxy(r.toxiproxy) : undefined;
  }

  /** Counts a connection into a Toxiproxy proxy, so the reconciler never deletes one in use. */
  private claimToxiproxy(name: string): { host: string; port: number; done: () => void } | undefined {
    const addr = this.reconciler?.address(name);
    if (!addr) return undefined;
    this.toxiproxyConnections.set(name, (this.toxiproxyConnections.get(name) ?? 0) + 1);
    return {
      host: addr.host,
      port: addr.port,
      done: () => {
        const left = (this.toxiproxyConnections.get(name) ?? 1) - 1;
        if (left > 0) return void this.toxiproxyConnections.set(name, left);
        this.toxiproxyConnections.delete(name);
        // The last user of a proxy nobody wants any more is gone: let it be deleted.
        if (!this.wantsToxiproxy(name)) void this.reconciler?.kick();
      },
    };
  }

  private wantsToxiproxy(name: string): boolean {
    return this.captureRoutes.some((r) => r.toxiproxy === name);
  }

  /**
   * One Toxiproxy target per TCP fault. Inbound ones reach the app on
   * the pod's first address; outbound ones their upstream by name (Toxiproxy
   * resolves it as the app would). A CIDR names no single upstream, so TCP
   * faults on one cannot be served by a Toxiproxy proxy and are skipped.
   */
  private captureTargets(plan: LiveFaultPlan): Target[] {
    const pod = this.opts.podAddresses?.[0];
    const targets = new Map<string, Target>();
    for (const f of plan.tcp) {
      let t: Target | undefined;
      if (f.direction === 'inbound' && pod !== undefined) t = { direction: 'inbound', port: f.port, connectHost: pod, connectPort: f.port };
      else if (f.direction === 'outbound' && f.host !== undefined && !(f.host.includes('/') && literalMatcher(f.host)))
        t = { direction: 'outbound', port: f.port, host: f.host, connectHost: f.host, connectPort: f.port };
      if (t) targets.set(toxiproxyName(t), t);
      else this.log.debug({ fault: f.chaosId, host: f.host, port: f.port }, 'TCP fault has no single upstream Toxiproxy can dial; not applied');
    }
    return [...targets.values()];
  }

  /** Every plan the source delivers; one equal to the current plan changes nothing. */
  setSourcePlan(plan: LiveFaultPlan): void {
    this.metrics.stats.planUpdates++;
    // The watch delivers every write, the reconciler's many status writes
    // included. An unchanged plan keeps the current one, and with it the
    // matchers compiled for it (capture-proxy.ts's faultsOf) and Toxiproxy
    // unasked (a reconcile lists its proxies).
    if (isDeepStrictEqual(plan, this.sourcePlan)) return;
    this.metrics.stats.planChanges++;
    this.sourcePlan = plan;
    this.applyPlan();
  }

  /** Client connections currently open on the traffic listeners. */
  get openConnections(): number {
    return this.capture?.openConnections ?? 0;
  }

  /**
   * What this pod applies of each policy, served read-only on the health port
   * for the reconciler (webhook/reconciler/datapath-reports.ts says why it reads
   * rather than the proxy writing).
   */
  report(): DatapathReport {
    return datapathReport({
      pod: this.opts.podName ?? '',
      plan: this.plan,
      toxiproxy: (name) => (this.reconciler ? this.supervisor?.up === true && this.reconciler.address(name) !== undefined : 'disabled'),
      ...(this.opts.kernelPlan ? { kernel: this.opts.kernelPlan } : {}),
      ...this.reportCapture(),
    });
  }

  /** What applies depends on the annotations' exclusions and on what the traffic showed (capture/observations.ts). */
  private reportCapture(): Pick<ReportInput, 'capture' | 'observations'> {
    const c = this.opts.capture;
    const observations = this.opts.observations ?? (this.capture ? observationsForReport(this.capture.observations) : undefined);
    return {
      ...(observations ? { observations } : {}),
      capture: {
        excludes: (direction: 'inbound' | 'outbound', port: number | undefined) =>
          port !== undefined && (direction === 'inbound' ? c.excludeInboundPorts : c.excludeOutboundPorts).includes(port),
        tcpTargets: this.captureTcpTargets,
      },
    };
  }

  /** The effective plan right now (expired faults removed, handoff merged). */
  currentPlan(): LiveFaultPlan {
    return this.plan;
  }

  /**
   * A guard tripped here: this pod's faults of that policy end now (the plan
   * is recomputed before this returns, so the next connection and request
   * already pass untouched), then the source tells the others.
   */
  private onBreach(b: Breach): void {
    this.metrics.abort(b.chaosId);
    this.log.warn(
      { event: 'fault', status: 'aborted', chaos_id: `${b.uid}/${b.generation}`, policy: b.chaosId, condition: b.condition, observed: b.observed, threshold: b.threshold, requests: b.requests, window_ms: b.windowMs },
      'steady-state guard breached: faults of the policy end now',
    );
    this.applyPlan();
    this.opts.source?.reportAbort?.(b);
  }

  async close(): Promise<void> {
    this.guards.stop();
    this.mallocRelease?.stop();
    this.expiryTimer?.cancel();
    await this.opts.source?.close();
    await this.capture?.close();
    this.reconciler?.stop();
    await this.supervisor?.stop();
    for (const s of this.servers) {
      s.closeAllConnections();
      s.close();
    }
  }

  private applyPlan(): void {
    const now = Date.now();
    const merged: LiveFaultPlan = { ...this.sourcePlan };
    // A policy's own network delay (if the planner ever hands one over live) wins over the boot-time handoff.
    const handoff = this.opts.handoffDelay;
    if (!merged.networkDelay && handoff) merged.networkDelay = handoff;
    const effective = effectivePlan(merged, now);
    // An aborted generation's faults stay off here whatever the source says, until it names a newer one.
    const aborted = new Set((effective.guards ?? []).filter((g) => this.guards.isAborted(g)).map((g) => g.chaosId));
    const plan = withoutPolicies(effective, aborted);
    this.plan = plan;
    this.guards.setPlan(plan.guards ?? []);
    // Before any connection is routed by this plan, so no request on it waits for the module.
    // The require is synchronous: the first HTTP-fault plan of a proxy's life stalls its event
    // loop once (60-84 ms measured here, load ~2), in-flight connections included; loading it at
    // start instead would cost every pod without HTTP faults 1 MB of RSS for good.
    if (plan.http.length > 0) loadHttpUpstream();
    // Outbound hosts a new policy names start resolving now, not on the next connection.
    void this.capture?.ready();

    const desired = new Map<string, DesiredProxy>();
    this.captureTcpTargets = this.captureTargets(plan);
    this.captureRoutes = !this.reconciler ? [] : this.captureTcpTargets.flatMap((t) => {
      const tcp = tcpFaultsFor(plan, t);
      if (tcp.length === 0) return [];
      const name = toxiproxyName(t);
      const host = t.connectHost.includes(':') ? `[${t.connectHost}]` : t.connectHost;
      desired.set(name, { upstream: `${host}:${t.connectPort}`, toxics: this.mergeToxics(t, tcp.flatMap((f) => f.toxics)) });
      return [{ target: t, toxiproxy: name }];
    });
    this.reconciler?.setDesired(desired);
    this.events.update(plan, now, aborted);
    this.metrics.activeFaults(this.events.list().map((f) => f.kind));
    void this.faketime.apply(plan.time);

    this.expiryTimer?.cancel();
    const next = nextExpiry(merged, now);
    // Faults end on time even if the policy source never speaks again.
    this.expiryTimer = next === undefined ? undefined : runAt(next, () => this.applyPlan());
  }

  /** Toxic names are unique per Toxiproxy proxy; two policies naming a toxic alike cannot both apply. */
  private mergeToxics(t: Target, toxics: PlannedToxic[]): PlannedToxic[] {
    const byName = new Map<string, PlannedToxic>();
    for (const toxic of toxics) {
      if (byName.has(toxic.name)) {
        this.log.warn({ target: label(t), toxic: toxic.name }, 'two TCP faults use the same toxic name on one port; the first wins');
        continue;
      }
      byName.set(toxic.name, toxic);
    }
    return [...byName.values()];
  }

  /** A handed-off netem delay holds inbound traffic only (per connection, or per request on the HTTP path). */
  private inboundNetworkDelayMs(): number {
    const nd = this.plan.networkDelay;
    return nd ? jitteredMs(nd.latencyMs, nd.jitterMs, Math.random) : 0;
  }

  private adminView(): AdminView {
    return {
      plan: () => this.plan,
      faults: () => this.events.list().map((f) => ({ ...f, startedAt: new Date(f.startedAt).toISOString(), expiresAt: new Date(f.expiresAt).toISOString() })),
      stats: () => ({
        ...this.metrics.stats,
        openConnections: this.openConnections,
        toxiproxy: this.supervisor
          ? { up: this.supervisor.up, pid: this.supervisor.pid, api: this.supervisor.apiUrl, writes: this.reconciler?.writes, runs: this.reconciler?.runs }
          : { up: false, disabled: true },
        listeners: this.capture
          ? [{ target: 'capture inbound', listenPort: this.capture.ports.inbound }, { target: 'capture outbound', listenPort: this.capture.ports.outbound }]
          : [],
        ...(this.capture ? { capture: { refused: this.capture.refused.slice(-10), ports: this.capture.observations.snapshot() } } : {}),
        // Committed bytes per V8 heap space (new_space is the two semi-spaces): where the heap part of RSS is.
        memory: { ...process.memoryUsage(), heapSpaces: Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.physical_space_size])) },
        ...(this.mallocRelease ? { mallocRelease: this.mallocRelease.stats } : {}),
      }),
      report: () => this.report(),
      ready: () => {
        if (!this.bound) return { ready: false, reason: 'listeners not bound yet' };
        if (this.captureRoutes.length > 0 && !this.supervisor?.up) return { ready: false, reason: 'TCP faults planned and toxiproxy-server not answering yet' };
        return { ready: true };
      },
    };
  }
}
