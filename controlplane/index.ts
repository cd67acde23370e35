// A local Kubernetes control plane for the e2e tests and `faultline up`, in
// the manner of controller-runtime's envtest: etcd and kube-apiserver as child
// processes on loopback, Faultline installed from manifests/, and the webhook
// running as a child process that the API server calls by URL.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { ADMISSION_CLIENT_NAME, writeAdmissionAuth, type AdmissionAuth } from './admission-auth.ts';
import { startApiserver } from './apiserver.ts';
import { ensureBinaries, type Tool } from './binaries.ts';
import { startControllerManager, startScheduler } from './controller-manager.ts';
import { startEtcd } from './etcd.ts';
import { applyObjects, pointWebhooksAt, renderLocalInstall, waitForCrds } from './install.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { runKubectl, type KubectlOptions, type KubectlResult, type KubectlTarget } from './kubectl.ts';
import { issueKubeletClientCert } from './kubelet-client.ts';
import { Node, NODE_NETWORK } from './node/index.ts';
import { writeApiserverPki, USER_NAMES, type Component, type User } from './pki.ts';
import { freePorts } from '../common/ports.ts';
import type { ManagedProcess } from './process.ts';
import { trackDir, untrackCleanup, untrackDir } from './reaper.ts';
import { startWebhookProcess, writeWebhookTls, type WebhookTls } from './webhook.ts';
import { waitUntil } from './wait.ts';

export { USERS, USER_NAMES, type User } from './pki.ts';
export { MissingImagesError, missingForNode, describeMissing, NODE_NAME, NODE_NETWORK, type Missing } from './node/index.ts';
export type { KubectlResult, KubectlOptions } from './kubectl.ts';

export interface ControlPlaneOptions {
  /** Leave the dir (etcd data, logs, kubeconfigs, certificates) in place after stop(). */
  keep?: boolean;
  /** kube-apiserver's port on 127.0.0.1 (default: a free one). */
  apiserverPort?: number;
  /** Install Faultline (CRDs, roles, webhook configurations) and run the webhook. Default true. */
  faultline?: boolean;
  /**
   * Also run a real node (containerd, kubelet, kube-proxy, CoreDNS, the
   * scheduler; see node/). Needs root and the packages missingForNode() checks;
   * start() throws MissingImagesError if containerd lacks one of `images`.
   */
  node?: { images: readonly string[] };
  /** Bound on each component becoming ready (default 90 s). */
  readyTimeoutMs?: number;
  /** The `faultline` entry the webhook runs (default the TypeScript sources; benchmarks pass dist/, what the image runs). */
  webhookCli?: string;
  /** Progress lines (slow waits, what is starting). Default: stderr. */
  progress?: (line: string) => void;
}

/** How long each start phase took, in milliseconds. */
export interface StartTimings {
  binaries: number;
  etcd: number;
  apiserver: number;
  /** etcd start to kube-apiserver /readyz: the number to compare with envtest. */
  controlPlane: number;
  controllerManager: number;
  faultline: number;
  /** Scheduler + containerd + CoreDNS + kube-proxy + kubelet to Node Ready (0 without a node). */
  node: number;
  total: number;
}

export class ControlPlane {
  /** Temp dir holding everything: logs (*.log), kubeconfigs, certificates, etcd data. */
  readonly dir: string;
  readonly keep: boolean;
  readonly binaries: Record<Tool, string>;
  readonly timings: StartTimings = { binaries: 0, etcd: 0, apiserver: 0, controlPlane: 0, controllerManager: 0, faultline: 0, node: 0, total: 0 };
  apiserverUrl = '';
  /** `<dir>/<user>.kubeconfig` for every user. */
  readonly kubeconfigs = {} as Record<User, string>;
  webhookPort = 0;
  /** The API server's client certificate towards the webhook, and its CA (undefined without Faultline). */
  admissionAuth: AdmissionAuth | undefined;

  #progress: (line: string) => void;
  #readyTimeoutMs: number;
  readonly #webhookCli: string | undefined;
  #processes: ManagedProcess[] = [];
  #webhook: ManagedProcess | undefined;
  #webhookTls: WebhookTls | undefined;
  #node: Node | undefined;
  #stopping: Promise<void> | undefined;

