// The destinations TCP faults name, each served by one Toxiproxy proxy, and
// which faults of a plan concern one of them.

import type { LiveFaultPlan, PlannedTcpFault } from '../contract/plans.ts';

export interface Target {
  direction: 'inbound' | 'outbound';
  /** Inbound: the app's port. Outbound: the upstream's port. The key policies use. */
  port: number;
  /** Outbound only: the upstream host as the app addresses it. */
  host?: string;
  /** Where the proxy (or its Toxiproxy proxy) connects for this traffic. */
  connectHost: string;
  connectPort: number;
}

/** Stable name of the Toxiproxy proxy serving a target (Toxiproxy names appear in its API URLs). */
export function toxiproxyName(t: Target): string {
  return t.direction === 'inbound' ? `inbound-${t.port}` : `outbound-${t.host}-${t.port}`;
}

export function label(t: Target): string {
  return t.direction === 'inbound' ? `inbound :${t.port}` : `outbound ${t.host}:${t.port}`;
}

export function tcpFaultsFor(plan: LiveFaultPlan, t: Target): PlannedTcpFault[] {
  return plan.tcp.filter(
    (f) => f.direction === t.direction && f.port === t.port && (t.direction === 'inbound' || f.host === t.host),
  );
}
