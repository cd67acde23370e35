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
import { ABORT_FIELD_SELECTOR, abortNoticeEvent, parseAbortNotice, type AbortNotice } from '../../policies/abort-notice.ts';
import { PrometheusGuards, type PrometheusBreach } from './prometheus-guard.ts';
import { desiredStatus, pendingExpiry, statusChanged, statusEvents, type PolicyEvent } from './policy-status.ts';
import { MAX_TIMER_MS } from '../../common/timer.ts';
import { CLUSTER_SWITCH_NAMESPACE } from '../../policies/switches.ts';
import { chaosIdOf, logChaosEvent, type ChaosEvent } from '../../common/chaos-event.ts';
import { policyEntry } from './applied-status.ts';
import { DatapathReports, type Interest } from './datapath-reports.ts';
import { podTransitions, type PodEntryState, type PodSeen } from './pod-transitions.ts';
import type { ChaosMetrics } from './chaos-metrics.ts';

export const COMPONENT = 'faultline-reconciler';

export interface Controller {
  stop(): void;
}

export interface PolicyControllerOptions {
  kubeConfig: KubeConfig;
  cluster: ClusterCache;
  log: Logger;
  now?: () => number;
  /** How often a targeted pod's datapath report is re-read once settled. */
  reportRefreshMs?: number;
  /** Metrics by policy (webhook/reconciler/chaos-metrics.ts). */
  metrics?: ChaosMetrics;
  /** Also receives every chaos event (the OTLP exporter, when configured). */
  chaosSink?: (e: ChaosEvent) => void;
}

/** Targeting: the policy's faults should be on (Active, or targeting with nothing applied yet). */
function targeting(status: ChaosPolicyStatus | undefined): boolean {
  const active = status?.conditions?.find((c) => c.type === 'Active');
  return active?.status === 'True' || active?.reason === 'NothingApplied';
}

