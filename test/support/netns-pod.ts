// A pod on one machine, for the netns tests: from an (injected) pod spec it
// builds a network namespace with eth0 on a veth pair to a "client" namespace,
// runs faultline-init as root, faultline-proxy as the proxy UID, faultline-kernel
// (if the spec has it) and the app containers, each with the env the spec gives
// it. Volumes are host directories; every path a container would see under a
// volume mount is translated to that directory, in env values and arguments.
//
// Namespaces: init, proxy and pod-side commands run under `ip netns exec`,
// which also bind-mounts /etc/netns/<ns>/hosts so names given in `hosts`
// resolve. faultline-kernel and the app run under `nsenter --net` instead:
// `ip netns exec` gives its child a private mount namespace, and the FUSE
// mount must be visible to the app and the test, as mount propagation makes
// it in a real pod.

import type { V1Container, V1Pod, V1VolumeMount } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { LiveFaultPlan } from '../../contract/plans.ts';
import {
  DEFAULT_PROXY_PORTS,
  FAIL_OPEN_COMMAND,
  FAIL_OPEN_CONTAINER_NAME,
  FAKETIME_TIMESTAMP_FILE,
  INIT_CONTAINER_NAME,
  KERNEL_CONTAINER_NAME,
  PLAN_ENV,
  PROXY_ALIVE_FILE,
  PROXY_CONTAINER_NAME,
  RUN_VOLUME_NAME,
  TIME_MOUNT_PATH,
  TIME_VOLUME_NAME,
} from '../../contract/pod-layout.ts';
import { renderFailOpenWatcher } from '../../pod-setup/redirect/capture-rules.ts';
import { MemoryCgroup, quantityBytes } from './memory-cgroup.ts';
import { exec, execOk, Proc, type Result } from './netns-exec.ts';
import { NODE } from './netns-fixtures.ts';
import { repoRoot } from './netns-paths.ts';

const DEFAULT_CLI = `${repoRoot}/bin/faultline.js`;
/** With a client namespace, addresses exist only inside the two namespaces each pod creates. */
export const CLIENT_IP = '10.213.0.1';
export const POD_IP = '10.213.0.2';
/** The node, as far as the pod can tell: kubelet probes come from here (status.hostIP). A second address of the client namespace. */
export const NODE_IP = '10.213.0.3';
const PREFIX = 29;
/** Root-attached pods take a random /29 of this /16, so pods of concurrent runs do not collide. */
const ROOT_ATTACHED_NET = '10.214';

let counter = 0;

export interface StartOptions {
  /** Names resolvable inside the pod (and by the init program): name → address. */
  hosts?: Record<string, string>;
  /** Live faults for faultline-proxy (its static --plan-file policy source). */
  livePlan?: LiveFaultPlan;
  /** Stop after faultline-init (tests of init alone). */
  initOnly?: boolean;
  /** Prefix for the init command, e.g. setpriv dropping a capability. */
  initWrapper?: string[];
  /** Extra `faultline init` flags. */
  initArgs?: string[];
  /** Do not throw when faultline-init exits non-zero (the test inspects `init`). */
  allowInitFailure?: boolean;
  /** Runs once the volumes exist, before any container: put the data a volume starts with. */
  seedVolumes?: () => Promise<void>;
  /** Run each container in a memory cgroup of its own, as the kubelet does (see `cgroups`). */
  measureMemory?: boolean;
  /** As measureMemory, each cgroup limited to its container's resources.limits.memory, as the kubelet sets it. */
  enforceMemoryLimits?: boolean;
  /** Do not start the spec's app containers: the test serves the app in the pod's namespace itself (netns-enter.ts). */
  appsInProcess?: boolean;
  /** Extra `faultline sidecar` flags, after the pod's own (a repeated flag wins). */
  proxyArgs?: string[];
  /** Node flags for the proxy (e.g. --expose-gc, --import a test probe, the image's flags). */
  proxyNodeArgs?: string[];
  /** Env for the proxy beyond the spec's (e.g. the image's ENV). */
  proxyEnv?: Record<string, string>;
}