  private constructor(dir: string, binaries: Record<Tool, string>, opts: ControlPlaneOptions) {
    this.dir = dir;
    this.binaries = binaries;
    this.keep = opts.keep ?? false;
    this.#progress = opts.progress ?? ((line) => process.stderr.write(`[controlplane] ${line}\n`));
    this.#readyTimeoutMs = opts.readyTimeoutMs ?? 90_000;
    this.#webhookCli = opts.webhookCli;
  }

  /**
   * Starts etcd, kube-apiserver, kube-controller-manager, (with `node`) the
   * scheduler and the node, and (unless
   * `faultline: false`) Faultline's webhook, returning once all are ready.
   * On failure everything already started is stopped before the error
   * propagates; the error carries the failing component's log tail.
   */
  static async start(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const t0 = performance.now();
    const binaries = await ensureBinaries();
    // Under $TMPDIR (os.tmpdir() honours it).
    const dir = await mkdtemp(path.join(tmpdir(), 'faultline-'));
    // From here on the reaper removes the dir (and kills what we start) if
    // this process dies before stop() does it properly.
    if (!opts.keep) trackDir(dir);
    const cp = new ControlPlane(dir, binaries, opts);
    cp.timings.binaries = performance.now() - t0;
    try {
      await cp.#start(opts);
    } catch (err) {
      await cp.stop();
      throw err;
    }
    cp.timings.total = performance.now() - t0;
    return cp;
  }

  async #start(opts: ControlPlaneOptions): Promise<void> {
    const ports = await freePorts(13);
    const [etcdClient, etcdPeer, apiserverPort, webhookPort, kcmPort, schedulerPort] = ports;
    const [kubeletPort, kubeletHealthz, proxyHealthz, proxyMetrics, corednsReady, containerdStream] = ports.slice(6);
    this.webhookPort = webhookPort!;
    const faultline = opts.faultline ?? true;
    // The bridge first: kube-apiserver listens on the node IP.
    if (opts.node) this.#node = await Node.prepare(this.dir, this.#progress);
    const pkiDir = path.join(this.dir, 'pki');
    const [pki, webhookTls, admissionAuth] = await Promise.all([
      mkdir(pkiDir).then(() => writeApiserverPki(pkiDir)),
      faultline ? writeWebhookTls(path.join(this.dir, 'webhook-certs')) : undefined,
      // The API server authenticates to the webhook with a client certificate, as docs/security.md sets up.
      faultline ? mkdir(path.join(this.dir, 'admission-auth')).then(() => writeAdmissionAuth(path.join(this.dir, 'admission-auth'), `127.0.0.1:${webhookPort}`)) : undefined,
    ]);
    this.#webhookTls = webhookTls;
    this.admissionAuth = admissionAuth;
    const kubeletClient = this.#node ? await issueKubeletClientCert(pkiDir, pki) : undefined;

    const t0 = performance.now();
    const etcd = await startEtcd({
      binary: this.binaries.etcd,
      dir: this.dir,
      clientPort: etcdClient!,
      peerPort: etcdPeer!,
      timeoutMs: this.#readyTimeoutMs,
      progress: this.#progress,
    });
    this.#processes.push(etcd.process);
    const t1 = performance.now();
    this.timings.etcd = t1 - t0;

