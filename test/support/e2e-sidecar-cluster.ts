// Helpers for the e2e suites that run a real faultline-proxy against the local
// kube-apiserver: tenants and pods set up as a cluster user would, the stored
// (webhook-injected) pod's proxy env, a kubeconfig for a namespace's `default`
// ServiceAccount from a real TokenRequest, and freezing the API server.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse, stringify } from 'yaml';
import type { ControlPlane, KubectlResult, User } from '../../controlplane/index.ts';
import type { ChaosPolicy, ChaosPolicySpec, ChaosTenantSpec } from '../../policies/types.ts';
import type { InitPlan, LiveFaultPlan } from '../../contract/plans.ts';
import { API_GROUP_VERSION, INJECTED_ANNOTATION } from '../../policies/wellknown.ts';
import { PLAN_ENV, PROXY_CONTAINER_NAME } from '../../contract/pod-layout.ts';
import { eventually, getJson, kubectlOk, pod, tenantNamespace, type Container, type Pod } from './e2e-cluster.ts';
import type { V1Pod } from '@kubernetes/client-node';
import { PodProxy } from './netns-proxy.ts';

// Where the sidecar suites have always taken it from.
export { createTenant } from './cluster.ts';

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
  try {
    await eventually(`RoleBinding faultline-sidecar in ${namespace}`, timeoutMs, async () => (await cp.kubectl('admin', ['get', 'rolebinding', 'faultline-sidecar', '-n', namespace])).code === 0, 100);
  } catch (err) {
    throw new Error(`${(err as Error).message}; webhook log:\n${await cp.logTail('webhook')}`);
  }
}

/** Polls the policy (as admin) until `done` holds. */
export async function waitForPolicy(cp: ControlPlane, namespace: string, name: string, what: string, done: (p: ChaosPolicy) => boolean, timeoutMs = 15_000): Promise<ChaosPolicy> {
  try {
    return await eventually(`policy ${namespace}/${name}: ${what}`, timeoutMs, async () => {
      const p = await getJson<ChaosPolicy>(cp, 'admin', ['chaospolicy', name, '-n', namespace]);
      return done(p) ? p : `status ${JSON.stringify(p.status)}`;
    }, 100);
  } catch (err) {
    throw new Error(`${(err as Error).message}\nwebhook log:\n${await cp.logTail('webhook')}`);
  }
}

/**
 * Runs the stored pod as a kubelet would, on this host (PodProxy: a network
 * namespace, `faultline init` and `faultline sidecar` from the pod's own
 * FAULTLINE_PLAN and downward-API env, as its UIDs): the proxy watches its
 * policies through the API server with `kubeconfig` (readable by the proxy's
 * UID), the API server's loopback port forwarded into the pod's loopback so
 * the kubeconfig's address holds there too.
 */