export interface PodNetwork {
  /**
   * 'client-namespace' (default): eth0 pairs with a veth in a second namespace,
   * where test commands run (execClient). 'root': the pair's other end is in the
   * root namespace, so the test process itself reaches the pod at `podIp` from
   * `clientIp`, on a /29 of its own.
   */
  attach?: 'client-namespace' | 'root';
  /** The faultline CLI the init and proxy containers run (default bin/faultline.js; the datapath suites pass the compiled bundle too). */
  cli?: string;
}

export class SimulatedPod {
  readonly id = `${process.pid.toString(36)}${(counter++).toString(36)}${randomBytes(2).toString('hex')}`;
  readonly podNs = `fl-${this.id}-pod`;
  readonly clientNs = `fl-${this.id}-cli`;
  /** eth0's peer, in the client namespace or the root namespace. */
  readonly clientVeth = `flc${this.id}`.slice(0, 15);
  readonly root: string;
  readonly runDir: string;
  readonly timeDir: string;
  readonly stateDir: string;
  spec: V1Pod | undefined;
  init: Result | undefined;
  readonly procs: Proc[] = [];
  /** Container name → its memory cgroup, with StartOptions.measureMemory. */
  readonly cgroups = new Map<string, MemoryCgroup>();
  private readonly volumeDirs = new Map<string, string>();
  private netnsCreated = false;
  private options: StartOptions = {};
  /** Whether the proxy runs with a --plan-file source; restarts keep the file as the last setLivePlan left it. */
  private planSource = false;
  readonly attach: 'client-namespace' | 'root';
  readonly faultline: string[];
  /** The test side of eth0's pair (client namespace, or root namespace when root-attached). */
  clientIp = CLIENT_IP;
  podIp = POD_IP;
  /** status.hostIP: a second address of the client side. */
  nodeIp = NODE_IP;

  constructor(network: PodNetwork = {}) {
    this.attach = network.attach ?? 'client-namespace';
    this.faultline = [NODE, network.cli ?? DEFAULT_CLI];
    this.root = mkdtempSync(join(tmpdir(), 'faultline-pod-'));
    // The proxy runs as UID 1337 and must reach the shared volumes.
    chmodSync(this.root, 0o755);
    this.runDir = this.emptyDir(RUN_VOLUME_NAME);
    this.timeDir = this.emptyDir(TIME_VOLUME_NAME);
    this.stateDir = join(this.root, 'kernel-state');
  }

  /** Where the offset file (FAKETIME_TIMESTAMP_FILE) lives on this machine. */
  get faketimeFile(): string {
    return join(this.timeDir, relative(TIME_MOUNT_PATH, FAKETIME_TIMESTAMP_FILE));
  }

  /** Host directory backing a pod volume; emptyDirs are 0777 as the kubelet makes them. */
  emptyDir(name: string): string {
    let dir = this.volumeDirs.get(name);
    if (!dir) {
      dir = join(this.root, 'volumes', name);
      mkdirSync(dir, { recursive: true, mode: 0o777 });
      chmodSync(dir, 0o777);
      chmodSync(join(this.root, 'volumes'), 0o755);
      this.volumeDirs.set(name, dir);
    }
    return dir;
  }

  private container(name: string): V1Container {
    const all = [...(this.spec?.spec?.initContainers ?? []), ...(this.spec?.spec?.containers ?? [])];
    const c = all.find((x) => x.name === name);
    if (!c) throw new Error(`pod spec has no container ${name}`);
    return c;
  }

  /** Where a path the container sees lives on this machine (volume mounts translated). */
  hostPath(containerName: string, path: string): string {
    const mounts: V1VolumeMount[] = [...(this.container(containerName).volumeMounts ?? [])].sort((a, b) => b.mountPath.length - a.mountPath.length);
    for (const m of mounts) {
      if (path === m.mountPath || path.startsWith(`${m.mountPath}/`)) return this.emptyDir(m.name) + path.slice(m.mountPath.length);
    }
    return path;
  }

  /** Rewrites container paths under the container's mounts to their host directories (whole path segments, longest mount first). */
  private translate(containerName: string, value: string): string {
    const mounts = [...(this.container(containerName).volumeMounts ?? [])].sort((a, b) => b.mountPath.length - a.mountPath.length);
    let out = value;
    for (const m of mounts) {
      const escaped = m.mountPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      // Whole path segments only: /var/run/faultline must not rewrite /var/run/faultline-io.
      out = out.replace(new RegExp(`(?<![\\w./-])${escaped}(?![\\w.-])`, 'g'), this.emptyDir(m.name));
    }
    return out;
  }