    const apiserver = await startApiserver({
      binary: this.binaries['kube-apiserver'],
      dir: this.dir,
      port: opts.apiserverPort ?? apiserverPort!,
      etcdUrl: etcd.url,
      pki,
      ...(this.#node ? { address: NODE_NETWORK.gateway, kubeletClient } : {}),
      ...(admissionAuth ? { admissionConfigFile: admissionAuth.configFile } : {}),
      timeoutMs: this.#readyTimeoutMs,
      progress: this.#progress,
    });
    this.#processes.push(apiserver.process);
    this.apiserverUrl = apiserver.url;
    const t2 = performance.now();
    this.timings.apiserver = t2 - t1;
    this.timings.controlPlane = t2 - t0;

    for (const user of USER_NAMES) {
      this.kubeconfigs[user] = await writeKubeconfig(this.dir, user, apiserver.url, pki.caPem, pki.tokens[user]);
    }
    const componentKubeconfig = (c: Component) => writeKubeconfig(this.dir, c, apiserver.url, pki.caPem, pki.componentTokens[c]);
    const common = { dir: this.dir, timeoutMs: this.#readyTimeoutMs, progress: this.#progress };
    this.#processes.push(
      await startControllerManager({
        ...common,
        binary: this.binaries['kube-controller-manager'],
        kubeconfig: await componentKubeconfig('kube-controller-manager'),
        pki,
        port: kcmPort!,
      }),
    );
    await waitForControllers(this.client('admin'), this.#readyTimeoutMs, this.#progress);
    const t3 = performance.now();
    this.timings.controllerManager = t3 - t2;

    if (webhookTls) {
      // Order matters: CRDs Established before the webhook starts (its
      // informers list policies and tenants), and the webhook ready before
      // its configurations exist, so no pod is ever admitted while the
      // configuration points at nothing.
      const admin = this.#kubectlTarget('admin');
      const install = await renderLocalInstall(admin);
      await applyObjects(admin, install.definitions);
      await waitForCrds(admin, install.definitions, Math.ceil(this.#readyTimeoutMs / 1000));
      await this.startWebhook();
      await applyObjects(admin, pointWebhooksAt(install.webhookConfigurations, `https://127.0.0.1:${this.webhookPort}`, webhookTls.caPem));
      this.timings.faultline = performance.now() - t3;
    }

    if (this.#node) {
      const t4 = performance.now();
      this.#processes.push(
        await startScheduler({ ...common, binary: this.binaries['kube-scheduler'], kubeconfig: await componentKubeconfig('kube-scheduler'), port: schedulerPort! }),
      );
      await this.#node.start({
        binaries: this.binaries,
        kubeconfigs: {
          kubelet: await componentKubeconfig('kubelet'),
          'kube-proxy': await componentKubeconfig('kube-proxy'),
          coredns: await componentKubeconfig('coredns'),
        },
        admin: this.client('admin'),
        adminKubectl: this.#kubectlTarget('admin'),
        caFile: pki.caFile,
        ports: { kubelet: kubeletPort!, kubeletHealthz: kubeletHealthz!, proxyHealthz: proxyHealthz!, proxyMetrics: proxyMetrics!, corednsReady: corednsReady!, containerdStream: containerdStream! },
        images: opts.node!.images,
        timeoutMs: this.#readyTimeoutMs,
        progress: this.#progress,
      });
      this.timings.node = performance.now() - t4;
    }
  }

  /** The node, when started with `node` (its layout, processes, containerd socket). */
  get node(): Node | undefined {
    return this.#node;
  }

