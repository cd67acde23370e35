// ChaosPolicies of the pod's namespace, by list+watch (client-node informer).
//
// Why the sidecar watches the API server itself rather than receiving a stream
// from the webhook: the API server is already the highly-available, RBAC-guarded
// fan-out point with resumable watches; a webhook-side stream would add a second
// availability dependency and a bespoke protocol, and would tie live faults to
// the webhook's uptime. The watch is namespace-scoped (a read-only RoleBinding
// per chaos namespace, no cluster-wide RBAC) and the blast radius stays central:
// the policy's status.targets names the pods, so no sidecar decides alone.
//
// Every event recomputes the whole plan with the injected `planFor` (the
// policies/ merge), typically within milliseconds of the change. On a watch
// error the last plan stays (its faults still expire locally) and the informer
// restarts with exponential backoff.

import { CustomObjectsApi, KubeConfig, makeInformer, type Informer, type KubernetesObject, type ObjectCache } from '@kubernetes/client-node';
import type { ChaosPolicy, LiveFaultPlan } from '../policies/types.ts';
import { API_GROUP, API_VERSION } from '../policies/wellknown.ts';
import type { Logger } from '../common/log.ts';
import type { PolicySource } from './policy-source.ts';

export type PlanFor = (podName: string, policies: ChaosPolicy[], now: number) => LiveFaultPlan;

export interface K8sPolicySourceOptions {
  kubeconfig: KubeConfig;
  namespace: string;
  podName: string;
  planFor: PlanFor;
  log: Logger;
}

const PLURAL = 'chaospolicies';
const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30_000;

/** Loads a kubeconfig file, or the in-cluster service account when no file is given. */
export function loadKubeConfig(file: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromCluster();
  return kc;
}

export class K8sPolicySource implements PolicySource {
  readonly name = 'kubernetes';
  private readonly opts: K8sPolicySourceOptions;
  private informer: (Informer<KubernetesObject> & ObjectCache<KubernetesObject>) | undefined;
  private backoffMs = MIN_BACKOFF_MS;
  private restartTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(opts: K8sPolicySourceOptions) {
    this.opts = opts;
  }

  async start(onPlan: (plan: LiveFaultPlan) => void): Promise<void> {
    const { kubeconfig, namespace, log } = this.opts;
    const api = kubeconfig.makeApiClient(CustomObjectsApi);
    const path = `/apis/${API_GROUP}/${API_VERSION}/namespaces/${namespace}/${PLURAL}`;
    const informer = makeInformer<KubernetesObject>(kubeconfig, path, () =>
      api.listNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace, plural: PLURAL }),
    );
    this.informer = informer;
    const recompute = (): void => {
      if (this.closed) return;
      try {
        onPlan(this.opts.planFor(this.opts.podName, informer.list() as unknown as ChaosPolicy[], Date.now()));
      } catch (err) {
        log.error({ err: (err as Error).message }, 'cannot compute the live plan; keeping the last plan');
      }
    };
    informer.on('add', recompute);
    informer.on('update', recompute);
    informer.on('delete', recompute);

    let startedAt = Date.now();
    const restart = (): void => {
      startedAt = Date.now();
      informer.start().catch(onError);
    };
    const onError = (err: unknown): void => {
      if (this.closed) return;
      // A watch that ran a good while before failing is a fresh failure, not a crash loop.
      if (Date.now() - startedAt > MAX_BACKOFF_MS) this.backoffMs = MIN_BACKOFF_MS;
      log.warn({ err: err instanceof Error ? err.message : String(err), retryInMs: this.backoffMs }, 'ChaosPolicy watch failed; keeping the last plan');
      this.restartTimer = setTimeout(restart, this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    };
    informer.on('error', onError);
    // Errors of the first list arrive through onError too; until it succeeds
    // the plan is empty and traffic passes untouched (fail open).
    await informer.start().catch(onError);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    await this.informer?.stop();
  }
}
