// A real single node beside the control plane: containerd + runc + CNI from
// Debian, the kubelet, kube-proxy and CoreDNS (host processes), on a private
// bridge. Two phases, because the API server listens on the node IP:
// prepareNode() (lock, host baseline, bridge, firewall) runs before etcd, and
// node.start() once the API server and kube-controller-manager are up.
import { access, chmod, mkdir, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KubeConfig } from '@kubernetes/client-node';
import { CoreV1Api } from '@kubernetes/client-node';
import type { Tool } from '../binaries.ts';
import { runKubectl, check, type KubectlTarget } from '../kubectl.ts';
import type { ManagedProcess } from '../process.ts';
import { trackCleanup } from '../reaper.ts';
import { waitUntil } from '../wait.ts';
import { cniConflist, CRI_NAMESPACE, NODE_NAME, NODE_NETWORK, type NodeLayout } from './config.ts';
import { startContainerd, startCoredns, startKubelet, startKubeProxy } from './components.ts';
import { CriClient } from './cri.ts';
import { applyNodeFirewall, createBridge, createCgroupRoot, criNetnsNames, must, netnsDirMounted, readSysctls, run, writeSysctl } from './host.ts';
import { CNI_BIN_DIR, HOST_TOOLS } from './requirements.ts';
import { acquireLock, LOCK_FILE, teardownNode, writeState, type NodeProcessName, type NodeState } from './teardown.ts';

export { missingForNode, describeMissing, type Missing } from './requirements.ts';
export { NODE_NAME, NODE_NETWORK } from './config.ts';

const TEARDOWN_CLI = fileURLToPath(new URL('./teardown-cli.ts', import.meta.url));
const LOAD_SCRIPT = fileURLToPath(new URL('../../hack/images/load.sh', import.meta.url));

/** containerd's root (content store + snapshots): kept between runs so loaded images stay loaded. */
export function containerdRoot(): string {
  return process.env.FAULTLINE_CONTAINERD_ROOT ?? path.join(homedir(), '.cache', 'faultline', 'containerd');
}

/** Images the node needs but does not have: thrown by start() so `up` can fall back and say so. */
export class MissingImagesError extends Error {
  readonly images: string[];
  constructor(images: string[]) {
    super(`the node lacks these images: ${images.join(', ')}; build and load them with \`npm run images:build\``);
    this.images = images;
  }
}

export interface NodeStartOptions {
  binaries: Record<Tool, string>;
  /** kubeconfig files of the node's components. */
  kubeconfigs: { kubelet: string; 'kube-proxy': string; coredns: string };
  admin: KubeConfig;
  adminKubectl: KubectlTarget;
  /** The API server's CA (the kubelet trusts client certificates it signed). */
  caFile: string;
  ports: { kubelet: number; kubeletHealthz: number; proxyHealthz: number; proxyMetrics: number; corednsReady: number; containerdStream: number };
  /** Image references that must be in containerd before the kubelet starts. */
  images: readonly string[];
  timeoutMs: number;
  progress: (line: string) => void;
}

export class Node {
  readonly layout: NodeLayout;
  readonly stateFile: string;
  readonly timings = { containerd: 0, ready: 0 };
  #state: NodeState;
  #processes = new Map<NodeProcessName, ManagedProcess>();
  #stopping: Promise<string[]> | undefined;

  private constructor(layout: NodeLayout, state: NodeState) {
    this.layout = layout;
    this.#state = state;
    this.stateFile = path.join(layout.dir, 'state.json');
  }

