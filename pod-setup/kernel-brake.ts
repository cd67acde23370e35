// faultline-kernel's brake: the policies behind its kernel faults, watched
// from the API server like the proxy watches them (kube/running-policies.ts). A
// policy that stops running — a pause switch (cluster or tenant), its own
// spec.paused, or deleted — has its kernel faults lifted at once
// (FaultKeeper.lift), with no webhook or reconciler involved.
//
// Lifting is one way: tc and FUSE faults are fixed at pod start, so a resumed
// policy's kernel faults come back only on pod restart (live faults do come
// back at once).
import type { Logger } from '../common/log.ts';
import type { KubeConnection } from '../kube/connection.ts';
import { RunningPolicies } from '../kube/running-policies.ts';
import type { ChaosPolicy } from '../policies/types.ts';
import { chaosIdOf } from '../policies/planner.ts';
import type { FaultKeeper } from './fault-keeper.ts';

/** Which of `planned` no longer run, and why (for the log). Pure. */
export function stoppedPolicies(planned: ReadonlySet<string>, running: readonly ChaosPolicy[], all: readonly ChaosPolicy[]): Map<string, string> {
  const runningIds = new Set(running.filter((p) => p.spec?.paused !== true).map(chaosIdOf));
  const known = new Map(all.map((p) => [chaosIdOf(p), p]));
  const stopped = new Map<string, string>();
  for (const id of planned) {
    if (runningIds.has(id)) continue;
    const p = known.get(id);
    stopped.set(id, p === undefined ? 'policy deleted' : p.spec?.paused === true ? 'policy spec.paused' : 'pause switch or steady-state abort');
  }
  return stopped;
}

export function startKernelBrake(opts: { connection: KubeConnection; namespace: string; server: FaultKeeper; planned: ReadonlySet<string>; log: Logger }): RunningPolicies {
  const { server, log } = opts;
  const lifted = new Set<string>();
  const running = new RunningPolicies({
    connection: opts.connection,
    namespace: opts.namespace,
    log,
    onChange: (run, all) => {
      const stopped = [...stoppedPolicies(opts.planned, run, all)].filter(([id]) => !lifted.has(id));
      for (const [id, reason] of stopped) {
        lifted.add(id);
        void server.lift(new Set([id]), reason).catch((err: Error) => log.error({ chaos_id: id, err: err.message }, 'could not lift kernel faults'));
      }
    },
  });
  return running;
}