  /** The container's env as the kubelet would set it (downward API included), paths translated. */
  containerEnv(containerName: string): NodeJS.ProcessEnv {
    const meta = this.spec?.metadata ?? {};
    const env: NodeJS.ProcessEnv = { ...baseEnv(), FAULTLINE_LOG_LEVEL: 'info' /* the tests read these logs */ };
    for (const e of this.container(containerName).env ?? []) {
      const field = e.valueFrom?.fieldRef?.fieldPath;
      const value =
        e.value !== undefined
          ? e.name === PLAN_ENV
            ? e.value // The plan speaks in the app's paths; the kernel gets --volume for them.
            : this.translate(containerName, e.value)
          : field === 'metadata.name'
            ? meta.name
            : field === 'metadata.namespace'
              ? meta.namespace
              : field === 'metadata.uid'
                ? meta.uid
                : field === 'status.podIP' || field === 'status.podIPs'
                  ? this.podIp
                  : field === 'status.hostIP' || field === 'status.hostIPs'
                    ? this.nodeIp
                    : undefined;
      if (value !== undefined) env[e.name] = value;
    }
    return env;
  }

  async start(spec: V1Pod, options: StartOptions = {}): Promise<void> {
    this.spec = spec;
    this.options = options;
    await this.createNetwork(options.hosts ?? {});
    for (const v of spec.spec?.volumes ?? []) {
      const dir = this.emptyDir(v.name);
      // App volumes are mount points in a real pod; a tmpfs keeps that true here.
      if (v.name !== RUN_VOLUME_NAME && v.name !== TIME_VOLUME_NAME && v.emptyDir) {
        await execOk(['mount', '-t', 'tmpfs', '-o', 'mode=0777,size=16m', `faultline-test-${this.id}`, dir]);
      }
    }
    await options.seedVolumes?.();
    this.init = await this.runInit();
    if (this.init.code !== 0) {
      if (options.allowInitFailure) return;
      throw new Error(`faultline-init exited ${this.init.code}:\n${this.init.stdout}${this.init.stderr}`);
    }
    if (options.initOnly) return;
    if (spec.spec?.initContainers?.some((c) => c.name === FAIL_OPEN_CONTAINER_NAME)) await this.startFailOpen();
    if (options.livePlan) {
      await this.setLivePlan(options.livePlan);
      this.planSource = true;
    }
    await this.startProxy();
    if (spec.spec?.initContainers?.some((c) => c.name === KERNEL_CONTAINER_NAME)) await this.startKernel();
    if (!options.appsInProcess) for (const c of spec.spec?.containers ?? []) await this.startApp(c);
  }

  private async createNetwork(hosts: Record<string, string>): Promise<void> {
    const vethPod = `flp${this.id}`.slice(0, 15);
    const vethCli = this.clientVeth;
    const root = this.attach === 'root';
    if (root) await this.pickRootSubnet();
    await execOk(['ip', 'netns', 'add', this.podNs]);
    this.netnsCreated = true;
    if (!root) await execOk(['ip', 'netns', 'add', this.clientNs]);
    // Deleting the pod namespace deletes the pair, root end included.
    await execOk(['ip', 'link', 'add', vethPod, 'netns', this.podNs, 'type', 'veth', 'peer', 'name', vethCli, ...(root ? [] : ['netns', this.clientNs])]);
    const inPod = (...a: string[]) => execOk(['ip', '-n', this.podNs, ...a]);
    const inCli = (...a: string[]) => execOk(root ? ['ip', ...a] : ['ip', '-n', this.clientNs, ...a]);
    await inPod('link', 'set', vethPod, 'name', 'eth0');
    await inPod('addr', 'add', `${this.podIp}/${PREFIX}`, 'dev', 'eth0');
    await inPod('link', 'set', 'eth0', 'up');
    await inPod('link', 'set', 'lo', 'up');
    // The first address is the one the client side's connections come from.
    await inCli('addr', 'add', `${this.clientIp}/${PREFIX}`, 'dev', vethCli);
    await inCli('addr', 'add', `${this.nodeIp}/${PREFIX}`, 'dev', vethCli);
    await inCli('link', 'set', vethCli, 'up');
    if (!root) await inCli('link', 'set', 'lo', 'up');
    const etc = `/etc/netns/${this.podNs}`;
    await mkdir(etc, { recursive: true });
    const lines = ['127.0.0.1 localhost', ...Object.entries(hosts).map(([name, ip]) => `${ip} ${name}`)];
    await writeFile(join(etc, 'hosts'), `${lines.join('\n')}\n`);
  }

