// Shared fixtures for the e2e suites: one local control plane per mocha
// process (started by the first suite that asks, stopped by a root `after`
// hook) and pods; fresh namespaces and kubectl-as-a-user come from cluster.ts.
import { setTimeout as sleep } from 'node:timers/promises';
import { startControlPlane, type ControlPlane, type KubectlResult } from '../../controlplane/index.ts';
import { INJECTED_ANNOTATION } from '../../policies/wellknown.ts';
import { freshNamespace } from './cluster.ts';

// The e2e suites' share of the helpers every suite on a control plane uses.
export { createTenant, eventually, freshNamespace, getJson, kubectlOk, tenantNamespace } from './cluster.ts';

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
