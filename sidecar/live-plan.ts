// The live fault plan as the datapath sees it: filtered by expiry at the
// moment of use (contract/codec.ts parses it).

import type { LiveFaultPlan } from '../contract/plans.ts';

export const EMPTY_PLAN: LiveFaultPlan = Object.freeze({ http: [], tcp: [] }) as LiveFaultPlan;

/** The plan minus everything expired at `now`: the only view the datapath ever uses. */
export function effectivePlan(plan: LiveFaultPlan, now: number): LiveFaultPlan {
  const out: LiveFaultPlan = {
    http: plan.http.filter((f) => f.expiresAt > now),
    tcp: plan.tcp.filter((f) => f.expiresAt > now && f.toxics.length > 0),
  };
  if (plan.networkDelay && plan.networkDelay.expiresAt > now) out.networkDelay = plan.networkDelay;
  if (plan.time && plan.time.expiresAt > now) out.time = plan.time;
  if (plan.guards) out.guards = plan.guards;
  if (plan.policies) out.policies = plan.policies;
  return out;
}

/** The plan without the faults (and guards) of these policies: what an abort leaves. */
export function withoutPolicies(plan: LiveFaultPlan, chaosIds: ReadonlySet<string>): LiveFaultPlan {
  if (chaosIds.size === 0) return plan;
  const keep = (f: { chaosId: string }): boolean => !chaosIds.has(f.chaosId);
  const out: LiveFaultPlan = { http: plan.http.filter(keep), tcp: plan.tcp.filter(keep) };
  if (plan.networkDelay && keep(plan.networkDelay)) out.networkDelay = plan.networkDelay;
  if (plan.time && keep(plan.time)) out.time = plan.time;
  if (plan.guards) out.guards = plan.guards.filter(keep);
  if (plan.policies) out.policies = plan.policies.filter(keep);
  return out;
}

/** The earliest expiry still ahead of `now`, or undefined when nothing will expire. */
export function nextExpiry(plan: LiveFaultPlan, now: number): number | undefined {
  let next = Infinity;
  const consider = (t: number): void => {
    if (t > now && t < next) next = t;
  };
  for (const f of plan.http) consider(f.expiresAt);
  for (const f of plan.tcp) consider(f.expiresAt);
  if (plan.networkDelay) consider(plan.networkDelay.expiresAt);
  if (plan.time) consider(plan.time.expiresAt);
  return next === Infinity ? undefined : next;
}