  /**
   * Takes the node lock, records the host's state, creates the bridge and its
   * firewall, and registers the teardown with the reaper. `dir` is the control
   * plane's run dir.
   */
  static async prepare(runDir: string, progress: (line: string) => void): Promise<Node> {
    const dir = path.join(runDir, 'node');
    const layout: NodeLayout = {
      dir,
      containerdRoot: containerdRoot(),
      containerdState: path.join(dir, 'containerd-state'),
      // A unix socket path must stay under 108 bytes; the run dir is short (/tmp/faultline-XXXXXX).
      containerdSocket: path.join(dir, 'containerd.sock'),
      cniConfDir: path.join(dir, 'cni'),
      cniBinDir: CNI_BIN_DIR,
      ipamDir: path.join(dir, 'ipam'),
      kubeletRoot: path.join(dir, 'kubelet'),
      podLogsDir: path.join(dir, 'pod-logs'),
      cgroupRoot: `/faultline-${path.basename(runDir)}`,
      runcBinary: HOST_TOOLS.runc,
    };
    await Promise.all(
      [dir, layout.containerdRoot, layout.containerdState, layout.cniConfDir, layout.ipamDir, layout.kubeletRoot, layout.podLogsDir].map((d) =>
        mkdir(d, { recursive: true, mode: 0o700 }),
      ),
    );
    const state: NodeState = { layout, sysctls: {}, netnsBaseline: [], netnsDirMounted: false, pids: {}, lockFile: LOCK_FILE };
    const node = new Node(layout, state);
    for (const note of await acquireLock(node.stateFile)) progress(note);
    state.sysctls = await readSysctls();
    state.netnsBaseline = await criNetnsNames();
    state.netnsDirMounted = await netnsDirMounted();
    await writeState(node.stateFile, state);
    // From here on, a crash of this process still ends in a full teardown.
    const script = path.join(dir, 'teardown.sh');
    await writeFile(
      script,
      `#!/bin/sh\nexec ${shellQuote(process.execPath)} ${shellQuote(TEARDOWN_CLI)} ${shellQuote(node.stateFile)} >>${shellQuote(path.join(runDir, 'teardown.log'))} 2>&1\n`,
    );
    await chmod(script, 0o700);
    trackCleanup(script);
    await createBridge();
    await applyNodeFirewall();
    // Service traffic between pods on one bridge must pass through netfilter (kube-proxy's DNAT).
    await writeSysctl('net/bridge/bridge-nf-call-iptables', '1');
    await writeSysctl('net/bridge/bridge-nf-call-ip6tables', '1');
    return node;
  }

