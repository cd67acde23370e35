// One RoleBinding `faultline-sidecar` per chaos-enabled namespace, binding the
// ClusterRole faultline-sidecar (read ChaosPolicies) to the group
// system:serviceaccounts:<namespace>: every proxy can watch its own
// namespace's policies and no other's. Removed when the namespace opts out.
//
// The webhook's RBAC grants no list on RoleBindings (only create, and
// get/update/delete of this one name), so the state of each namespace is
// learned with one GET when leadership starts and tracked from then on.
import { RbacAuthorizationV1Api, type KubeConfig, type V1RoleBinding } from '@kubernetes/client-node';
import type { Logger } from '../../common/log.ts';
import type { NamespaceInfo } from '../../policies/tenancy.ts';
import { CHAOS_LABEL, CHAOS_LABEL_ENABLED } from '../../policies/wellknown.ts';
import type { ClusterCache } from '../cache/cluster-cache.ts';
import { errorMessage } from '../../kube/api-error.ts';
import type { Controller } from './policy-controller.ts';
import { WorkQueue } from '../../kube/work-queue.ts';

export const SIDECAR_BINDING = 'faultline-sidecar';
const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'faultline-webhook' };

export function sidecarRoleBinding(namespace: string): V1RoleBinding {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: SIDECAR_BINDING, namespace, labels: { ...MANAGED_BY } },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: SIDECAR_BINDING },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: `system:serviceaccounts:${namespace}` }],
  };
}

export function wantsBinding(ns: NamespaceInfo | undefined): boolean {
  return ns?.labels?.[CHAOS_LABEL] === CHAOS_LABEL_ENABLED;
}

export function startSidecarRbacController(opts: { kubeConfig: KubeConfig; cluster: ClusterCache; log: Logger }): Controller {
  const { cluster, log } = opts;
  const rbac = opts.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  /** namespace → the state of its binding, as last written or read. */
  const known = new Map<string, 'ours' | 'absent' | 'foreign'>();

  const reconcile = async (namespace: string): Promise<void> => {
    const want = wantsBinding(cluster.namespace(namespace));
    if (!known.has(namespace)) {
      const existing = await rbac.readNamespacedRoleBinding({ name: SIDECAR_BINDING, namespace }).catch((err: unknown) => {
        if ((err as { code?: number }).code === 404) return undefined;
        throw err;
      });
      const ours = existing?.metadata?.labels?.['app.kubernetes.io/managed-by'] === MANAGED_BY['app.kubernetes.io/managed-by'];
      known.set(namespace, existing === undefined ? 'absent' : ours ? 'ours' : 'foreign');
    }
    const state = known.get(namespace);
    if (state === 'foreign') {
      // Someone else's binding of that name: never overwritten, never deleted.
      if (want) log.warn({ namespace }, `RoleBinding ${SIDECAR_BINDING} exists and is not managed by Faultline; leaving it`);
      return;
    }
    if (want && state === 'absent') {
      await rbac.createNamespacedRoleBinding({ namespace, body: sidecarRoleBinding(namespace) }).catch((err: unknown) => {
        if ((err as { code?: number }).code !== 409) throw err;
      });
      known.set(namespace, 'ours');
      log.info({ namespace }, `created RoleBinding ${SIDECAR_BINDING}`);
    } else if (!want && state === 'ours') {
      await rbac.deleteNamespacedRoleBinding({ name: SIDECAR_BINDING, namespace }).catch((err: unknown) => {
        if ((err as { code?: number }).code !== 404) throw err;
      });
      known.set(namespace, 'absent');
      log.info({ namespace }, `deleted RoleBinding ${SIDECAR_BINDING}`);
    }
  };

  const queue = new WorkQueue(reconcile, (namespace, err) => log.warn({ namespace, err: errorMessage(err) }, 'sidecar RoleBinding update failed; retrying'));
  const unsubscribe = cluster.onChange((change) => {
    if (change.kind !== 'namespaces') return;
    if (change.type === 'deleted') known.delete(change.name);
    else queue.add(change.name);
  });
  for (const ns of cluster.namespaces()) queue.add(ns.name);
  return {
    stop() {
      unsubscribe();
      queue.stop();
    },
  };
}
