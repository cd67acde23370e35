// The real kube-controller-manager, in both modes: it gives every namespace
// its `default` ServiceAccount, fills the aggregated ClusterRoles (admin,
// edit, view — Faultline's tenant roles aggregate into them), publishes
// kube-root-ca.crt, finalises deleted namespaces, runs Deployments and
// ReplicaSets, garbage-collects, and (with a node) manages the node's lifecycle.
import path from 'node:path';
import { get } from './https.ts';
import type { ApiserverPki } from './pki.ts';
import type { ManagedProcess } from './process.ts';
import { startReady } from './wait.ts';

export interface ComponentOptions {
  binary: string;
  dir: string;
  kubeconfig: string;
  /** Its secure (health) port on 127.0.0.1. */
  port: number;
  timeoutMs: number;
  progress?: (line: string) => void;
}

/** The flags both share: the kubeconfig for everything, health on loopback, one instance. */
function commonArgs(opts: ComponentOptions): string[] {
  return [
    `--kubeconfig=${opts.kubeconfig}`,
    `--authentication-kubeconfig=${opts.kubeconfig}`,
    `--authorization-kubeconfig=${opts.kubeconfig}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${opts.port}`,
    // One instance: no Lease to wait for at start.
    '--leader-elect=false',
  ];
}

/** Ready when `path` on its loopback secure port answers 200 (self-signed: nothing to authenticate). */
function probe(opts: ComponentOptions, path: string) {
  return async (signal: AbortSignal) => {
    const res = await get(`https://127.0.0.1:${opts.port}${path}`, { insecureLoopback: true, timeoutMs: 1000, signal });
    return res.status === 200 ? true : `HTTP ${res.status}`;
  };
}

export function startControllerManager(opts: ComponentOptions & { pki: ApiserverPki }): Promise<ManagedProcess> {
  return startReady(
    {
      name: 'kube-controller-manager',
      command: opts.binary,
      args: [
        ...commonArgs(opts),
        `--cert-dir=${path.join(opts.dir, 'kube-controller-manager-certs')}`,
        // Each controller acts as its own ServiceAccount in kube-system, with
        // its bootstrap role, as kubeadm runs it.
        '--use-service-account-credentials=true',
        `--service-account-private-key-file=${opts.pki.saSigningKeyFile}`,
        // Published into every namespace as kube-root-ca.crt: what pods verify the API server with.
        `--root-ca-file=${opts.pki.caFile}`,
      ],
      logFile: path.join(opts.dir, 'kube-controller-manager.log'),
    },
    probe(opts, '/healthz'),
    { what: 'kube-controller-manager /healthz', timeoutMs: opts.timeoutMs, progress: opts.progress, intervalMs: 200 },
  );
}

/** kube-scheduler with its default profile (only started with a node: without one nothing can be scheduled). */
export function startScheduler(opts: ComponentOptions): Promise<ManagedProcess> {
  return startReady(
    {
      name: 'kube-scheduler',
      command: opts.binary,
      args: [...commonArgs(opts), `--cert-dir=${path.join(opts.dir, 'kube-scheduler-certs')}`],
      logFile: path.join(opts.dir, 'kube-scheduler.log'),
    },
    probe(opts, '/readyz'),
    { what: 'kube-scheduler /readyz', timeoutMs: opts.timeoutMs, progress: opts.progress, intervalMs: 200 },
  );
}
