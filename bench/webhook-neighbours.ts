// What a pod review costs next to many policies (issue 13 M3): the same pod
// reviewed in a namespace holding 1 ChaosPolicy (its own) and in one holding
// that policy plus 99 large ones aimed at other workloads. Runs the real
// mutate handler, injector, planner and the webhook cache's policy index
// in-process, so the figure is admission's own work, not TLS or HTTP.
import type { V1Pod } from '@kubernetes/client-node';
import { createLogger } from '../common/log.ts';
import type { NamespaceInfo } from '../policies/tenancy.ts';
import type { ChaosPolicy, ChaosTenant, HttpFault } from '../policies/types.ts';
import { API_GROUP_VERSION, CHAOS_LABEL, CHAOS_LABEL_ENABLED } from '../policies/wellknown.ts';
import type { AdmissionRequest } from '../webhook/admission.ts';
import type { ClusterView, PodMeta } from '../webhook/cache/cluster-cache.ts';
import { admittedIn, PolicyIndex, type AdmittedPolicies } from '../webhook/cache/policy-index.ts';
import { loadInjectionConfig } from '../webhook/injection-config.ts';
import { createInjector } from '../webhook/inject.ts';
import { createPolicyPlanner } from '../webhook/kernel-plans.ts';
import { createMetrics } from '../webhook/metrics.ts';
import { createMutatePodsHandler } from '../webhook/mutate.ts';
import { benchPod } from './webhook-apiserver.ts';
import { percentile, round } from './webhook-stats.ts';

const NAMESPACE = 'shop';
const REVIEWS = Number(process.env.BENCH_NEIGHBOUR_REVIEWS ?? 2000);

/** The namespace's tenant: it admits the large policies below. */
export const neighbourTenant: ChaosTenant = {
  apiVersion: API_GROUP_VERSION,
  kind: 'ChaosTenant',
  metadata: { name: NAMESPACE, generation: 1 },
  spec: { namespaces: [NAMESPACE], allow: { kinds: ['http.delay', 'http.abort', 'tcp.latency'], limits: { maxDelay: '5s', maxDuration: '1h' } } },
};

/** A policy at the size tenants write when they mean it: 16 HTTP rules and 4 TCP ports. */
export function largePolicy(name: string, selector: Record<string, string>): ChaosPolicy {
  const http: HttpFault[] = Array.from({ length: 16 }, (_, i) => ({
    name: `rule-${i}`,
    match: { port: 8080, path: { regex: `/api/v1/items/${i}/[a-z]+` }, methods: ['GET', 'POST'], headers: { 'x-canary': `c${i}` } },
    delay: { fixed: '200ms', jitter: '50ms', percent: 20 },
    abort: { status: 503, percent: 5, body: 'x'.repeat(512) },
  }));
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'ChaosPolicy',
    metadata: { name, namespace: NAMESPACE, uid: `uid-${name}`, generation: 1, creationTimestamp: new Date().toISOString() },
    spec: {
      selector: { matchLabels: selector },
      duration: '30m',
      http,
      tcp: Array.from({ length: 4 }, (_, i) => ({ port: 5432 + i, host: `db-${i}`, toxics: [{ type: 'latency' as const, latency: 100 }] })),
    },
  };
}

/** The webhook cache's read path (policy-index.ts) over fixed lists. */
function view(policies: readonly ChaosPolicy[]): ClusterView {
  const index = new PolicyIndex();
  const cached = policies.map((p) => index.convertPolicy(p));
  const tenants = [index.convertTenant(neighbourTenant)].flatMap((t) => (t.valid ? [t.tenant] : []));
  const ns: NamespaceInfo = { name: NAMESPACE, labels: { [CHAOS_LABEL]: CHAOS_LABEL_ENABLED } };
  const pods: PodMeta[] = Array.from({ length: 20 }, (_, i) => ({ name: `web-${i}`, namespace: NAMESPACE, labels: { app: `svc-${i}` }, phase: 'Running', injected: true, kernelChaosIds: [] }));
  return {
    namespace: () => ns,
    namespaces: () => [ns],
    tenants: () => [neighbourTenant],
    policies: () => [...policies],
    allPolicies: () => [...policies],
    policy: (_n, name) => policies.find((p) => p.metadata.name === name),
    pods: () => pods,
    admittedPolicies: (namespace): AdmittedPolicies => index.admitted(namespace, () => admittedIn(ns, tenants, cached)),
  };
}

async function reviewMicros(policies: readonly ChaosPolicy[]): Promise<{ p50Us: number; p99Us: number }> {
  const pod = benchPod() as unknown as V1Pod;
  const planner = createPolicyPlanner(view(policies));
  const handler = createMutatePodsHandler({
    injector: createInjector(loadInjectionConfig({}, {})),
    metrics: createMetrics(),
    log: createLogger('bench', 'silent'),
    planFor: (p, ns) => planner.planFor(p, ns),
  });
  const request = (i: number): AdmissionRequest => ({
    uid: `uid-${i}`,
    kind: { group: '', version: 'v1', kind: 'Pod' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    namespace: NAMESPACE,
    operation: 'CREATE',
    userInfo: { username: 'alice' },
    object: structuredClone(pod),
  });
  for (let i = 0; i < 200; i++) await handler(request(i));
  const samples: number[] = [];
  for (let i = 0; i < REVIEWS; i++) {
    const r = request(i);
    const t0 = process.hrtime.bigint();
    await handler(r);
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  samples.sort((a, b) => a - b);
  return { p50Us: round(percentile(samples, 50)), p99Us: round(percentile(samples, 99)) };
}

/** 1 policy (the pod's own) against the same plus 99 aimed at other workloads. */
export async function measureNeighbours(): Promise<{ reviewUsWith1Policy: object; reviewUsWith100Policies: object; ratioP50: number; policyBytes: number }> {
  const labels = (benchPod().metadata.labels ?? {}) as Record<string, string>;
  const own = largePolicy('own', labels);
  const neighbours = Array.from({ length: 99 }, (_, i) => largePolicy(`neighbour-${i}`, { app: `svc-${i}` }));
  // A discarded first pass: the JIT warms up on it, not on whichever case is measured first.
  await reviewMicros([own, ...neighbours]);
  const one = await reviewMicros([own]);
  const hundred = await reviewMicros([own, ...neighbours]);
  return { reviewUsWith1Policy: one, reviewUsWith100Policies: hundred, ratioP50: round(hundred.p50Us / one.p50Us), policyBytes: JSON.stringify(own).length };
}
