// Counters of the datapath, exported twice: Prometheus text on the metrics port
// and a plain JSON snapshot on the admin port (`GET /stats`, what tests read).
// Label children are bound once so the hot path pays one increment, no lookup.

import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { BoundedLabels } from '../common/bounded-labels.ts';

export type ConnectionPath = 'raw' | 'http' | 'h2' | 'toxiproxy';
export type FaultKind = 'http.delay' | 'http.abort' | 'grpc.delay' | 'grpc.abort' | 'tcp.toxiproxy' | 'network.delay';

export class Metrics {
  readonly registry = new Registry();
  readonly stats = {
    requests: { inbound: 0, outbound: 0 },
    connections: { raw: 0, http: 0, h2: 0, toxiproxy: 0 },
    faults: { 'http.delay': 0, 'http.abort': 0, 'grpc.delay': 0, 'grpc.abort': 0, 'tcp.toxiproxy': 0, 'network.delay': 0 } as Record<FaultKind, number>,
    faultDelaySeconds: 0,
    clientAbortsDuringDelay: 0,
    upstreamErrors: 0,
    toxiproxyRestarts: 0,
    planUpdates: 0,
    aborts: 0,
  };
  private readonly requests: Record<'inbound' | 'outbound', Counter.Internal>;
  private readonly connections: Record<ConnectionPath, Counter.Internal>;
  private readonly faults: Counter<'kind'>;
  private readonly delaySeconds: Counter;
  private readonly restarts: Counter;
  private readonly aborts: Counter<'policy'>;
  /** A pod sees few policies, but a long-lived proxy sees them come and go: the label is capped. */
  private readonly abortPolicies = new BoundedLabels(32);
  private readonly active: Gauge<'kind'>;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'faultline_proxy_' });
    const requests = new Counter({ name: 'faultline_proxy_requests_total', help: 'HTTP requests handled on the HTTP path', labelNames: ['direction'], registers });
    this.requests = { inbound: requests.labels('inbound'), outbound: requests.labels('outbound') };
    const connections = new Counter({ name: 'faultline_proxy_connections_total', help: 'Accepted connections by datapath', labelNames: ['path'], registers });
    this.connections = { raw: connections.labels('raw'), http: connections.labels('http'), h2: connections.labels('h2'), toxiproxy: connections.labels('toxiproxy') };
    this.faults = new Counter({ name: 'faultline_faults_injected_total', help: 'Faults injected (requests or connections)', labelNames: ['kind'], registers });
    this.delaySeconds = new Counter({ name: 'faultline_fault_delay_seconds_total', help: 'Delay added by HTTP and handed-off network faults', registers });
    this.restarts = new Counter({ name: 'faultline_toxiproxy_restarts_total', help: 'Restarts of the supervised toxiproxy-server', registers });
    // Labelled by policy: a pod runs a handful of policies, and each aborts at most once per generation.
    this.active = new Gauge({ name: 'faultline_faults_active', help: 'Live faults this proxy applies now, by kind', labelNames: ['kind'], registers });
    this.aborts = new Counter({ name: 'faultline_guard_aborts_total', help: 'Steady-state guard breaches seen by this proxy, by policy (namespace/name)', labelNames: ['policy'], registers });
  }

  request(direction: 'inbound' | 'outbound'): void {
    this.stats.requests[direction]++;
    this.requests[direction].inc();
  }
  connection(path: ConnectionPath): void {
    this.stats.connections[path]++;
    this.connections[path].inc();
  }
  fault(kind: FaultKind, delayMs = 0): void {
    this.stats.faults[kind]++;
    this.faults.labels(kind).inc();
    if (delayMs > 0) {
      this.stats.faultDelaySeconds += delayMs / 1000;
      this.delaySeconds.inc(delayMs / 1000);
    }
  }
  /** The live faults of the current plan, by kind (kinds absent now are set to 0, not dropped). */
  activeFaults(kinds: readonly string[]): void {
    this.active.reset();
    for (const k of kinds) this.active.labels(k).inc();
  }
  abort(policy: string): void {
    this.stats.aborts++;
    this.aborts.labels(this.abortPolicies.label(policy)).inc();
  }
  toxiproxyRestart(): void {
    this.stats.toxiproxyRestarts++;
    this.restarts.inc();
  }
}