export function startPolicyController(opts: PolicyControllerOptions): Controller {
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
  /** Per policy key: what each pod applied at the last reconcile (pod-transitions.ts). */
  const seen = new Map<string, Map<string, PodSeen>>();
  const podsTargeted = (namespace: string, pod: string): ChaosPolicy[] =>
    cluster.policies(namespace).filter((p) => !isTerminating(p) && targeting(p.status) && (p.status?.targets ?? []).includes(pod));
  const reports = new DatapathReports({
    ...(opts.reportRefreshMs !== undefined ? { refreshMs: opts.reportRefreshMs } : {}),
    onChange: (namespace, pod) => {
      for (const p of podsTargeted(namespace, pod)) queue.add(keyOf(p));
    },
    interest: (namespace, pod): Interest => {
      const policies = podsTargeted(namespace, pod);
      if (policies.length === 0) return 'none';
      const report = reports.get(namespace, pod)?.report;
      return policies.some((p) => policyEntry(report, p) === undefined) ? 'lagging' : 'settled';
    },
  });
  const prometheus = new PrometheusGuards({
    current: (key) => {
      const [namespace = '', name = ''] = key.split('/');
      return cluster.policy(namespace, name);
    },
    onBreach: (b) => void recordPrometheusBreach(b),
    onError: (key, message) => log.warn({ policy: key, err: message }, 'abortWhen.prometheus: query failed; the guard judges nothing this round'),
  });
  const onChange = (change: ClusterChange): void => {
    switch (change.kind) {
      case 'chaospolicies':
        queue.add(`${change.namespace}/${change.name}`);
        break;
      case 'pods':
        enqueueNamespace(change.namespace);
        break;
      case 'namespaces':
        // The cluster-wide switch holds every policy (condition Active, reason Held).
        if (change.name === CLUSTER_SWITCH_NAMESPACE) for (const p of cluster.allPolicies()) queue.add(keyOf(p));
        else enqueueNamespace(change.name);
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
      endAll(key);
      prometheus.sync(key, undefined, false);
      opts.metrics?.forget(key);
      return;
    }
    const pods = cluster.pods(namespace);
    const t = now();
    const next = desiredStatus({
      policy, namespace: cluster.namespace(namespace), tenants: cluster.tenants(), pods, now: t, notices: noticesFor(namespace, name),
      reports: (pod) => reports.get(namespace, pod), clusterSwitch: cluster.namespace(CLUSTER_SWITCH_NAMESPACE)?.annotations ?? {},
      // As the cache converted them: the policy and its owner are not validated again here.
      prepared: cluster.preparedPolicy(namespace, name), owner: cluster.admittedPolicies(namespace).owner,
    });
    arm(key, pendingExpiry(next, t));
    const on = targeting(next);
    if (on) {
      const byName = new Map(pods.map((p) => [p.name, p]));
      for (const pod of next.targets ?? []) {
        const url = byName.get(pod)?.reportUrl;
        reports.want(namespace, pod, url, policyEntry(reports.get(namespace, pod)?.report, policy) === undefined);
      }
    }
    observePods(key, policy, on ? next.targets ?? [] : [], endStatusOf(next), t);
    prometheus.sync(key, policy, on);
    opts.metrics?.policyStatus(key, next);
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

  /** The per-pod chaos events and Events of this reconcile (pod-transitions.ts). */
  function observePods(key: string, policy: ChaosPolicy, targets: readonly string[], endStatus: 'ended' | 'aborted' | 'expired', t: number): void {
    const namespace = policy.metadata.namespace ?? '';
    const states = new Map<string, PodEntryState>();
    for (const pod of targets) {
      const state = reports.get(namespace, pod);
      const entry = policyEntry(state?.report, policy);
      states.set(pod, entry ? { kind: 'reported', policy: entry } : state?.report ? { kind: 'absent' } : { kind: 'unknown' });
    }
    const previous = seen.get(key) ?? new Map<string, PodSeen>();
    if (previous.size === 0 && states.size === 0) return;
    const chaosId = chaosIdOf(policy.metadata.uid ?? key, policy.metadata.generation ?? 0);
    const out = podTransitions({ policy: key, chaosId, previous, pods: states, endStatus, now: t });
    if (out.next.size > 0) seen.set(key, out.next);
    else seen.delete(key);
    emit(out.chaos);
    for (const e of out.events) void record(policy, e, e.pod);
  }

  /** A Prometheus breach becomes the notice a proxy would write: the proxies drop the policy, the notices reflector marks it Aborted. */
  async function recordPrometheusBreach(b: PrometheusBreach): Promise<void> {
    const { policy } = b;
    const ref = { namespace: policy.metadata.namespace ?? '', name: policy.metadata.name ?? '' };
    const breach = { condition: 'prometheus' as const, observed: b.observed, threshold: b.threshold, requests: 0, windowMs: b.intervalMs, uid: policy.metadata.uid ?? '', generation: policy.metadata.generation ?? 0 };
    log.warn({ policy: `${ref.namespace}/${ref.name}`, observed: b.observed, threshold: b.threshold }, 'abortWhen.prometheus breached: aborting the policy');
    const body = abortNoticeEvent(ref, breach, COMPONENT, now(), COMPONENT) as unknown as CoreV1Event;
    await core.createNamespacedEvent({ namespace: ref.namespace, body }).catch((err: unknown) => {
      log.error({ policy: `${ref.namespace}/${ref.name}`, err: errorMessage(err) }, 'could not record the Prometheus abort; retrying at the next evaluation');
      queue.add(`${ref.namespace}/${ref.name}`);
      prometheus.sync(`${ref.namespace}/${ref.name}`, undefined, false);
    });
  }

  /** A deleted policy's faults end with it: logged only (Events on it would be deleted with it). */
  function endAll(key: string): void {
    const previous = seen.get(key);
    if (!previous) return;
    seen.delete(key);
    emit(podTransitions({ policy: key, chaosId: '', previous, pods: new Map(), endStatus: 'removed', now: now() }).chaos);
  }

  function emit(events: readonly ChaosEvent[]): void {
    for (const e of events) logChaosEvent(log, { ...e, component: COMPONENT }, opts.chaosSink);
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

  async function record(policy: ChaosPolicy, event: PolicyEvent, pod?: string): Promise<void> {
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
      ...(pod !== undefined ? { related: { apiVersion: 'v1', kind: 'Pod', name: pod, namespace: policy.metadata.namespace ?? '' } } : {}),
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
      reports.stop();
      prometheus.stop();
      notices.stop();
      queue.stop();
      for (const key of [...timers.keys()]) disarm(key);
    },
  };
}

function endStatusOf(status: ChaosPolicyStatus): 'ended' | 'aborted' | 'expired' {
  const reason = status.conditions?.find((c) => c.type === 'Active')?.reason;
  return reason === 'Expired' ? 'expired' : reason === 'Aborted' ? 'aborted' : 'ended';
}

function keyOf(p: ChaosPolicy): string {
  return `${p.metadata.namespace ?? ''}/${p.metadata.name ?? ''}`;
}

function summary(status: ChaosPolicyStatus): Record<string, string> {
  return Object.fromEntries((status.conditions ?? []).map((c) => [c.type, c.status]));
}