  /** The CNI config, containerd, the images check, CoreDNS, kube-proxy and the kubelet; resolves once the Node is Ready. */
  async start(o: NodeStartOptions): Promise<void> {
    const { layout } = this;
    const common = { dir: layout.dir, timeoutMs: o.timeoutMs, progress: o.progress };
    await writeFile(path.join(layout.cniConfDir, '10-faultline.conflist'), cniConflist(layout));
    const resolvConf = path.join(layout.dir, 'resolv.conf');
    // dnsPolicy: Default pods get no upstream: nothing outside is reachable anyway.
    await writeFile(resolvConf, `nameserver ${NODE_NETWORK.gateway}\noptions ndots:5\n`);

    const t0 = performance.now();
    await this.#track(startContainerd({ ...common, binary: HOST_TOOLS.containerd, layout, streamPort: o.ports.containerdStream }));
    this.timings.containerd = performance.now() - t0;
    // A persistent root may hold a crashed run's pods: remove them before the kubelet sees them.
    const cri = new CriClient(layout.containerdSocket);
    for (const err of await cri.removeAllSandboxes().finally(() => cri.close())) o.progress(`stale pod: ${err}`);
    // Always: load.sh moves only what podman holds newer than containerd, and a
    // stale image under the same tag (rebuilt since the last run) would
    // otherwise run yesterday's code.
    await this.#loadImages(o.progress);
    const missing = await this.missingImages(o.images);
    if (missing.length) throw new MissingImagesError(missing);

    await applyCorednsRbac(o.adminKubectl);
    await createCgroupRoot(layout.cgroupRoot);
    await Promise.all([
      this.#track(startCoredns({ ...common, binary: o.binaries.coredns, kubeconfig: o.kubeconfigs.coredns, readyPort: o.ports.corednsReady })),
      this.#track(
        startKubeProxy({
          ...common,
          binary: o.binaries['kube-proxy'],
          kubeconfig: o.kubeconfigs['kube-proxy'],
          mode: 'nftables',
          healthzPort: o.ports.proxyHealthz,
          metricsPort: o.ports.proxyMetrics,
        }),
      ),
      this.#track(
        startKubelet({
          ...common,
          binary: o.binaries.kubelet,
          kubeconfig: o.kubeconfigs.kubelet,
          layout,
          clientCaFile: o.caFile,
          port: o.ports.kubelet,
          healthzPort: o.ports.kubeletHealthz,
          resolvConf,
        }),
      ),
    ]);
    await waitForNodeReady(o.admin, o.timeoutMs, o.progress);
    this.timings.ready = performance.now() - t0;
  }

  /** Which of `images` containerd's k8s.io namespace lacks. */
  async missingImages(images: readonly string[]): Promise<string[]> {
    const out = await must(HOST_TOOLS.ctr, ['--address', this.layout.containerdSocket, '--namespace', CRI_NAMESPACE, 'images', 'ls', '--quiet']);
    const have = new Set(out.split('\n').map((l) => l.trim()));
    return images.filter((i) => !have.has(i) && !have.has(`docker.io/${i}`));
  }

  /**
   * Imports what `npm run images:build` built (podman's store) into
   * containerd with hack/images/load.sh, which skips images containerd
   * already holds at the same config digest; a failure is left for the
   * caller's check to report (an image absent from both).
   */
  async #loadImages(progress: (line: string) => void): Promise<void> {
    if (!(await access(LOAD_SCRIPT).then(() => true, () => false))) return;
    const r = await run('bash', [LOAD_SCRIPT, this.layout.containerdSocket], undefined, 600_000);
    await writeFile(path.join(this.layout.dir, 'load-images.log'), `${r.stdout}${r.stderr}`);
    if (r.code !== 0) progress(`hack/images/load.sh failed (exit ${r.code}): ${r.stderr.trim().split('\n').pop()}`);
  }

  get processes(): ReadonlyMap<NodeProcessName, ManagedProcess> {
    return this.#processes;
  }

  async #track(started: Promise<ManagedProcess>): Promise<void> {
    const proc = await started;
    this.#processes.set(proc.name as NodeProcessName, proc);
    this.#state.pids[proc.name as NodeProcessName] = proc.pid;
    await writeState(this.stateFile, this.#state);
  }

  /** Full teardown (see teardown.ts); idempotent. Returns notes for the log. */
  stop(): Promise<string[]> {
    this.#stopping ??= teardownNode(this.#state, async (name) => {
      await this.#processes.get(name)?.stop(name === 'kubelet' ? 10_000 : 5000);
    });
    return this.#stopping;
  }
}

/** CoreDNS's read access (the upstream chart's ClusterRole), bound to its static-token user. */
async function applyCorednsRbac(kubectl: KubectlTarget): Promise<void> {
  const docs = [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'system:coredns' },
      rules: [
        { apiGroups: [''], resources: ['endpoints', 'services', 'pods', 'namespaces'], verbs: ['list', 'watch'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'system:coredns' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:coredns' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'system:coredns' }],
    },
  ];
  check(await runKubectl(kubectl, ['apply', '--server-side', '--field-manager=faultline-controlplane', '-f', '-'], { input: docs.map((d) => JSON.stringify(d)).join('\n---\n') }), 'CoreDNS RBAC');
}

async function waitForNodeReady(kc: KubeConfig, timeoutMs: number, progress: (line: string) => void): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  await waitUntil(
    async () => {
      const node = await core.readNode({ name: NODE_NAME }).catch(() => undefined);
      if (!node) return 'not registered';
      const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
      return ready?.status === 'True' ? true : `Ready=${ready?.status ?? 'unknown'}: ${ready?.message ?? ''}`;
    },
    { what: `node ${NODE_NAME} Ready`, timeoutMs, progress, intervalMs: 200 },
  );
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
