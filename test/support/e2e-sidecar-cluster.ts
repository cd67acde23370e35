// Helpers for the e2e suites that run a real faultline-proxy against the local
// kube-apiserver: tenants and pods set up as a cluster user would, the stored
// (webhook-injected) pod's proxy env, a kubeconfig for a namespace's `default`
// ServiceAccount from a real TokenRequest, and freezing the API server.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse, stringify } from 'yaml';
import type { ControlPlane, User } from '../../controlplane/index.ts';
import type { ChaosPolicy, ChaosTenant, ChaosTenantSpec } from '../../policies/types.ts';
import type { InitPlan } from '../../contract/plans.ts';
import { freePorts } from '../../common/ports.ts';
import { API_GROUP_VERSION, INJECTED_ANNOTATION } from '../../policies/wellknown.ts';
import { PLAN_ENV, PROXY_CONTAINER_NAME } from '../../contract/pod-layout.ts';
import { getJson, kubectlOk, type Container, type Pod } from './e2e-cluster.ts';

/** Creates (as admin) a ChaosTenant owning `namespace`, authored by group `group`. */
export async function createTenant(cp: ControlPlane, name: string, namespace: string, group: string, allow: ChaosTenantSpec['allow']): Promise<void> {
  const tenant: ChaosTenant = {
    apiVersion: API_GROUP_VERSION,
    kind: 'ChaosTenant',
    metadata: { name },
    spec: { namespaces: [namespace], subjects: [{ kind: 'Group', name: group }], allow },
  };
  await kubectlOk(cp, 'admin', ['create', '-f', '-'], tenant);
}

/**
 * Creates `pod` as `user` through the API server (the real webhook injects it),
 * then marks it Running as a kubelet would (there is none): the reconciler only
 * targets running pods. Returns the stored pod.
 */
export async function createRunningPod(cp: ControlPlane, user: User, namespace: string, pod: Pod): Promise<Pod> {
  const stored = JSON.parse(await kubectlOk(cp, user, ['create', '-o', 'json', '-n', namespace, '-f', '-'], pod)) as Pod;
  assert.ok(stored.metadata.annotations?.[INJECTED_ANNOTATION], `pod ${pod.metadata.name} was injected by the webhook`);
  await markRunning(cp, namespace, pod.metadata.name);
  return stored;
}

export async function markRunning(cp: ControlPlane, namespace: string, name: string): Promise<void> {
  await kubectlOk(cp, 'admin', ['patch', 'pod', name, '-n', namespace, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { phase: 'Running' } })]);
}

/** The stored pod's faultline-proxy container (a native sidecar in initContainers). */
export function proxyContainer(stored: Pod): Container & { env?: Array<{ name: string; value?: string }> } {
  const c = [...(stored.spec.initContainers ?? []), ...stored.spec.containers].find((x) => x.name === PROXY_CONTAINER_NAME);
  assert.ok(c, `stored pod ${stored.metadata.name} has a ${PROXY_CONTAINER_NAME} container`);
  return c as Container & { env?: Array<{ name: string; value?: string }> };
}

/** FAULTLINE_PLAN exactly as the webhook rendered it into the proxy container, and parsed. */
export function proxyPlan(stored: Pod): { raw: string; plan: InitPlan } {
  const raw = proxyContainer(stored).env?.find((e) => e.name === PLAN_ENV)?.value;
  assert.ok(raw, `${PROXY_CONTAINER_NAME} has ${PLAN_ENV}`);
  return { raw, plan: JSON.parse(raw) as InitPlan };
}

/**
 * A kubeconfig for `system:serviceaccount:<namespace>:default`, with a token
 * from the TokenRequest API (`kubectl create token`), the cluster's CA and
 * nothing else: whatever this file can do is what the namespace's RBAC grants
 * its service accounts.
 */
