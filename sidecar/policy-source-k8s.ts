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
// policies/ merge), typically within milliseconds of the change. On a watch
// error the last plan stays (its faults still expire locally) and the watch
// retries with jittered backoff.

import type { ChaosPolicy } from '../policies/types.ts';
import type { LiveFaultPlan } from '../contract/plans.ts';
import { API_GROUP, API_VERSION } from '../policies/wellknown.ts';
import type { Logger } from '../common/log.ts';
import type { PolicySource } from './policy-source.ts';
import { KubeClient } from '../kube/client.ts';
import type { KubeConnection } from '../kube/config.ts';
import { ListWatch, type KubeObject } from '../kube/list-watch.ts';

export type PlanFor = (podName: string, policies: ChaosPolicy[], now: number) => LiveFaultPlan;

export interface K8sPolicySourceOptions {
  connection: KubeConnection;
  namespace: string;
  podName: string;
  planFor: PlanFor;
  log: Logger;
}

/** managedFields is often the bulk of a stored object and the planner never reads it. */
function project(obj: KubeObject): KubeObject {
  if (obj.metadata?.managedFields === undefined) return obj;
  const { managedFields: _, ...metadata } = obj.metadata;
  return { ...obj, metadata };
}

export class K8sPolicySource implements PolicySource {
  readonly name = 'kubernetes';
  private readonly opts: K8sPolicySourceOptions;
  private client: KubeClient | undefined;
  private watch: ListWatch | undefined;

  constructor(opts: K8sPolicySourceOptions) {
    this.opts = opts;
  }

  async start(onPlan: (plan: LiveFaultPlan) => void): Promise<void> {
    const { connection, namespace, podName, planFor, log } = this.opts;
    this.client = new KubeClient(connection);
    this.watch = new ListWatch({
      client: this.client,
      path: `/apis/${API_GROUP}/${API_VERSION}/namespaces/${encodeURIComponent(namespace)}/chaospolicies`,
      kind: 'ChaosPolicy',
      log,
      project,
      onChange: (policies) => {
        try {
          onPlan(planFor(podName, policies as unknown as ChaosPolicy[], Date.now()));
        } catch (err) {
          log.error({ err: (err as Error).message }, 'cannot compute the live plan; keeping the last plan');
        }
      },
    });
    log.info({ server: connection.server.origin, credentials: connection.origin, namespace }, 'watching ChaosPolicies');
    // Until the first list succeeds the plan is empty and traffic passes untouched (fail open).
    await this.watch.start();
  }

  async close(): Promise<void> {
    this.watch?.stop();
    this.client?.close();
  }
}
