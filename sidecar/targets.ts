// Which faults of a plan concern one proxied port. A listener knows where its
// traffic was going only by its own port (Node cannot read SO_ORIGINAL_DST), so
// the wiring is turned into one Target per listener at start-up.

import type { LiveFaultPlan, PlannedHttpFault, PlannedTcpFault, TrafficWiring } from '../contract/plans.ts';

export interface Target {
  direction: 'inbound' | 'outbound';
  /** Inbound: the app's port. Outbound: the upstream's port. The key policies use. */
  port: number;
  /** Outbound only: the upstream host as the app addresses it. */
  host?: string;
  /** Where the proxy connects for this traffic. */
  connectHost: string;
  connectPort: number;
  /** The proxy's own listener the traffic is redirected to. */
  listenPort: number;
}

/** Stable name of the Toxiproxy proxy serving a target (Toxiproxy names appear in its API URLs). */
export function toxiproxyName(t: Target): string {
  return t.direction === 'inbound' ? `inbound-${t.port}` : `outbound-${t.host}-${t.port}`;
}

export function label(t: Target): string {
  return t.direction === 'inbound' ? `inbound :${t.port}` : `outbound ${t.host}:${t.port}`;
}

export function targetsFromWiring(wiring: TrafficWiring, upstreamHost: string): Target[] {
  const seen = new Set<number>();
  const claim = (listenPort: number, what: string): void => {
    if (listenPort === 0) return; // ephemeral (in-process tests): the kernel picks distinct ports
    if (seen.has(listenPort)) throw new Error(`wiring: listenPort ${listenPort} is used twice (${what})`);
    seen.add(listenPort);
  };
  const targets: Target[] = [];
  for (const w of wiring.inbound) {
    claim(w.listenPort, `inbound ${w.port}`);
    targets.push({ direction: 'inbound', port: w.port, connectHost: upstreamHost, connectPort: w.port, listenPort: w.listenPort });
  }
  for (const w of wiring.outbound) {
    claim(w.listenPort, `outbound ${w.host}:${w.port}`);
    targets.push({ direction: 'outbound', port: w.port, host: w.host, connectHost: w.host, connectPort: w.port, listenPort: w.listenPort });
  }
  return targets;
}

/**
 * HTTP faults for a target. A fault without match.port (or, outbound, without
 * match.host) covers every port of its direction: such a policy asks for HTTP
 * parsing on all of them, which is what the author wrote.
 */
export function httpFaultsFor(plan: LiveFaultPlan, t: Target): PlannedHttpFault[] {
  return plan.http.filter(
    (f) =>
      f.direction === t.direction &&
      (f.match.port === undefined || f.match.port === t.port) &&
      (t.direction === 'inbound' || f.match.host === undefined || f.match.host === t.host),
  );
}

export function tcpFaultsFor(plan: LiveFaultPlan, t: Target): PlannedTcpFault[] {
  return plan.tcp.filter(
    (f) => f.direction === t.direction && f.port === t.port && (t.direction === 'inbound' || f.host === t.host),
  );
}
