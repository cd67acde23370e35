// The webhook's view of the cluster: namespaces, ChaosTenants, ChaosPolicies
// and pods, each kept by a list+watch of the one Kubernetes layer
// (kube/list-watch.ts). Admission reads only from here — never one API call
// per review — and the reconciler is driven by its changes.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../../common/log.ts';
import { KubeClient } from '../../kube/client.ts';
import { connectionFromKubeConfig } from '../../kube/client-node-connection.ts';
import { ListWatch, type ChangeType, type KubeObject } from '../../kube/list-watch.ts';
import type { NamespaceInfo } from '../../policies/tenancy.ts';
import type { ChaosPolicy, ChaosTenant } from '../../policies/types.ts';
import type { ChaosId } from '../../contract/plans.ts';
import type { PreparedPolicy } from '../../policies/planner.ts';
import { API_GROUP, API_VERSION, INJECTED_ANNOTATION, PLAN_ANNOTATION } from '../../policies/wellknown.ts';
import { CLUSTER_SWITCH_NAMESPACE } from '../../policies/switches.ts';
import { kernelChaosIds } from '../plan-annotation.ts';
import { PROXY_CONTAINER_NAME, PROXY_HEALTH_PORT_NAME, PROXY_STATUS_PATH } from '../../contract/pod-layout.ts';
import { admittedIn, PolicyIndex, type AdmittedPolicies } from './policy-index.ts';

/** What is kept of a pod: enough for selection, the blast radius and readiness to be targeted. */
export interface PodMeta {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  phase: string;
  /** Set once the pod is being deleted; such a pod is no target. */
  deletionTimestamp?: string;
  /** Carries faultline.dev/injected: the proxy is there to apply live faults. */
  injected: boolean;
  /** Policies whose kernel faults the pod was started with (faultline.dev/plan). */
  kernelChaosIds: ChaosId[];
  /** The proxy's read-only datapath report (podIP and its health port), once the pod has an IP. */
  reportUrl?: string;
}

/** The read interface admission and the reconciler use; tests implement it in memory. */
export interface ClusterView {
  namespace(name: string): NamespaceInfo | undefined;
  namespaces(): NamespaceInfo[];
  tenants(): ChaosTenant[];
  policies(namespace: string): ChaosPolicy[];
  allPolicies(): ChaosPolicy[];
  policy(namespace: string, name: string): ChaosPolicy | undefined;
  pods(namespace: string): PodMeta[];
  /**
   * The namespace's owner among the valid tenants and the policies it admits
   * now, converted: what pod admission plans from and policy admission judges against.
   */
  admittedPolicies(namespace: string): AdmittedPolicies;
}

export type ResourceKind = 'namespaces' | 'chaostenants' | 'chaospolicies' | 'pods';

export interface ClusterChange {
  kind: ResourceKind;
  type: ChangeType;
  namespace: string;
  name: string;
}

export interface ClusterCache extends ClusterView {
  /** The policy as converted on arrival (validated, defaulted); undefined when invalid or absent. */
  preparedPolicy(namespace: string, name: string): PreparedPolicy | undefined;
  /** The connection the cache watches through; the reconciler's own watches share it. */
  readonly client: KubeClient;
  /** Resolves once every resource's first list is stored. */
  synced(): Promise<void>;
  /** Called after every stored change; returns the unsubscribe function. */
  onChange(listener: (change: ClusterChange) => void): () => void;
  stop(): void;
}

export function projectPod(raw: KubeObject): PodMeta {
  const meta = (raw.metadata ?? {}) as { name?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: string | Date };
  const status = raw.status as { phase?: string; podIP?: string } | undefined;
  const annotations = meta.annotations ?? {};
  const reportUrl = status?.podIP ? proxyReportUrl(status.podIP, raw.spec as PodSpecLike | undefined) : undefined;
  return {
    name: meta.name ?? '',
    namespace: meta.namespace ?? '',
    labels: meta.labels ?? {},
    phase: status?.phase ?? 'Pending',
    ...(meta.deletionTimestamp !== undefined ? { deletionTimestamp: String(meta.deletionTimestamp) } : {}),
    injected: annotations[INJECTED_ANNOTATION] !== undefined,
    kernelChaosIds: kernelChaosIds(annotations[PLAN_ANNOTATION]),
    ...(reportUrl !== undefined ? { reportUrl } : {}),
  };
}