  /** A /29 of ROOT_ATTACHED_NET no address or route of the root namespace uses yet. */
  private async pickRootSubnet(): Promise<void> {
    const taken = (await execOk(['ip', '-o', '-4', 'route', 'show'])).stdout + (await execOk(['ip', '-o', '-4', 'addr', 'show'])).stdout;
    for (let attempt = 0; attempt < 20; attempt++) {
      const n = randomBytes(2).readUInt16BE() % 8192;
      const base = `${ROOT_ATTACHED_NET}.${n >> 5}.${(n & 31) * 8}`;
      if (taken.includes(`${base}/${PREFIX}`)) continue;
      const at = (i: number) => `${ROOT_ATTACHED_NET}.${n >> 5}.${(n & 31) * 8 + i}`;
      if ([1, 2, 3].some((i) => taken.includes(`${at(i)}/`))) continue;
      [this.clientIp, this.podIp, this.nodeIp] = [at(1), at(2), at(3)];
      return;
    }
    throw new Error(`no free /${PREFIX} in ${ROOT_ATTACHED_NET}.0.0/16`);
  }

  /** Runs faultline-init as its container would (again, for idempotency tests). */
  runInit(wrapper: string[] = this.options.initWrapper ?? []): Promise<Result> {
    return exec(
      this.inCgroup(INIT_CONTAINER_NAME, [
        'ip', 'netns', 'exec', this.podNs, ...wrapper,
        ...this.withEnv(INIT_CONTAINER_NAME, [...this.faultline, 'init', '--run-dir', this.runDir, '--time-dir', this.timeDir, ...(this.options.initArgs ?? [])]),
      ]),
      { env: baseEnv() },
    );
  }

  /**
   * Env goes to the container's program only, as the kubelet gives it to
   * PID 1: wrappers (ip, nsenter, setpriv) must not run with the app's
   * LD_PRELOAD, or libfaketime would create its shared state as root and the
   * app, under its own UID, could not open it.
   */
  private withEnv(containerName: string, argv: string[], extra: Record<string, string> = {}): string[] {
    const env = { ...this.containerEnv(containerName), ...extra };
    return ['env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v ?? ''}`), ...argv];
  }

  /** The UID the proxy container runs as. */
  get proxyUid(): number | undefined {
    return this.uidOf(this.container(PROXY_CONTAINER_NAME));
  }

  private uidOf(c: V1Container): number | undefined {
    return c.securityContext?.runAsUser ?? this.spec?.spec?.securityContext?.runAsUser;
  }

  private asUser(uid: number | undefined): string[] {
    return uid === undefined || uid === 0 ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];
  }

  private get livePlanFile(): string {
    return join(this.root, 'live-plan.json');
  }

  /**
   * Replaces the proxy's live plan (its --plan-file source) atomically, as a
   * policy change would. `indent` writes the same plan in other JSON text,
   * which the file source reads as a new delivery.
   */
  async setLivePlan(plan: LiveFaultPlan, indent?: number): Promise<void> {
    const tmp = `${this.livePlanFile}.tmp`;
    await writeFile(tmp, JSON.stringify(plan, null, indent), { mode: 0o644 });
    await rename(tmp, this.livePlanFile);
  }

