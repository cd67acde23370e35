// Shared fixtures for the e2e suites: one local control plane per mocha
// process (started by the first suite that asks, stopped by a root `after`
// hook), fresh namespaces per test, and kubectl-as-a-user helpers.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { startControlPlane, type ControlPlane, type KubectlResult, type User } from '../../controlplane/index.ts';
import { check } from '../../controlplane/kubectl.ts';
import { CHAOS_LABEL, CHAOS_LABEL_ENABLED, INJECTED_ANNOTATION } from '../../policies/wellknown.ts';

let shared: Promise<ControlPlane> | undefined;

/**
 * Registers a `before` hook in the calling suite that provides the shared
 * control plane, and returns a getter for it. Start-up failures fail that
 * hook (with the failing component's log), not a confusing first test.
 */
export function useControlPlane(): () => ControlPlane {
  let cp: ControlPlane | undefined;
  before(async function () {
    this.timeout(240_000);
    shared ??= start();
    cp = await shared;
  });
  return () => {
    if (!cp) throw new Error('the control plane is not started (is useControlPlane() called inside a describe?)');
    return cp;
  };
}

// A root-level hook (this module is first evaluated while mocha loads a test
// file, outside any describe): runs once, after every suite of the process.
after(async function () {
  this.timeout(60_000);
  const cp = await shared?.catch(() => undefined);
  await cp?.stop();
});

async function start(): Promise<ControlPlane> {
  // FAULTLINE_E2E_KEEP=1 keeps the logs, etcd data and kubeconfigs for a post-mortem.
  const cp = await startControlPlane({ keep: process.env.FAULTLINE_E2E_KEEP === '1' });
  const t = cp.timings;
  process.stderr.write(
    `[e2e] control plane ready in ${s(t.total)} (etcd ${s(t.etcd)}, kube-apiserver ${s(t.apiserver)}, faultline install + webhook ${s(t.faultline)}); logs in ${cp.dir}\n`,
  );
  try {
    await waitForInjection(cp);
  } catch (err) {
    await cp.stop();
    throw err;
  }
  return cp;
}

function s(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/**
 * The API server learns about webhook configurations through an informer, so
 * a configuration created a moment ago may not be called yet. Wait until a
 * server-side dry run in a chaos namespace comes back injected: from then on
 * every test sees the webhook, and a broken chain fails here, once, clearly.
 */
async function waitForInjection(cp: ControlPlane): Promise<void> {
  const ns = await freshNamespace(cp, { chaos: true });
  const deadline = Date.now() + 30_000;
  let last: KubectlResult | undefined;
  while (Date.now() < deadline) {
    last = await cp.kubectl('admin', ['create', '--dry-run=server', '-o', 'json', '-n', ns, '-f', '-'], { input: JSON.stringify(pod('probe')) });
    if (last.code === 0 && (JSON.parse(last.stdout) as Pod).metadata.annotations?.[INJECTED_ANNOTATION]) return;
    await sleep(200);
  }
  throw new Error(
    `the API server never returned an injected pod within 30 s (last kubectl: exit ${last?.code}, ${last?.stderr.trim()}); webhook log:\n${await cp.logTail('webhook')}`,
  );
}

export interface NamespaceOptions {
  /** Label the namespace faultline.dev/chaos=enabled. */
  chaos?: boolean;
  labels?: Record<string, string>;
  /** Bind this user to the built-in `edit` ClusterRole in the namespace (a tenant's usual rights). */
  editor?: User;
}

let namespaceCounter = 0;

/**
 * Creates a namespace no other test uses, as the cluster admin, and waits
 * for its `default` ServiceAccount (pods need it; the control plane's
 * ServiceAccount controller creates it asynchronously, as in a real cluster).
 * Namespaces are not deleted: the cluster is discarded with the run.
 */
export async function freshNamespace(cp: ControlPlane, opts: NamespaceOptions = {}): Promise<string> {
  const name = `e2e-${++namespaceCounter}-${randomBytes(3).toString('hex')}`;
  const labels = { ...opts.labels, ...(opts.chaos ? { [CHAOS_LABEL]: CHAOS_LABEL_ENABLED } : {}) };
  await kubectlOk(cp, 'admin', ['create', '-f', '-'], { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
  if (opts.editor) {
    await kubectlOk(cp, 'admin', ['create', 'rolebinding', `${opts.editor}-edit`, '--clusterrole=edit', `--user=${opts.editor}`, '-n', name]);
  }
  const deadline = Date.now() + 15_000;
  while ((await cp.kubectl('admin', ['get', 'serviceaccount', 'default', '-n', name])).code !== 0) {
    if (Date.now() > deadline) throw new Error(`namespace ${name} has no default ServiceAccount after 15 s`);
    await sleep(50);
  }
  return name;
}

/**
 * kubectl as `user`; an object given as `input` is sent as JSON (for `-f -`).
 * Throws, with kubectl's stderr, unless it exits 0; returns stdout.
 */
export async function kubectlOk(cp: ControlPlane, user: User, args: readonly string[], input?: object): Promise<string> {
  return check(await cp.kubectl(user, args, input ? { input: JSON.stringify(input) } : {}), `kubectl ${args.join(' ')} (as ${user})`);
}

/** `kubectl get <args> -o json` as `user`, parsed. */
export async function getJson<T>(cp: ControlPlane, user: User, args: readonly string[]): Promise<T> {
  return JSON.parse(await kubectlOk(cp, user, ['get', ...args, '-o', 'json'])) as T;
}

// ------------------------------------------------------------------ pods

export interface Container {
  name: string;
  image: string;
  restartPolicy?: string;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  [key: string]: unknown;
}

export interface Pod {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { containers: Container[]; initContainers?: Container[]; [key: string]: unknown };
}

/** A minimal Pod; `spec` and `metadata` fields given are merged over the defaults. */
export function pod(name: string, extra: { metadata?: Partial<Pod['metadata']>; spec?: Partial<Pod['spec']> } = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, ...extra.metadata },
    spec: { containers: [{ name: 'app', image: 'nginx:1.27' }], ...extra.spec },
  };
}

/** The names of a stored pod's init containers and containers, in order. */
export function containerNames(p: Pod): { init: string[]; main: string[] } {
  return { init: (p.spec.initContainers ?? []).map((c) => c.name), main: p.spec.containers.map((c) => c.name) };
}