export async function runPod(cp: ControlPlane, stored: Pod, kubeconfig: string): Promise<PodProxy> {
  const plan = proxyPlan(stored).plan;
  assert.ok(plan.wiring.capture, `the webhook's plan captures the pod's traffic: ${JSON.stringify(plan.wiring)}`);
  return PodProxy.start({
    injected: stored as unknown as V1Pod,
    toxiproxy: true,
    livePlan: null,
    proxyArgs: ['--kubeconfig', kubeconfig],
    loopbackForwards: [Number(new URL(cp.apiserverUrl).port)],
  });
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

/**
 * What the suites running a real `faultline sidecar` for injected pods share
 * (sidecar, brakes, guard): a scratch dir and a tenant namespace alice edits,
 * pods created as alice and marked Running, proxies started with the pod's
 * own plan and only its ServiceAccount's token, policies applied from files
 * as alice, timed effects, and the measured lines summed up at the end.
 */
export class SidecarSuite {
  readonly measured: string[] = [];
  readonly sidecars: PodProxy[] = [];
  dir = '';
  ns = '';
  readonly #cp: () => ControlPlane;
  readonly #tag: string;
  #kubeconfig: string | undefined;

  constructor(cp: () => ControlPlane, tag: string) {
    this.#cp = cp;
    this.#tag = tag;
  }

  /** Scratch dir, then a chaos namespace with its tenant (named `tenant`, or after the namespace). */
  async setUp(allow: ChaosTenantSpec['allow'], opts: { tenant?: string } = {}): Promise<void> {
    this.dir = await mkdtemp(path.join(tmpdir(), `faultline-e2e-${this.#tag}-`));
    // The proxies run as their pod's UID and read the kubeconfig from here.
    await chmod(this.dir, 0o755);
    this.ns = await tenantNamespace(this.#cp(), allow, opts.tenant ? { tenant: opts.tenant } : {});
  }

  /** A measured line: echoed at once, repeated in the closing summary. */
  note(line: string): void {
    this.measured.push(line);
    process.stderr.write(`[e2e ${this.#tag}] ${line}\n`);
  }

  /** A ChaosPolicy on pods labelled `labels`, for 10 minutes unless `spec` says otherwise. */
  static policy(labels: Record<string, string>, name: string, spec: Partial<ChaosPolicySpec>): ChaosPolicy {
    return { apiVersion: API_GROUP_VERSION, kind: 'ChaosPolicy', metadata: { name }, spec: { selector: { matchLabels: labels }, duration: '10m', ...spec } };
  }

  /** `kubectl apply -f <file>` as alice, as a tenant would; the result, for denials. */
  async apply(p: ChaosPolicy, fileName = p.metadata.name ?? 'policy'): Promise<KubectlResult> {
    const file = path.join(this.dir, `${fileName}.yaml`);
    await writeFile(file, stringify(p));
    return this.#cp().kubectl('alice', ['apply', '-n', this.ns, '-f', file]);
  }

  /** Creates, as alice, a Running pod `name` whose one container declares `ports`; returns the stored (injected) pod. */
  async createPod(name: string, labels: Record<string, string>, ports: number[]): Promise<Pod> {
    return createRunningPod(this.#cp(), 'alice', this.ns, pod(name, {
      metadata: { labels },
      spec: { containers: [{ name: 'app', image: 'example/app', ports: ports.map((containerPort) => ({ containerPort })) }] },
    }));
  }

  /** `kubectl auth can-i <args>` as the namespace's default ServiceAccount: "yes" or "no". */
  async serviceAccountCan(args: string[]): Promise<string> {
    return (await this.#cp().kubectl('admin', ['auth', 'can-i', ...args, `--as=system:serviceaccount:${this.ns}:default`])).stdout.trim();
  }

  /** Runs the stored pod (`runPod`), its proxy holding only the namespace's ServiceAccount token. */
  async startSidecar(stored: Pod): Promise<PodProxy> {
    this.#kubeconfig ??= await serviceAccountKubeconfig(this.#cp(), this.ns, this.dir);
    const px = await runPod(this.#cp(), stored, this.#kubeconfig);
    this.sidecars.push(px);
    return px;
  }

  /**
   * Polls `effect` (a fresh connection each time: routes are decided per
   * connection) every ~20 ms and returns the ms from `since` to the moment the
   * first response showing the effect arrived; `child`'s plan and log explain a timeout.
   */
  async timeToEffect(child: PodProxy | undefined, what: string, since: number, effect: () => Promise<boolean>, giveUpMs = 10_000): Promise<number> {
    for (;;) {
      if (await effect()) return performance.now() - since;
      if (performance.now() - since > giveUpMs) {
        const plan = await child?.admin<LiveFaultPlan>('/plan').catch(() => undefined);
        throw new Error(`${what}: no effect ${giveUpMs} ms after the command returned; sidecar plan ${JSON.stringify(plan)}\nsidecar log:\n${child?.stdout.slice(-20).join('\n')}`);
      }
      await sleep(20);
    }
  }

  /** Stops the pods (their proxies' ServiceAccount token must have been enough), removes the dir, prints the summary. */
  async tearDown(): Promise<void> {
    const logs = this.sidecars.map((s) => s.stdout.join('\n'));
    // Every pod is closed and the dir removed even if one close fails; the first failure is then rethrown.
    const closed = await Promise.allSettled(this.sidecars.map((s) => s.close()));
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    const failed = closed.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    for (const log of logs) assert.doesNotMatch(log, /watch failed.*(forbidden|Forbidden|403)/, 'the ServiceAccount token was enough');
    if (this.measured.length > 0) process.stderr.write(`[e2e ${this.#tag}] summary:\n  ${this.measured.join('\n  ')}\n`);
  }
}