  /**
   * faultline-failopen as its container runs it: the script the init image
   * carries (rendered by the same function images/build.ts uses), its paths
   * translated, under bash as root with NET_ADMIN as its only capability
   * (the bounding set caps what root gets, as the container's does).
   */
  async startFailOpen(): Promise<Proc> {
    const c = this.container(FAIL_OPEN_CONTAINER_NAME);
    if (c.command?.join(' ') !== FAIL_OPEN_COMMAND.join(' ') || c.args !== undefined) throw new Error(`${FAIL_OPEN_CONTAINER_NAME} does not run the watcher: ${JSON.stringify(c)}`);
    const script = join(this.root, 'fail-open-watch.sh');
    await writeFile(script, this.translate(FAIL_OPEN_CONTAINER_NAME, renderFailOpenWatcher()), { mode: 0o755 });
    const caps = ['setpriv', '--bounding-set=-all,+net_admin', '--inh-caps=-all'];
    const p = this.spawn(FAIL_OPEN_CONTAINER_NAME, this.inCgroup(FAIL_OPEN_CONTAINER_NAME, ['ip', 'netns', 'exec', this.podNs, ...caps, ...this.withEnv(FAIL_OPEN_CONTAINER_NAME, ['bash', script])]));
    await this.waitUntil(p, `${FAIL_OPEN_CONTAINER_NAME} setting the gate`, () => p.stdout.includes('"msg":"proxy is'));
    return p;
  }

  /** SIGKILLs a container's processes (its process group), as an OOM kill or `kill -9` of its PID 1 would; returns when they are gone. */
  async crash(containerName: string): Promise<number> {
    const old = this.proc(containerName);
    const at = Date.now();
    if (old.child.pid !== undefined) process.kill(-old.child.pid, 'SIGKILL');
    await old.exited;
    this.procs.splice(this.procs.indexOf(old), 1);
    return at;
  }

  /**
   * Starts faultline-proxy again, as the kubelet restarts a native sidecar; resolves once its startup probe passes.
   * Its policy source is the plan file as the last setLivePlan left it, as a restarted proxy reads the policies of now.
   */
  restartProxy(): Promise<void> {
    return this.startProxy();
  }

  private async startProxy(): Promise<void> {
    const proxy = this.container(PROXY_CONTAINER_NAME);
    const args = [
      'sidecar', '--fault-header', '--handoff-file', join(this.runDir, 'handoff.json'), '--alive-file', join(this.runDir, PROXY_ALIVE_FILE), '--faketime-file', this.faketimeFile,
    ];
    if (this.planSource) args.push('--plan-file', this.livePlanFile);
    args.push(...(this.options.proxyArgs ?? []));
    const [node, cli] = this.faultline as [string, string];
    const p = this.spawn(
      PROXY_CONTAINER_NAME,
      this.inCgroup(PROXY_CONTAINER_NAME, [
        'ip', 'netns', 'exec', this.podNs, ...this.asUser(this.uidOf(proxy)),
        ...this.withEnv(PROXY_CONTAINER_NAME, [node, ...(this.options.proxyNodeArgs ?? []), cli, ...args], this.options.proxyEnv),
      ]),
    );
    const port = proxy.startupProbe?.httpGet?.port ?? DEFAULT_PROXY_PORTS.health;
    const path = proxy.startupProbe?.httpGet?.path ?? '/healthz/ready';
    await this.waitUntil(p, `${PROXY_CONTAINER_NAME} startup probe`, async () => (await this.execPod(['curl', '-sf', '-o', '/dev/null', `http://127.0.0.1:${port}${path}`])).code === 0);
  }

  /** SIGKILLs faultline-kernel, as an OOM kill would. */
  async crashKernel(): Promise<void> {
    await this.crash(KERNEL_CONTAINER_NAME);
  }

  /** Starts faultline-kernel again, as the kubelet restarts a native sidecar (its ready file is gone with the old container). */
  async restartKernel(): Promise<void> {
    await rm(join(this.runDir, 'kernel-ready'), { force: true });
    await this.startKernel();
  }

  private async startKernel(): Promise<void> {
    const kernel = this.container(KERNEL_CONTAINER_NAME);
    // The webhook's own args for the image's `faultline` entrypoint (`kernel --volume
    // <app path>=<its path>`), with the container's paths mapped to their host directories.
    const [sub, ...rest] = kernel.args ?? [];
    if (kernel.command !== undefined || sub !== 'kernel') throw new Error(`${KERNEL_CONTAINER_NAME} does not run \`faultline kernel\`: ${JSON.stringify(kernel)}`);
    const argv = [...this.faultline, sub, ...rest.map((a) => this.translate(KERNEL_CONTAINER_NAME, a)), '--run-dir', this.runDir, '--state-dir', this.stateDir];
    const p = this.spawn(KERNEL_CONTAINER_NAME, this.inCgroup(KERNEL_CONTAINER_NAME, ['nsenter', `--net=/run/netns/${this.podNs}`, ...this.withEnv(KERNEL_CONTAINER_NAME, argv)]));
    await this.waitUntil(p, `${KERNEL_CONTAINER_NAME} ready file`, () => existsSync(join(this.runDir, 'kernel-ready')));
  }