type PodSpecLike = { containers?: Array<{ name?: string; ports?: Array<{ name?: string; containerPort?: number }> }>; initContainers?: PodSpecLike['containers'] };

function proxyReportUrl(podIP: string, spec: PodSpecLike | undefined): string | undefined {
  const proxy = [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])].find((c) => c.name === PROXY_CONTAINER_NAME);
  const port = proxy?.ports?.find((p) => p.name === PROXY_HEALTH_PORT_NAME)?.containerPort;
  if (port === undefined) return undefined;
  return `http://${podIP.includes(':') ? `[${podIP}]` : podIP}:${port}${PROXY_STATUS_PATH}`;
}

function projectNamespace(raw: KubeObject): NamespaceInfo {
  const meta = (raw.metadata ?? {}) as { name?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  const ns: NamespaceInfo = { name: meta.name ?? '', labels: meta.labels ?? {} };
  // Only the switch's namespace keeps annotations: the cache holds every namespace of the cluster.
  if (ns.name === CLUSTER_SWITCH_NAMESPACE) ns.annotations = meta.annotations ?? {};
  return ns;
}

/** Cluster-wide lists take larger pages than the proxy's one namespace: fewer round trips on a relist. */
const PAGE_SIZE = 500;
/** 500 pods of up to ~128 KiB each; anything larger is a broken server, not a page to buffer. */
const MAX_PAGE_BYTES = 64 * 1024 * 1024;

/**
 * Starts the four list+watches. `synced()` tells when admission may trust the
 * view; until then /readyz says not ready and the API server sends reviews
 * to other replicas (or, with failurePolicy Fail, refuses policy writes).
 */
export async function startClusterCache(kc: KubeConfig, log: Logger): Promise<ClusterCache> {
  const client = new KubeClient(await connectionFromKubeConfig(kc), 'faultline-webhook');
  const listeners = new Set<(change: ClusterChange) => void>();
  const index = new PolicyIndex();
  const watch = <T>(kind: ResourceKind, path: string, project: (raw: KubeObject) => T): ListWatch<T> =>
    new ListWatch<T>({
      client, kind, path, log, project, pageSize: PAGE_SIZE, maxPageBytes: MAX_PAGE_BYTES,
      onDelta: (type, namespace, name) => {
        if (kind !== 'pods') index.changed(kind, type, namespace, name);
        for (const l of listeners) l({ kind, type, namespace, name });
      },
    });
  const custom = (plural: string): string => `/apis/${API_GROUP}/${API_VERSION}/${plural}`;

  const namespaces = watch('namespaces', '/api/v1/namespaces', projectNamespace);
  const tenants = watch('chaostenants', custom('chaostenants'), (raw) => index.convertTenant(raw as unknown as ChaosTenant));
  const policies = watch('chaospolicies', custom('chaospolicies'), (raw) => index.convertPolicy(raw as unknown as ChaosPolicy));
  const pods = watch('pods', '/api/v1/pods', projectPod);
  const all = [namespaces, tenants, policies, pods];
  for (const r of all) void r.start();

  return {
    synced: async () => {
      await Promise.all(all.map((r) => r.synced()));
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    client,
    stop: () => {
      all.forEach((r) => r.stop());
      client.close();
    },
    namespace: (name) => namespaces.get('', name),
    namespaces: () => namespaces.all(),
    tenants: () => tenants.all().map((t) => t.tenant),
    policies: (namespace) => policies.inNamespace(namespace).map((p) => p.policy),
    allPolicies: () => policies.all().map((p) => p.policy),
    policy: (namespace, name) => policies.get(namespace, name)?.policy,
    preparedPolicy: (namespace, name) => policies.get(namespace, name)?.prepared,
    pods: (namespace) => pods.inNamespace(namespace),
    admittedPolicies: (namespace) =>
      index.admitted(namespace, () => {
        const ns = namespaces.get('', namespace) ?? { name: namespace };
        const valid = tenants.all().flatMap((t) => (t.valid ? [t.tenant] : []));
        return admittedIn(ns, valid, policies.inNamespace(namespace));
      }),
  };
}
