// Fault START / END as chaos events (common/chaos-event.ts). Each effective
// plan is compared with the previous one; a fault that appears is logged as
// started, one that disappears as ended (status "expired" when its expiresAt
// passed, "aborted" when its guard tripped, "removed" when the policy changed
// or went away). The same bookkeeping backs GET /faults.

import type { LiveFaultPlan } from '../contract/plans.ts';
import type { Logger } from '../common/log.ts';
import { chaosIdOf, logChaosEvent } from '../common/chaos-event.ts';
import { httpKinds, httpTarget, tcpTarget } from './applied-report.ts';

export interface ActiveFault {
  key: string;
  chaosId: string;
  /** "<uid>/<generation>" when the plan names the policy's generation, else the chaosId. */
  chaos_id: string;
  kind: string;
  /** The allowlist's kinds it injects (http.delay, tcp.latency, …): one chaos event each. */
  kinds: string[];
  target: string;
  fault: unknown;
  startedAt: number;
  expiresAt: number;
}

function faultsOf(plan: LiveFaultPlan): Omit<ActiveFault, 'startedAt' | 'chaos_id'>[] {
  const out: Omit<ActiveFault, 'startedAt' | 'chaos_id'>[] = [];
  for (const f of plan.http) {
    const target = httpTarget(f);
    const fault = { name: f.name, match: f.match, delay: f.delay, abort: f.abort };
    const kind = f.protocol ?? 'http';
    out.push({ key: `${kind}|${f.chaosId}|${f.name}|${JSON.stringify(fault)}`, chaosId: f.chaosId, kind, kinds: httpKinds(f), target, fault, expiresAt: f.expiresAt });
  }
  for (const f of plan.tcp) {
    const target = tcpTarget(f);
    out.push({ key: `tcp|${f.chaosId}|${target}|${JSON.stringify(f.toxics)}`, chaosId: f.chaosId, kind: 'tcp', kinds: f.toxics.map((t) => `tcp.${t.type}`), target, fault: { toxics: f.toxics }, expiresAt: f.expiresAt });
  }
  if (plan.networkDelay) {
    const { chaosId, expiresAt, ...fault } = plan.networkDelay;
    out.push({ key: `network.delay|${chaosId}|${JSON.stringify(fault)}`, chaosId, kind: 'network.delay', kinds: ['network.delay'], target: 'inbound *', fault, expiresAt });
  }
  if (plan.time) {
    const { chaosId, expiresAt, ...fault } = plan.time;
    out.push({ key: `time|${chaosId}|${JSON.stringify(fault)}`, chaosId, kind: 'time.offset', kinds: ['time.offset'], target: fault.containers.join(',') || '*', fault, expiresAt });
  }
  return out;
}

export class FaultEvents {
  private active = new Map<string, ActiveFault>();
  private readonly log: Logger;
  private readonly pod: string;

  constructor(log: Logger, pod = '') {
    this.log = log;
    this.pod = pod;
  }

  list(): ActiveFault[] {
    return [...this.active.values()];
  }

  /** `aborted`: policies whose faults end because their steady-state guard tripped. */
  update(plan: LiveFaultPlan, now: number, aborted: ReadonlySet<string> = new Set()): void {
    const next = new Map<string, ActiveFault>();
    const generations = new Map((plan.policies ?? []).map((p) => [p.chaosId, chaosIdOf(p.uid, p.generation)]));
    const target = (f: { target: string }): string => (this.pod ? `${this.pod} ${f.target}` : f.target);
    for (const f of faultsOf(plan)) {
      const before = this.active.get(f.key);
      if (before) {
        next.set(f.key, { ...f, chaos_id: before.chaos_id, startedAt: before.startedAt });
        continue;
      }
      const started: ActiveFault = { ...f, chaos_id: generations.get(f.chaosId) ?? f.chaosId, startedAt: now };
      next.set(f.key, started);
      for (const fault of f.kinds) {
        logChaosEvent(this.log, {
          chaos_id: started.chaos_id, policy: f.chaosId, target: target(f), fault, status: 'started', duration_ms: f.expiresAt - now,
          expires_at: new Date(f.expiresAt).toISOString(), spec: f.fault,
        });
      }
    }
    for (const [key, f] of this.active) {
      if (next.has(key)) continue;
      const status = aborted.has(f.chaosId) ? 'aborted' : f.expiresAt <= now ? 'expired' : 'removed';
      for (const fault of f.kinds) logChaosEvent(this.log, { chaos_id: f.chaos_id, policy: f.chaosId, target: target(f), fault, status, duration_ms: now - f.startedAt, spec: f.fault });
    }
    this.active = next;
  }
}
