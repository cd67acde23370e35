// What a ChaosPolicy status write costs (issue 11: each policy converted
// once). Ten policies of 16 HTTP and 4 TCP rules, one status write per event
// (a new object, same generation), each pair in alternating rounds in one
// process; printed as JSON.
//   - One proxy: its watch delivers every write to the namespace's policies,
//     the reconciler's status writes included, and each delivery re-plans
//     from the whole list. livePlanFor validates and defaults every policy on
//     every call; livePlanner, what the proxy runs, once per generation.
//   - The webhook's cache: the namespace's admitted list, recomputed after the
//     write (PolicyIndex), against the same recompute with every verdict
//     asked again (a new tenant object each event), as each recompute did
//     before verdicts were kept.
//
//   npm run bench:planner
//   env: BENCH_EVENTS=300 BENCH_ROUNDS=5
import type { LiveFaultPlan } from '../contract/plans.ts';
import { livePlanFor, livePlanner } from '../policies/planner.ts';
import type { ChaosPolicy } from '../policies/types.ts';
import type { ChaosTenant } from '../policies/types.ts';
import { CHAOS_LABEL, CHAOS_LABEL_ENABLED } from '../policies/wellknown.ts';
import { admittedIn, PolicyIndex } from '../webhook/cache/policy-index.ts';
import { largePolicy, neighbourTenant } from './webhook-neighbours.ts';
import { round } from './webhook-stats.ts';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 300);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const POD = 'web-1';

const policies = Array.from({ length: 10 }, (_, i) => {
  const p = largePolicy(`p${i}`, { app: 'web' });
  return { ...p, status: { observedGeneration: 1, targets: [POD] } } as ChaosPolicy;
});
/** Event i: policy i mod 10 as its status write leaves it. */
const event = (i: number): ChaosPolicy[] =>
  policies.map((p, j) => (j === i % policies.length ? { ...p, status: { ...p.status, targets: [POD, `web-${i}`] } } : p));

/** One event's work; returns how many rules or policies it ended with, so nothing is optimised away and a wrong answer shows. */
type Handle = (i: number) => number;

/** µs per event over EVENTS events, after a warm-up of a tenth of them; every event must give `expected`. */
function usPerEvent(handle: Handle, expected: number): number {
  for (let i = 0; i < EVENTS / 10; i++) handle(i);
  let wrong = 0;
  const started = performance.now();
  for (let i = 0; i < EVENTS; i++) if (handle(i) !== expected) wrong++;
  if (wrong > 0) throw new Error(`${wrong} of ${EVENTS} events did not give ${expected}`);
  return ((performance.now() - started) * 1000) / EVENTS;
}

/** Alternating rounds of a baseline and a candidate: medians and the paired ratio. */
function compare(baseline: Handle, candidate: Handle, expected: number) {
  const rounds: Array<{ baseline: number; candidate: number }> = [];
  for (let r = 0; r < ROUNDS; r++) {
    const times = { baseline: 0, candidate: 0 };
    for (const side of r % 2 === 0 ? (['baseline', 'candidate'] as const) : (['candidate', 'baseline'] as const))
      times[side] = usPerEvent(side === 'baseline' ? baseline : candidate, expected);
    rounds.push(times);
  }
  return {
    baselineUsPerEvent: round(median(rounds.map((r) => r.baseline))),
    usPerEvent: round(median(rounds.map((r) => r.candidate))),
    // The candidate's cost as a share of the baseline's, paired by round.
    ratio: round(median(rounds.map((r) => r.candidate / r.baseline))),
    rounds: rounds.map((r) => `${round(r.baseline)}/${round(r.candidate)}`),
  };
}
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

const plan = (planFor: (pod: string, policies: readonly ChaosPolicy[], now: number) => LiveFaultPlan): Handle => (i) => planFor(POD, event(i), Date.now()).http.length;

const index = new PolicyIndex();
const ns = { name: policies[0]!.metadata.namespace!, labels: { [CHAOS_LABEL]: CHAOS_LABEL_ENABLED } };
const tenant = neighbourTenant;
/** The cache's recompute after event i: every policy read through the index, as cluster-cache.ts does. */
const admitted = (tenantOf: () => ChaosTenant): Handle => (i) => admittedIn(ns, [tenantOf()], event(i).map((p) => index.convertPolicy(p))).policies.length;

console.log(JSON.stringify({
  policies: policies.length,
  rulesPerPolicy: { http: 16, tcp: 4 },
  eventsPerRound: EVENTS,
  // One proxy's re-plan: livePlanFor (every policy validated again) against livePlanner.
  proxy: compare(plan(livePlanFor), plan(livePlanner()), 160),
  // The webhook's admitted list: every verdict asked again against verdicts kept per namespace and tenant object.
  webhook: compare(admitted(() => ({ ...tenant })), admitted(() => tenant), policies.length),
  node: process.version,
}));