  private async startApp(c: V1Container): Promise<void> {
    const argv = [...(c.command ?? []), ...(c.args ?? [])].map((a) => this.translate(c.name, a));
    const p = this.spawn(c.name, this.inCgroup(c.name, ['nsenter', `--net=/run/netns/${this.podNs}`, ...this.asUser(this.uidOf(c)), ...this.withEnv(c.name, argv)]));
    for (const port of (c.ports ?? []).map((x) => x.containerPort)) {
      await this.waitUntil(p, `${c.name} port ${port}`, async () => (await this.execPod(['bash', '-c', `echo > /dev/tcp/127.0.0.1/${port}`])).code === 0);
    }
  }

  /** argv run inside the container's memory cgroup when measuring memory; unchanged otherwise. */
  private inCgroup(containerName: string, argv: string[]): string[] {
    if (!this.options.measureMemory && !this.options.enforceMemoryLimits) return argv;
    let cgroup = this.cgroups.get(containerName);
    if (!cgroup) {
      const limit = this.container(containerName).resources?.limits?.memory;
      cgroup = new MemoryCgroup(this.options.enforceMemoryLimits && limit !== undefined ? quantityBytes(limit) : undefined);
      this.cgroups.set(containerName, cgroup);
    }
    return cgroup.wrap(argv);
  }

  private spawn(name: string, argv: string[]): Proc {
    const p = new Proc(name, argv, baseEnv());
    this.procs.push(p);
    return p;
  }

