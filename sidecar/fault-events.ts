// Fault START / END as structured events. Each effective plan is compared with
// the previous one; a fault that appears is logged as started, one that
// disappears as ended (status "expired" when its expiresAt passed, "removed"
// when the policy changed or went away). The same bookkeeping backs GET /faults.

import type { LiveFaultPlan } from '../contract/plans.ts';
import type { Logger } from '../common/log.ts';

export interface ActiveFault {
  key: string;
  chaosId: string;
  kind: string;
  target: string;
  fault: unknown;
  startedAt: number;
  expiresAt: number;
}

function faultsOf(plan: LiveFaultPlan): Omit<ActiveFault, 'startedAt'>[] {
  const out: Omit<ActiveFault, 'startedAt'>[] = [];
  for (const f of plan.http) {
    const target = `${f.direction} ${f.match.host ?? '*'}:${f.match.port ?? '*'}`;
    const fault = { name: f.name, match: f.match, delay: f.delay, abort: f.abort };
    const kind = f.protocol ?? 'http';
    out.push({ key: `${kind}|${f.chaosId}|${f.name}|${JSON.stringify(fault)}`, chaosId: f.chaosId, kind, target, fault, expiresAt: f.expiresAt });
  }
  for (const f of plan.tcp) {
    const target = `${f.direction} ${f.host ?? '127.0.0.1'}:${f.port}`;
    out.push({ key: `tcp|${f.chaosId}|${target}|${JSON.stringify(f.toxics)}`, chaosId: f.chaosId, kind: 'tcp', target, fault: { toxics: f.toxics }, expiresAt: f.expiresAt });
  }
  if (plan.networkDelay) {
    const { chaosId, expiresAt, ...fault } = plan.networkDelay;
    out.push({ key: `network.delay|${chaosId}|${JSON.stringify(fault)}`, chaosId, kind: 'network.delay', target: 'inbound *', fault, expiresAt });
  }
  if (plan.time) {
    const { chaosId, expiresAt, ...fault } = plan.time;
    out.push({ key: `time|${chaosId}|${JSON.stringify(fault)}`, chaosId, kind: 'time.offset', target: fault.containers.join(',') || '*', fault, expiresAt });
  }
  return out;
}

export class FaultEvents {
  private active = new Map<string, ActiveFault>();
  private readonly log: Logger;

  constructor(log: Logger) {
    this.log = log;
  }

  list(): ActiveFault[] {
    return [...this.active.values()];
  }

  /** `aborted`: policies whose faults end because their steady-state guard tripped. */
  update(plan: LiveFaultPlan, now: number, aborted: ReadonlySet<string> = new Set()): void {
    const next = new Map<string, ActiveFault>();
    for (const f of faultsOf(plan)) {
      const before = this.active.get(f.key);
      if (before) {
        next.set(f.key, { ...f, startedAt: before.startedAt });
        continue;
      }
      const started: ActiveFault = { ...f, startedAt: now };
      next.set(f.key, started);
      this.log.info(
        { event: 'fault', status: 'started', chaosId: f.chaosId, kind: f.kind, target: f.target, fault: f.fault, durationMs: f.expiresAt - now, expiresAt: new Date(f.expiresAt).toISOString() },
        'fault started',
      );
    }
    for (const [key, f] of this.active) {
      if (next.has(key)) continue;
      this.log.info(
        { event: 'fault', status: aborted.has(f.chaosId) ? 'aborted' : f.expiresAt <= now ? 'expired' : 'removed', chaosId: f.chaosId, kind: f.kind, target: f.target, fault: f.fault, durationMs: now - f.startedAt },
        'fault ended',
      );
    }
    this.active = next;
  }
}
