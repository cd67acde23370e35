// POST /mutate/pods: decides whether a pod gets the proxy and reports why not.
// Rendering is inject.ts's job; this handler adds the admission semantics
// (which requests apply, warnings, metrics, logs).
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from '../common/log.ts';
import type { NamespaceInfo } from '../policies/tenancy.ts';
import { INJECTED_ANNOTATION } from '../policies/wellknown.ts';
import { HttpError, type AdmissionRequest, type AdmissionVerdict, type Handler } from './admission.ts';
import type { Injector } from './inject.ts';
import type { PodPolicyPlan } from './kernel-plans.ts';
import type { WebhookMetrics } from './metrics.ts';

export interface MutatePodsDeps {
  injector: Injector;
  metrics: WebhookMetrics;
  log: Logger;
  /**
   * The kernel faults (network/io/time) the pod's policies ask for. Absent
   * until the policy cache exists: pods are then injected with an empty kernel
   * plan. (Live faults need nothing at admission: every connection is captured.)
   */
  planFor?: (pod: V1Pod, namespace: string) => PodPolicyPlan;
  /**
   * The namespace with its labels (Pod Security level), from the cluster cache.
   * Absent without one, or for a namespace the cache has not seen yet: the
   * pod is then judged by its namespace's name alone.
   */
  namespace?: (name: string) => NamespaceInfo | undefined;
}

export function createMutatePodsHandler(deps: MutatePodsDeps): Handler {
  const { injector, metrics, log } = deps;
  return async (request: AdmissionRequest): Promise<AdmissionVerdict> => {
    // The webhook configuration only sends pod CREATEs; anything else is let through untouched.
    if (request.kind.kind !== 'Pod' || request.resource.resource !== 'pods' || (request.subResource ?? '') !== '')
      return { allowed: true, result: 'ignored' };
    if (request.operation !== 'CREATE') return { allowed: true, result: 'ignored' };
    const pod = request.object;
    if (typeof pod !== 'object' || pod === null || Array.isArray(pod)) throw new HttpError(400, 'Pod CREATE without request.object');
    const v1pod = pod as V1Pod;
    const namespace = request.namespace ?? v1pod.metadata?.namespace ?? 'default';
    const dryRun = request.dryRun === true;
    const podName = v1pod.metadata?.name ?? `${v1pod.metadata?.generateName ?? ''}*`;

    const plan = deps.planFor?.(v1pod, namespace);
    const result = injector.render(v1pod, deps.namespace?.(namespace) ?? { name: namespace }, plan?.kernel);
    if (!result.injected && result.deny) {
      metrics.skips.inc({ reason: result.reason, dry_run: String(dryRun) });
      log.info({ namespace, pod: podName, uid: request.uid, reason: result.reason, dryRun }, `denied: ${result.message}`);
      return { allowed: false, status: { code: 400, reason: 'BadRequest', message: `faultline: ${result.message}` } };
    }
    if (!result.injected) {
      metrics.skips.inc({ reason: result.reason, dry_run: String(dryRun) });
      // A pod we injected ourselves coming back (reinvocationPolicy: IfNeeded, or the
      // apiserver re-running admission after another plugin changed it) IS injected:
      // a "not injected" warning (or info line) would tell its author something false.
      const ours = result.reason === 'already-injected' && v1pod.metadata?.annotations?.[INJECTED_ANNOTATION] !== undefined;
      log[ours ? 'debug' : 'info']({ namespace, pod: podName, uid: request.uid, reason: result.reason, dryRun }, `not injected: ${result.message}`);
      if (ours) return result.patch ? { allowed: true, patch: result.patch } : { allowed: true, result: 'skipped' };
      return { allowed: true, result: 'skipped', warnings: [`faultline: proxy not injected (${result.reason}): ${result.message}`] };
    }
    metrics.injections.inc({ dry_run: String(dryRun) });
    // Debug: an injection is the normal outcome, one per pod created, and the
    // pod's own faultline.dev/injected and plan annotations and
    // faultline_injections_total record it. At info, pino and the write of
    // this line were 4-5% of a review's CPU at max rate (cpu-prof,
    // bench:webhook); skips and denials stay at info.
    log.debug(
      {
        namespace,
        pod: podName,
        uid: request.uid,
        dryRun,
        capture: result.plan.wiring.capture,
      },
      'injected',
    );
    return { allowed: true, patch: result.patch, ...(result.warnings.length > 0 ? { warnings: result.warnings } : {}) };
  };
}
