// Counters of the datapath, exported twice: Prometheus text on the metrics port
// and a plain JSON snapshot on the admin port (`GET /stats`, what tests read).
// The hot path only bumps the plain numbers of `stats`; the Prometheus counters
// read them at scrape time (collect). prom-client's own inc(), even on a bound
// label child, hashes and validates the labels on every call.

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
    /** Plans the source delivered, and those of them that changed the plan (an equal one is not applied again). */
    planUpdates: 0,
    planChanges: 0,
    aborts: 0,
  };
  private readonly restarts: Counter;
  private readonly aborts: Counter<'policy'>;
  /** A pod sees few policies, but a long-lived proxy sees them come and go: the label is capped. */
  private readonly abortPolicies = new BoundedLabels(32);
  private readonly active: Gauge<'kind'>;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'faultline_proxy_' });
    const { stats } = this;
    /** A counter whose series are one of `stats`' tallies, read at scrape time (`withZeros`: a series for a value still at 0). */
    const tally = (name: string, help: string, label: string, counts: () => Record<string, number>, withZeros: boolean): void =>
      void new Counter({
        name, help, labelNames: [label], registers,
        collect() {
          this.reset();
          for (const [value, n] of Object.entries(counts())) if (withZeros || n > 0) this.inc({ [label]: value }, n);
        },
      });
    tally('faultline_proxy_requests_total', 'HTTP requests handled on the HTTP path', 'direction', () => stats.requests, true);
    tally('faultline_proxy_connections_total', 'Accepted connections by datapath', 'path', () => stats.connections, true);
    tally('faultline_faults_injected_total', 'Faults injected (requests or connections)', 'kind', () => stats.faults, false);
    new Counter({
      name: 'faultline_fault_delay_seconds_total', help: 'Delay added by HTTP and handed-off network faults', registers,
      collect() {
        this.reset();
        this.inc(stats.faultDelaySeconds);
      },
    });
    this.restarts = new Counter({ name: 'faultline_toxiproxy_restarts_total', help: 'Restarts of the supervised toxiproxy-server', registers });
    // Labelled by policy: a pod runs a handful of policies, and each aborts at most once per generation.
    this.active = new Gauge({ name: 'faultline_faults_active', help: 'Live faults this proxy applies now, by kind', labelNames: ['kind'], registers });
    this.aborts = new Counter({ name: 'faultline_guard_aborts_total', help: 'Steady-state guard breaches seen by this proxy, by policy (namespace/name)', labelNames: ['policy'], registers });
  }

  request(direction: 'inbound' | 'outbound'): void {
    this.stats.requests[direction]++;
  }
  connection(path: ConnectionPath): void {
    this.stats.connections[path]++;
  }
  fault(kind: FaultKind, delayMs = 0): void {
    this.stats.faults[kind]++;
    if (delayMs > 0) this.stats.faultDelaySeconds += delayMs / 1000;
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
