// ChaosPolicies of the pod's namespace, by list+watch (kube/list-watch.ts).
//
// Why the sidecar watches the API server itself rather than receiving a stream
// from the webhook: the API server is already the highly-available, RBAC-guarded
// fan-out point with resumable watches; a webhook-side stream would add a second
// availability dependency and a bespoke protocol, and would tie live faults to
// the webhook's uptime. The watch is namespace-scoped (a read-only RoleBinding
// per chaos namespace, no cluster-wide RBAC) and the blast radius stays central:
// the policy's status.targets names the pods, so no sidecar decides alone.
//
// Every change recomputes the whole plan with the injected `planFor` (the
// policies/ merge, each policy validated once per generation), typically
// within milliseconds of the change; the pause switches are watched alongside
// (kube/running-policies.ts). On a watch error the last plan stays (its
// faults still expire locally) and the watch retries with jittered backoff.

import type { ChaosPolicy } from '../policies/types.ts';
import type { LiveFaultPlan } from '../contract/plans.ts';
import type { Logger } from '../common/log.ts';
import type { PolicySource } from './policy-source.ts';
import type { KubeConnection } from '../kube/connection.ts';
import { RunningPolicies } from '../kube/running-policies.ts';
import type { Breach } from './guard.ts';

export type PlanFor = (podName: string, policies: ChaosPolicy[], now: number) => LiveFaultPlan;

export interface K8sPolicySourceOptions {
  connection: KubeConnection;
  namespace: string;
  podName: string;
  planFor: PlanFor;
  log: Logger;
}

export class K8sPolicySource implements PolicySource {
  readonly name = 'kubernetes';
  private readonly opts: K8sPolicySourceOptions;
  private running: RunningPolicies | undefined;

  constructor(opts: K8sPolicySourceOptions) {
    this.opts = opts;
  }

  async start(onPlan: (plan: LiveFaultPlan) => void): Promise<void> {
    const { connection, namespace, podName, planFor, log } = this.opts;
    // Policies a pause switch holds are left out: their faults end as a deleted policy's do.
    this.running = new RunningPolicies({ connection, namespace, log, onChange: (running) => onPlan(planFor(podName, running, Date.now())) });
    log.info({ server: connection.server.origin, credentials: connection.origin, namespace }, 'watching ChaosPolicies');
    // Until the first list succeeds the plan is empty and traffic passes untouched (fail open).
    await this.running.start();
  }

  reportAbort(breach: Breach): void {
    const [namespace = this.opts.namespace, name = ''] = breach.chaosId.split('/');
    void this.running?.reportAbort({ namespace, name }, breach, this.opts.podName);
  }

  async close(): Promise<void> {
    this.running?.stop();
  }
}