export async function serviceAccountKubeconfig(cp: ControlPlane, namespace: string, dir: string): Promise<string> {
  const token = (await kubectlOk(cp, 'admin', ['create', 'token', 'default', '-n', namespace, '--duration=1h'])).trim();
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT');
  const admin = parse(await readFile(cp.kubeconfigs.admin, 'utf8')) as { clusters: Array<{ cluster: Record<string, string> }> };
  const ca = admin.clusters[0]!.cluster['certificate-authority-data']!;
  const file = path.join(dir, `sa-${namespace}.kubeconfig`);
  const user = `system:serviceaccount:${namespace}:default`;
  await writeFile(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'faultline', cluster: { server: cp.apiserverUrl, 'certificate-authority-data': ca } }],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: 'sa', context: { cluster: 'faultline', user, namespace } }],
      'current-context': 'sa',
    }),
    { mode: 0o644 },
  );
  return file;
}

/** Waits for the reconciler's RoleBinding faultline-sidecar in `namespace`. */
export async function waitForSidecarBinding(cp: ControlPlane, namespace: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await cp.kubectl('admin', ['get', 'rolebinding', 'faultline-sidecar', '-n', namespace])).code !== 0) {
    if (Date.now() > deadline) throw new Error(`no RoleBinding faultline-sidecar in ${namespace} after ${timeoutMs} ms; webhook log:\n${await cp.logTail('webhook')}`);
    await sleep(100);
  }
}

/** Polls the policy (as admin) until `done` holds. */
export async function waitForPolicy(cp: ControlPlane, namespace: string, name: string, what: string, done: (p: ChaosPolicy) => boolean, timeoutMs = 15_000): Promise<ChaosPolicy> {
  const deadline = Date.now() + timeoutMs;
  let last: ChaosPolicy | undefined;
  while (Date.now() < deadline) {
    last = await getJson<ChaosPolicy>(cp, 'admin', ['chaospolicy', name, '-n', namespace]);
    if (done(last)) return last;
    await sleep(100);
  }
  throw new Error(`policy ${namespace}/${name}: ${what} not reached within ${timeoutMs} ms; status: ${JSON.stringify(last?.status)}\nwebhook log:\n${await cp.logTail('webhook')}`);
}

/**
 * The webhook's plan as a proxy on this host can run it. In a pod the plan
 * captures every connection (nft + SO_ORIGINAL_DST, netns suites); here there
 * is no pod network namespace, so the same plan gets one fixed listener per
 * app port on free ports instead, everything else (kernel plan, UID, policy
 * source) as the webhook rendered it.
 */
export async function hostPlan(plan: InitPlan, appPorts: readonly number[]): Promise<{ raw: string; plan: InitPlan; listenerOf: (port: number) => number }> {
  assert.ok(plan.wiring.capture, `the webhook's plan captures the pod's traffic: ${JSON.stringify(plan.wiring)}`);
  const listen = await freePorts(appPorts.length);
  const { capture: _capture, ...wiring } = plan.wiring;
  const host: InitPlan = { ...plan, wiring: { ...wiring, inbound: appPorts.map((port, i) => ({ port, listenPort: listen[i]! })) } };
  return {
    raw: JSON.stringify(host),
    plan: host,
    listenerOf: (port) => {
      const w = host.wiring.inbound.find((x) => x.port === port);
      assert.ok(w, `app port ${port} has a listener`);
      return w.listenPort;
    },
  };
}

/**
 * Freezes kube-apiserver (SIGSTOP to its process group): connections stay
 * open and are never answered, the way an unreachable control plane looks to
 * a watch. Always pair with `resumeApiserver` in a finally.
 */
export function suspendApiserver(cp: ControlPlane): void {
  signalApiserver(cp, 'SIGSTOP');
}
export function resumeApiserver(cp: ControlPlane): void {
  signalApiserver(cp, 'SIGCONT');
}
function signalApiserver(cp: ControlPlane, signal: NodeJS.Signals): void {
  const pid = cp.pids['kube-apiserver'];
  if (pid === undefined) throw new Error('kube-apiserver is not running');
  process.kill(-pid, signal);
}