  /** Runs the built kubectl as `user` (their kubeconfig only). Never throws for a non-zero exit. */
  kubectl(user: User, args: readonly string[], opts: KubectlOptions = {}): Promise<KubectlResult> {
    return runKubectl(this.#kubectlTarget(user), args, opts);
  }

  /** A client-node KubeConfig authenticated as `user`. */
  client(user: User): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.kubeconfigs[user]);
    return kc;
  }

  /** PIDs (= process group ids) of the running components, by name. */
  get pids(): Record<string, number> {
    return Object.fromEntries(this.#allProcesses().filter((p) => p.running).map((p) => [p.name, p.pid]));
  }

  #allProcesses(): ManagedProcess[] {
    return [...this.#processes, ...(this.#node ? this.#node.processes.values() : []), ...(this.#webhook ? [this.#webhook] : [])];
  }

  get webhookRunning(): boolean {
    return this.#webhook?.running ?? false;
  }

  /** Starts the webhook (again) on the same port; resolves when its /readyz is 200. */
  async startWebhook(): Promise<void> {
    if (!this.#webhookTls) throw new Error('this control plane was started without Faultline (faultline: false)');
    if (this.webhookRunning) return;
    this.#webhook = await startWebhookProcess({
      tls: this.#webhookTls,
      port: this.webhookPort,
      kubeconfig: this.kubeconfigs.admin,
      dir: this.dir,
      ...(this.admissionAuth ? { clientCaFile: this.admissionAuth.clientCaFile, clientName: ADMISSION_CLIENT_NAME } : {}),
      timeoutMs: this.#readyTimeoutMs,
      progress: this.#progress,
      ...(this.#webhookCli ? { cli: this.#webhookCli } : {}),
    });
  }

  /** Stops the webhook process (SIGTERM, then SIGKILL); its configurations stay registered. */
  async stopWebhook(): Promise<void> {
    await this.#webhook?.stop();
  }

  /**
   * Freezes the webhook with SIGSTOP: connections are still accepted by the
   * kernel but never answered, the way a hung webhook looks to the API server
   * (which then waits out timeoutSeconds). `resumeWebhook` undoes it.
   */
  suspendWebhook(): void {
    this.#signalWebhook('SIGSTOP');
  }
  resumeWebhook(): void {
    this.#signalWebhook('SIGCONT');
  }

  #signalWebhook(signal: NodeJS.Signals): void {
    if (!this.#webhook?.running) throw new Error('the webhook is not running');
    process.kill(-this.#webhook.pid, signal);
  }

  /**
   * Resolves with a description ("kube-apiserver exited with code 255; see
   * <log>") when any component or the current webhook process exits
   * without being asked to (stop(), stopWebhook()); never resolves otherwise.
   */
  unexpectedExit(): Promise<string> {
    return Promise.race(
      this.#allProcesses().map(async (p) => {
        await p.exited;
        if (p.stopRequested) return new Promise<string>(() => undefined);
        return `${p.name} ${p.describeStatus()}; see ${p.logFile}`;
      }),
    );
  }

  /** The tail of a component's log, for assertion messages. */
  async logTail(component: string, lines = 40): Promise<string> {
    const proc = this.#allProcesses().find((p) => p.name === component);
    return proc ? proc.logTail(lines) : '';
  }

  /**
   * Stops everything in reverse start order — webhook, the node (its full
   * teardown: node/teardown.ts), scheduler, controller manager, kube-apiserver
   * (it needs etcd while shutting down), etcd — and removes the dir unless
   * `keep`. Idempotent; safe to call concurrently. Throws (after stopping
   * everything else) if the node's teardown failed.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await this.#webhook?.stop();
      let nodeError: unknown;
      if (this.#node) {
        try {
          for (const note of await this.#node.stop()) this.#progress(`node teardown: ${note}`);
          untrackCleanup(path.join(this.#node.layout.dir, 'teardown.sh'));
        } catch (err) {
          nodeError = err;
        }
      }
      for (const proc of [...this.#processes].reverse()) await proc.stop();
      if (nodeError) throw nodeError;
      if (!this.keep) {
        await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
        untrackDir(this.dir);
      }
    })();
    return this.#stopping;
  }

  #kubectlTarget(user: User): KubectlTarget {
    return { binary: this.binaries.kubectl, kubeconfig: this.kubeconfigs[user], cacheDir: path.join(this.dir, 'kubectl-cache') };
  }
}

/**
 * What the e2e tests and the ServiceAccount admission plugin rely on from
 * kube-controller-manager: the `default` ServiceAccount and the aggregated
 * `edit` ClusterRole (tenants are bound to it).
 */
async function waitForControllers(kc: KubeConfig, timeoutMs: number, progress: (line: string) => void): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  await waitUntil(
    async () => {
      const sa = await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' }).catch(() => undefined);
      if (!sa) return 'no default ServiceAccount yet';
      const edit = await rbac.readClusterRole({ name: 'edit' });
      return (edit.rules?.length ?? 0) > 0 ? true : 'ClusterRole edit not aggregated yet';
    },
    { what: 'kube-controller-manager (default ServiceAccount, aggregated roles)', timeoutMs, progress, intervalMs: 100 },
  );
}

/** Shorthand for `ControlPlane.start(opts)`. */
export function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  return ControlPlane.start(opts);
}
