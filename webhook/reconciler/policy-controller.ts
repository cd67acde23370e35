// Keeps every ChaosPolicy's status true: driven by cache changes (a policy,
// a pod or namespace of its namespace, any tenant) and by one timer per
// policy at its expiry, never by polling. Writes only when the status changes,
// with the cached resourceVersion (a conflict means a newer version is on its
// way through the watch, which enqueues the policy again), and records the
// transitions as Events on the policy.
import { randomBytes } from 'node:crypto';
import { CoreV1Api, CustomObjectsApi, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../../common/log.ts';
import { isTerminating } from '../../policies/planner.ts';
import type { ChaosPolicy, ChaosPolicyStatus } from '../../policies/types.ts';
import { API_GROUP, API_VERSION } from '../../policies/wellknown.ts';
import type { ClusterCache, ClusterChange } from '../cache/cluster-cache.ts';
import { errorMessage } from '../../kube/api-error.ts';
import { WorkQueue } from '../../kube/work-queue.ts';
import { ListWatch } from '../../kube/list-watch.ts';
import { ABORT_FIELD_SELECTOR, parseAbortNotice, type AbortNotice } from '../../policies/abort-notice.ts';
import { desiredStatus, pendingExpiry, statusChanged, statusEvents, type PolicyEvent } from './policy-status.ts';
import { MAX_TIMER_MS } from '../../common/timer.ts';

export const COMPONENT = 'faultline-reconciler';

export interface Controller {
  stop(): void;
}

export function startPolicyController(opts: { kubeConfig: KubeConfig; cluster: ClusterCache; log: Logger; now?: () => number }): Controller {
  const { cluster, log } = opts;
  const now = opts.now ?? Date.now;
  const custom = opts.kubeConfig.makeApiClient(CustomObjectsApi);
  const core = opts.kubeConfig.makeApiClient(CoreV1Api);
  const timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  const instance = `${process.env.POD_NAME ?? 'faultline-webhook'}`;

  const queue = new WorkQueue(reconcile, (key, err) => log.warn({ policy: key, err: errorMessage(err) }, 'status update failed; retrying'));
  const enqueueNamespace = (namespace: string): void => {
    for (const p of cluster.policies(namespace)) queue.add(keyOf(p));
  };
  const onChange = (change: ClusterChange): void => {
    switch (change.kind) {
      case 'chaospolicies':
        queue.add(`${change.namespace}/${change.name}`);
        break;
      case 'pods':
        enqueueNamespace(change.namespace);
        break;
      case 'namespaces':
        enqueueNamespace(change.name);
        break;
      case 'chaostenants':
        for (const p of cluster.allPolicies()) queue.add(keyOf(p));
        break;
    }
  };
  const unsubscribe = cluster.onChange(onChange);
  // Steady-state abort notices from the sidecars (policies/abort-notice.ts), by policy key.
  const notices = new ListWatch<AbortNotice | undefined>({
    client: cluster.client, kind: 'Event', log, path: '/api/v1/events', query: { fieldSelector: ABORT_FIELD_SELECTOR },
    project: (raw) => parseAbortNotice(raw),
    onDelta: (_type, namespace) => {
      for (const n of notices.inNamespace(namespace)) if (n) queue.add(`${n.namespace}/${n.policy}`);
    },
  });
  void notices.start();
  const noticesFor = (namespace: string, name: string): AbortNotice[] =>
    notices.inNamespace(namespace).filter((n): n is AbortNotice => n !== undefined && n.policy === name);
  for (const p of cluster.allPolicies()) queue.add(keyOf(p));

  async function reconcile(key: string): Promise<void> {
    const [namespace = '', name = ''] = key.split('/');
    const policy = cluster.policy(namespace, name);
    // A terminating policy is out of every plan already; writing its status
    // (or an Event) would only race the finalizers that are removing it.
    if (!policy || isTerminating(policy)) {
      disarm(key);
      return;
    }
    const pods = cluster.pods(namespace);
    const t = now();
    const next = desiredStatus({ policy, namespace: cluster.namespace(namespace), tenants: cluster.tenants(), pods, now: t, notices: noticesFor(namespace, name) });
    arm(key, pendingExpiry(next, t));
    if (!statusChanged(policy.status, next)) return;
    try {
      await custom.replaceNamespacedCustomObjectStatus({
        group: API_GROUP,
        version: API_VERSION,
        plural: 'chaospolicies',
        namespace,
        name,
        body: { ...policy, status: next },
      });
    } catch (err) {
      const code = (err as { code?: number }).code;
      // 409: the cache is behind; the watch brings the newer version and enqueues it. 404: deleted meanwhile.
      if (code === 409 || code === 404) return;
      throw err;
    }
    log.info({ policy: key, targets: next.targets, conditions: summary(next) }, 'policy status updated');
    for (const event of statusEvents(policy, policy.status, next, pods)) void record(policy, event);
  }

  function arm(key: string, at: number | undefined): void {
    const existing = timers.get(key);
    if (existing?.at === at) return;
    disarm(key);
    if (at === undefined) return;
    // Capped at setTimeout's ceiling: an early firing just reconciles, which re-arms for the rest.
    const timer = setTimeout(() => {
      timers.delete(key);
      queue.add(key);
    }, Math.min(Math.max(0, at - now()), MAX_TIMER_MS));
    timer.unref();
    timers.set(key, { at, timer });
  }

  function disarm(key: string): void {
    clearTimeout(timers.get(key)?.timer);
    timers.delete(key);
  }

  async function record(policy: ChaosPolicy, event: PolicyEvent): Promise<void> {
    const time = new Date(now());
    const body: CoreV1Event = {
      metadata: { name: `${policy.metadata.name}.${randomBytes(8).toString('hex')}`, namespace: policy.metadata.namespace ?? '' },
      involvedObject: {
        apiVersion: policy.apiVersion,
        kind: policy.kind,
        name: policy.metadata.name ?? '',
        namespace: policy.metadata.namespace ?? '',
        ...(policy.metadata.uid !== undefined ? { uid: policy.metadata.uid } : {}),
      },
      type: event.type,
      reason: event.reason,
      message: event.message,
      source: { component: COMPONENT },
      reportingComponent: COMPONENT,
      reportingInstance: instance,
      firstTimestamp: time,
      lastTimestamp: time,
      count: 1,
    };
    log.info({ policy: `${policy.metadata.namespace}/${policy.metadata.name}`, type: event.type, reason: event.reason }, event.message);
    // Events are best effort: a lost one must never hold up or fail a status update.
    await core.createNamespacedEvent({ namespace: body.metadata.namespace!, body }).catch((err: unknown) => log.warn({ err: errorMessage(err), reason: event.reason }, 'could not record event'));
  }

  return {
    stop() {
      unsubscribe();
      notices.stop();
      queue.stop();
      for (const key of [...timers.keys()]) disarm(key);
    },
  };
}

function keyOf(p: ChaosPolicy): string {
  return `${p.metadata.namespace ?? ''}/${p.metadata.name ?? ''}`;
}

function summary(status: ChaosPolicyStatus): Record<string, string> {
  return Object.fromEntries((status.conditions ?? []).map((c) => [c.type, c.status]));
}