  private async waitUntil(p: Proc, what: string, ready: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await ready())) {
      if (!p.running) throw new Error(`${p.name} exited before ${what}:\n${p.stdout}${p.stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${p.stdout}${p.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  proc(name: string): Proc {
    const p = this.procs.find((x) => x.name === name);
    if (!p) throw new Error(`no process ${name}`);
    return p;
  }

  /** A command in the pod's network namespace (root, pod's /etc/hosts). */
  execPod(argv: string[], opts: { uid?: number; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<Result> {
    return exec(['ip', 'netns', 'exec', this.podNs, ...this.asUser(opts.uid), ...argv], opts);
  }

  /** A command as `kubectl exec` into a container would run it: its env, its UID, the host mount view. */
  execIn(containerName: string, argv: string[], opts: { timeoutMs?: number } = {}): Promise<Result> {
    const c = this.container(containerName);
    const translated = argv.map((a) => this.translate(containerName, a));
    return exec(['nsenter', `--net=/run/netns/${this.podNs}`, ...this.asUser(this.uidOf(c)), ...this.withEnv(containerName, translated)], {
      env: baseEnv(),
      ...opts,
    });
  }

  execClient(argv: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<Result> {
    return exec(this.onClientSide(argv), opts);
  }

  spawnClient(name: string, argv: string[]): Proc {
    return this.spawn(name, this.onClientSide(argv));
  }

  private onClientSide(argv: string[]): string[] {
    return this.attach === 'root' ? argv : ['ip', 'netns', 'exec', this.clientNs, ...argv];
  }

  /** A long-running helper in the pod's network namespace (as root, or `uid`), stopped with the pod; resolves once `ready` holds. */
  async spawnInPod(name: string, argv: string[], ready: (p: Proc) => boolean, uid?: number): Promise<Proc> {
    const p = this.spawn(name, ['ip', 'netns', 'exec', this.podNs, ...this.asUser(uid), ...argv]);
    await this.waitUntil(p, `${name} to start`, () => ready(p));
    return p;
  }

  /** An HTTP upstream in the client namespace answering `upstream <path>`; resolves once it listens. */
  async startUpstream(port: number): Promise<Proc> {
    const p = this.spawnClient('upstream', [NODE, '-e', `require('http').createServer((q,s)=>s.end('upstream '+q.url)).listen(${port},()=>console.log('up'))`]);
    await this.waitUntil(p, `upstream on ${port}`, () => p.stdout.includes('up'));
    return p;
  }

  /** Mount points under this pod's directory, deepest first. */
  mounts(): string[] {
    return readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((m): m is string => m !== undefined && (m === this.root || m.startsWith(`${this.root}/`)))
      .sort((a, b) => b.length - a.length);
  }

  /** Stops every process, unmounts, deletes namespaces and files; throws what it could not clean. */
  async teardown(): Promise<void> {
    const problems: string[] = [];
    // faultline-kernel last: the app may still be reading through its FUSE mount.
    const kernel = this.procs.filter((p) => p.name === KERNEL_CONTAINER_NAME);
    for (const p of this.procs.filter((x) => x.name !== KERNEL_CONTAINER_NAME).reverse()) await p.stop();
    for (const p of kernel) await p.stop(10_000);
    for (const cgroup of this.cgroups.values()) await cgroup.remove().catch((err: Error) => problems.push(err.message));
    this.cgroups.clear();
    for (const m of this.mounts()) {
      const r = await exec(['umount', '--lazy', m]);
      if (r.code !== 0) problems.push(`umount ${m}: ${r.stderr.trim()}`);
    }
    if (this.netnsCreated) {
      // Root-attached: the root-side veth (and its /29 route) goes now, even while a socket
      // the test process opened in the pod's namespace keeps that namespace alive.
      if (this.attach === 'root') {
        const r = await exec(['ip', 'link', 'del', this.clientVeth]);
        if (r.code !== 0 && !/Cannot find device/.test(r.stderr)) problems.push(`ip link del ${this.clientVeth}: ${r.stderr.trim()}`);
      }
      for (const ns of this.attach === 'root' ? [this.podNs] : [this.podNs, this.clientNs]) {
        const r = await exec(['ip', 'netns', 'del', ns]);
        if (r.code !== 0 && !/No such file/.test(r.stderr)) problems.push(`ip netns del ${ns}: ${r.stderr.trim()}`);
      }
    }
    await rm(`/etc/netns/${this.podNs}`, { recursive: true, force: true });
    // libfaketime keeps per-process state in /dev/shm, removed by its destructor,
    // which a signal skips. A real pod's /dev/shm goes away with the pod.
    for (const f of this.shmFiles()) await rm(f, { force: true });
    await rm(this.root, { recursive: true, force: true }).catch((err: Error) => problems.push(`rm ${this.root}: ${err.message}`));
    if (problems.length > 0) throw new Error(`teardown of ${this.podNs} incomplete:\n${problems.join('\n')}`);
  }

  /** What teardown should have removed and did not (for the teardown test). */
  async leftovers(): Promise<string[]> {
    const left: string[] = [];
    const netns = (await exec(['ip', 'netns', 'list'])).stdout;
    for (const ns of [this.podNs, this.clientNs]) if (netns.split('\n').some((l) => l.split(' ')[0] === ns)) left.push(`netns ${ns}`);
    if (this.attach === 'root' && (await exec(['ip', 'link', 'show', this.clientVeth])).code === 0) left.push(`link ${this.clientVeth}`);
    for (const m of this.mounts()) left.push(`mount ${m}`);
    for (const p of this.procs) if (p.running) left.push(`process ${p.name} (${p.child.pid})`);
    if (existsSync(this.root)) left.push(`dir ${this.root}`);
    for (const f of this.shmFiles()) left.push(`shm ${f}`);
    if (existsSync(`/etc/netns/${this.podNs}`)) left.push(`dir /etc/netns/${this.podNs}`);
    return left;
  }

  private shmFiles(): string[] {
    return this.procs
      .flatMap((p) => (p.child.pid === undefined ? [] : [`/dev/shm/faketime_shm_${p.child.pid}`, `/dev/shm/sem.faketime_sem_${p.child.pid}`]))
      .filter((f) => existsSync(f));
  }

  async readRunFile(name: string): Promise<string> {
    return readFile(join(this.runDir, name), 'utf8');
  }
}

function baseEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH };
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}
