// What a ChaosPolicy status write costs one proxy (issue 11: each policy
// converted once). The proxy's watch delivers every write to the namespace's
// policies, the reconciler's status writes included, and each delivery
// re-plans from the whole list. livePlanFor validates and defaults every
// policy on every call; livePlanner, what the proxy runs, does so once per
// generation. Ten policies of 16 HTTP and 4 TCP rules, one status write per
// event (a new object, same generation), the two planners in alternating
// rounds in one process; printed as JSON.
//
//   npm run bench:planner
//   env: BENCH_EVENTS=300 BENCH_ROUNDS=5
import type { LiveFaultPlan } from '../contract/plans.ts';
import { livePlanFor, livePlanner } from '../policies/planner.ts';
import type { ChaosPolicy } from '../policies/types.ts';
import { largePolicy } from './webhook-neighbours.ts';
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

type Plan = (pod: string, policies: readonly ChaosPolicy[], now: number) => LiveFaultPlan;

/** µs per event over EVENTS events, after a warm-up of a tenth of them. */
function usPerEvent(plan: Plan): number {
  let rules = 0;
  for (let i = 0; i < EVENTS / 10; i++) plan(POD, event(i), Date.now());
  const started = performance.now();
  for (let i = 0; i < EVENTS; i++) rules += plan(POD, event(i), Date.now()).http.length;
  if (rules !== EVENTS * 160) throw new Error(`planned ${rules} HTTP rules, expected ${EVENTS * 160}`);
  return ((performance.now() - started) * 1000) / EVENTS;
}

const planners: Record<'livePlanFor' | 'livePlanner', Plan> = { livePlanFor, livePlanner: livePlanner() };
const rounds: Array<Record<keyof typeof planners, number>> = [];
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 === 0 ? (['livePlanFor', 'livePlanner'] as const) : (['livePlanner', 'livePlanFor'] as const);
  const times = { livePlanFor: 0, livePlanner: 0 };
  for (const name of order) times[name] = usPerEvent(planners[name]);
  rounds.push(times);
}
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
console.log(JSON.stringify({
  policies: policies.length,
  rulesPerPolicy: { http: 16, tcp: 4 },
  eventsPerRound: EVENTS,
  // µs per status write, medians over rounds: re-validating every policy, and once per generation.
  livePlanForUsPerEvent: round(median(rounds.map((r) => r.livePlanFor))),
  livePlannerUsPerEvent: round(median(rounds.map((r) => r.livePlanner))),
  // The planner's cost as a share of the baseline's, paired by round.
  ratio: round(median(rounds.map((r) => r.livePlanner / r.livePlanFor))),
  rounds: rounds.map((r) => ({ livePlanFor: round(r.livePlanFor), livePlanner: round(r.livePlanner) })),
  node: process.version,
}));
