// Pod specs for the netns tests, injected by the webhook's real renderer
// (webhook/inject.ts) so the simulator runs exactly the containers, env and
// FAULTLINE_PLAN a cluster would get.

import type { V1Container, V1Pod } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import type { KernelFaultPlan } from '../../contract/plans.ts';
import { loadInjectionConfig } from '../../webhook/injection-config.ts';
import { createInjector } from '../../webhook/inject.ts';
import { repoRoot } from './netns-paths.ts';

export const NODE = `${repoRoot}/node_modules/.bin/node`;

export interface AppPodOptions {
  /** Ports the app serves and declares (containerPorts). */
  ports: number[];
  /** Ports the app serves without declaring them (capture takes them all the same). */
  undeclaredPorts?: number[];
  /** Ports serving h2c (HTTP/2 prior knowledge), declared. */
  h2Ports?: number[];
  /** A port the kubelet probes (readiness and liveness httpGet), served and declared like the rest. */
  probePort?: number;
  /** Pod annotations (capture exclusions). */
  annotations?: Record<string, string>;
  /** emptyDir volumes: name → mount path in the app container. */
  volumes?: Record<string, string>;
  runAsUser?: number;
}

export function appPod(o: AppPodOptions): V1Pod {
  const declared = [...o.ports, ...(o.probePort ? [o.probePort] : []), ...(o.h2Ports ?? [])];
  const app: V1Container = {
    name: 'app',
    image: 'example/app',
    command: [NODE, `${repoRoot}/test/support/netns-app.ts`, ...[...o.ports, ...(o.probePort ? [o.probePort] : []), ...(o.undeclaredPorts ?? [])].map(String), ...(o.h2Ports ?? []).map((p) => `h2:${p}`)],
    ports: declared.map((containerPort) => ({ containerPort })),
    volumeMounts: Object.entries(o.volumes ?? {}).map(([name, mountPath]) => ({ name, mountPath })),
  };
  if (o.probePort) {
    app.readinessProbe = { httpGet: { path: '/ready', port: o.probePort } };
    app.livenessProbe = { httpGet: { path: '/live', port: o.probePort } };
  }
  if (o.runAsUser !== undefined) app.securityContext = { runAsUser: o.runAsUser, runAsGroup: o.runAsUser };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'checkout-7d9f',
      namespace: 'shop',
      uid: '0b6f7c1e-1111-4222-8333-444455556666',
      annotations: o.annotations ?? {},
    },
    spec: {
      containers: [app],
      volumes: Object.keys(o.volumes ?? {}).map((name) => ({ name, emptyDir: {} })),
    },
  };
}

/** The pod as the mutating webhook returns it, with FAULTLINE_PLAN carrying `kernel`. */
export function injectedPod(pod: V1Pod, kernel: KernelFaultPlan = { io: [] }): V1Pod {
  const result = createInjector(loadInjectionConfig({}, {})).render(pod, { name: pod.metadata!.namespace! }, kernel);
  if (!result.injected) throw new Error(`the webhook would not inject this pod: ${result.reason}: ${result.message}`);
  return fastJsonPatch.applyPatch(structuredClone(pod), result.patch, true, false).newDocument;
}
