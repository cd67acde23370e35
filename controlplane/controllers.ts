// The two kube-controller-manager controllers a webhook-only control plane
// cannot do without, reimplemented minimally. Running the real
// kube-controller-manager would need another multi-minute Go build and would
// bring garbage collection, namespace finalisation and pod eviction logic that
// these tests do not want; envtest runs none of it either (and its users then
// hit exactly these two gaps).
//
// - ServiceAccount: every namespace gets a `default` ServiceAccount, which the
//   ServiceAccount admission plugin requires of every pod that names none.
// - ClusterRole aggregation: the built-in `admin`, `edit` and `view` roles are
//   bootstrapped empty and filled from every ClusterRole labelled
//   `rbac.authorization.k8s.io/aggregate-to-<role>` — including Faultline's
//   tenant roles. Without it `edit` grants nothing at all.
import {
  CoreV1Api,
  makeInformer,
  RbacAuthorizationV1Api,
  type Informer,
  type KubeConfig,
  type KubernetesObject,
  type V1ClusterRole,
  type V1LabelSelector,
  type V1Namespace,
  type V1PolicyRule,
} from '@kubernetes/client-node';

/** Reports a failed reconcile; the controllers keep going (the next event retries). */
export type ControllerErrorHandler = (controller: string, err: unknown) => void;

export interface Controllers {
  stop(): Promise<void>;
}

/** Starts both controllers; resolves once their caches have synced. */
export async function startControllers(kc: KubeConfig, onError: ControllerErrorHandler): Promise<Controllers> {
  const core = kc.makeApiClient(CoreV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  let stopped = false;

  const namespaces = makeInformer<V1Namespace>(kc, '/api/v1/namespaces', () => core.listNamespace());
  const ensureDefaultServiceAccount = (ns: V1Namespace): void => {
    const namespace = ns.metadata?.name;
    if (!namespace || ns.status?.phase === 'Terminating') return;
    core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'default' } } }).catch((err: unknown) => {
      // 409: it exists (we made it earlier, or someone else did). 403/404: the
      // namespace is being deleted.
      const code = (err as { code?: number }).code;
      if (code !== 409 && code !== 403 && code !== 404) onError('serviceaccount', err);
    });
  };
  namespaces.on('add', ensureDefaultServiceAccount);
  namespaces.on('update', ensureDefaultServiceAccount);

  const roles = makeInformer<V1ClusterRole>(kc, '/apis/rbac.authorization.k8s.io/v1/clusterroles', () => rbac.listClusterRole());
  let pending: NodeJS.Timeout | undefined;
  // Any ClusterRole change may change any aggregate, so recompute them all,
  // batched: the RBAC bootstrap creates ~70 roles in one burst.
  const scheduleAggregation = (): void => {
    if (pending || stopped) return;
    pending = setTimeout(() => {
      pending = undefined;
      for (const role of aggregatedRoles(roles.list())) {
        rbac.replaceClusterRole({ name: role.metadata!.name!, body: role }).catch((err: unknown) => {
          // 409: the role changed under us; that change is an event, which reschedules.
          if ((err as { code?: number }).code !== 409) onError('clusterrole-aggregation', err);
        });
      }
    }, 50);
  };
  for (const verb of ['add', 'update', 'delete'] as const) roles.on(verb, scheduleAggregation);

  const informers: Array<Informer<KubernetesObject>> = [namespaces as Informer<KubernetesObject>, roles as Informer<KubernetesObject>];
  for (const informer of informers) {
    // An informer stops at its first watch error (e.g. the API server
    // restarting); restart it, as client-go's reflector would.
    informer.on('error', (err: unknown) => {
      if (stopped) return;
      onError('informer', err);
      setTimeout(() => void informer.start().catch(() => undefined), 1000).unref();
    });
  }
  await Promise.all(informers.map((i) => i.start()));
  return {
    async stop() {
      stopped = true;
      clearTimeout(pending);
      await Promise.all(informers.map((i) => i.stop()));
    },
  };
}

/**
 * The aggregated ClusterRoles whose rules are out of date, with their new
 * rules: the union of the rules of every other ClusterRole matched by any of
 * their selectors, in name order (as the upstream controller does), without
 * duplicates.
 */
export function aggregatedRoles(all: readonly V1ClusterRole[]): V1ClusterRole[] {
  const byName = [...all].sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  const out: V1ClusterRole[] = [];
  for (const role of byName) {
    const selectors = role.aggregationRule?.clusterRoleSelectors;
    if (!selectors?.length) continue;
    const seen = new Set<string>();
    const rules: V1PolicyRule[] = [];
    for (const source of byName) {
      if (source === role || !selectors.some((s) => matches(s, source.metadata?.labels ?? {}))) continue;
      for (const rule of source.rules ?? []) {
        const key = JSON.stringify(rule);
        if (!seen.has(key)) {
          seen.add(key);
          rules.push(rule);
        }
      }
    }
    if (JSON.stringify(rules) !== JSON.stringify(role.rules ?? [])) out.push({ ...role, rules });
  }
  return out;
}

function matches(selector: V1LabelSelector, labels: Record<string, string>): boolean {
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpressions = (selector.matchExpressions ?? []).every(({ key, operator, values = [] }) => {
    switch (operator) {
      case 'In':
        return key in labels && values.includes(labels[key]!);
      case 'NotIn':
        return !(key in labels) || !values.includes(labels[key]!);
      case 'Exists':
        return key in labels;
      case 'DoesNotExist':
        return !(key in labels);
      default:
        return false;
    }
  });
  return byLabels && byExpressions;
}
