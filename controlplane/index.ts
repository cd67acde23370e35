// A local Kubernetes control plane for the e2e tests and `faultline up`, in
// the manner of controller-runtime's envtest: etcd and kube-apiserver as child
// processes on loopback, Faultline installed from manifests/, and the webhook
// running as a child process that the API server calls by URL.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { ADMISSION_CLIENT_NAME, writeAdmissionAuth, type AdmissionAuth } from './admission-auth.ts';
import { startApiserver } from './apiserver.ts';
import { ensureBinaries, type Tool } from './binaries.ts';
import { startControllers, type Controllers } from './controllers.ts';
import { startEtcd } from './etcd.ts';
import { applyObjects, pointWebhooksAt, renderLocalInstall, waitForCrds } from './install.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { runKubectl, type KubectlOptions, type KubectlResult, type KubectlTarget } from './kubectl.ts';
import { writeApiserverPki, USER_NAMES, type User } from './pki.ts';
import { freePorts } from './ports.ts';
import type { ManagedProcess } from './process.ts';
import { trackDir, untrackDir } from './reaper.ts';
import { startWebhookProcess, writeWebhookTls, type WebhookTls } from './webhook.ts';
import { errorText } from './wait.ts';

export { USERS, USER_NAMES, type User } from './pki.ts';
export type { KubectlResult, KubectlOptions } from './kubectl.ts';

export interface ControlPlaneOptions {
  /** Leave the dir (etcd data, logs, kubeconfigs, certificates) in place after stop(). */
  keep?: boolean;
  /** kube-apiserver's port on 127.0.0.1 (default: a free one). */
  apiserverPort?: number;
  /** Install Faultline (CRDs, roles, webhook configurations) and run the webhook. Default true. */
  faultline?: boolean;
  /** Bound on each component becoming ready (default 90 s). */
  readyTimeoutMs?: number;
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
  faultline: number;
  total: number;
}

export class ControlPlane {
  /** Temp dir holding everything: logs (*.log), kubeconfigs, certificates, etcd data. */
  readonly dir: string;
  readonly keep: boolean;
  readonly binaries: Record<Tool, string>;
  readonly timings: StartTimings = { binaries: 0, etcd: 0, apiserver: 0, controlPlane: 0, faultline: 0, total: 0 };
  apiserverUrl = '';
  /** `<dir>/<user>.kubeconfig` for every user. */
  readonly kubeconfigs = {} as Record<User, string>;
  webhookPort = 0;
  /** The API server's client certificate towards the webhook, and its CA (undefined without Faultline). */
  admissionAuth: AdmissionAuth | undefined;

  #progress: (line: string) => void;
  #readyTimeoutMs: number;
  #processes: ManagedProcess[] = [];
  #webhook: ManagedProcess | undefined;
  #webhookTls: WebhookTls | undefined;
  #controllers: Controllers | undefined;
  #stopping: Promise<void> | undefined;

  private constructor(dir: string, binaries: Record<Tool, string>, opts: ControlPlaneOptions) {
    this.dir = dir;
    this.binaries = binaries;
    this.keep = opts.keep ?? false;
    this.#progress = opts.progress ?? ((line) => process.stderr.write(`[controlplane] ${line}\n`));
    this.#readyTimeoutMs = opts.readyTimeoutMs ?? 90_000;
  }

  /**
   * Starts etcd, kube-apiserver, the stand-in controllers and (unless
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
    const [etcdClient, etcdPeer, apiserverPort, webhookPort] = await freePorts(4);
    this.webhookPort = webhookPort!;
    const faultline = opts.faultline ?? true;
    const [pki, webhookTls, admissionAuth] = await Promise.all([
      mkdir(path.join(this.dir, 'pki')).then(() => writeApiserverPki(path.join(this.dir, 'pki'))),
      faultline ? writeWebhookTls(path.join(this.dir, 'webhook-certs')) : undefined,
      // The API server authenticates to the webhook with a client certificate, as docs/security.md sets up.
      faultline ? mkdir(path.join(this.dir, 'admission-auth')).then(() => writeAdmissionAuth(path.join(this.dir, 'admission-auth'), `127.0.0.1:${webhookPort}`)) : undefined,
    ]);
    this.#webhookTls = webhookTls;
    this.admissionAuth = admissionAuth;

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
    this.#controllers = await startControllers(this.client('admin'), (controller, err) =>
      this.#progress(`${controller} controller: ${errorText(err)}`),
    );

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
      this.timings.faultline = performance.now() - t2;
    }
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
    const running = [...this.#processes, ...(this.#webhook ? [this.#webhook] : [])].filter((p) => p.running);
    return Object.fromEntries(running.map((p) => [p.name, p.pid]));
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
   * <log>") when etcd, kube-apiserver or the current webhook process exits
   * without being asked to (stop(), stopWebhook()); never resolves otherwise.
   */
  unexpectedExit(): Promise<string> {
    const procs = [...this.#processes, ...(this.#webhook ? [this.#webhook] : [])];
    return Promise.race(
      procs.map(async (p) => {
        await p.exited;
        if (p.stopRequested) return new Promise<string>(() => undefined);
        return `${p.name} ${p.describeStatus()}; see ${p.logFile}`;
      }),
    );
  }

  /** The tail of a component's log, for assertion messages. */
  async logTail(component: 'etcd' | 'kube-apiserver' | 'webhook', lines = 40): Promise<string> {
    const proc = component === 'webhook' ? this.#webhook : this.#processes.find((p) => p.name === component);
    return proc ? proc.logTail(lines) : '';
  }

  /**
   * Stops everything in reverse start order — webhook, kube-apiserver (it
   * needs etcd while shutting down), etcd — and removes the dir unless
   * `keep`. Idempotent; safe to call concurrently.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await this.#controllers?.stop().catch(() => undefined);
      await this.#webhook?.stop();
      for (const proc of [...this.#processes].reverse()) await proc.stop();
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

/** Shorthand for `ControlPlane.start(opts)`. */
export function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  return ControlPlane.start(opts);
}
