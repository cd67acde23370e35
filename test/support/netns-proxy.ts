// A faultline-proxy as it runs in a pod, for the datapath and e2e suites: a
// SimulatedPod (netns-pod.ts) attached to the root namespace, wired by the
// webhook's own renderer and `faultline init` (capture: nft sends every
// connection to the proxy's two listeners), running `faultline sidecar` from
// the CLI under test (FAULTLINE_CLI: sources or the compiled bundle) as the
// proxy UID with a live plan file. The test process serves the app inside the
// pod's namespace itself (`listen`, via netns-enter.ts), so its assertions on
// the app stay in-process, and reaches it as a client would: at the pod IP,
// from the root namespace, through the proxy.

import { chmod, copyFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { connect, createServer, type Server } from 'node:net';
import type net from 'node:net';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { DEFAULT_PROXY_PORTS, PROXY_CONTAINER_NAME } from '../../contract/pod-layout.ts';
import type { DatapathReport } from '../../contract/applied.ts';
import type { LiveFaultPlan } from '../../contract/plans.ts';
import { listenInNetns } from './netns-enter.ts';
import type { Proc, Result } from './netns-exec.ts';
import { appPod, injectedPod, NODE } from './netns-fixtures.ts';
import { isRoot, SimulatedPod, type StartOptions } from './netns-pod.ts';
import { cliPath, toxiproxyBin, waitFor } from './sidecar-harness.ts';
import { repoRoot } from './netns-paths.ts';

export interface Endpoint {
  host: string;
  port: number;
}

export interface PodProxyOptions {
  /** The pod as the webhook gets it (default: one app container, no ports declared: capture takes every port). */
  pod?: V1Pod;
  /** Or the pod as a real webhook returned it (e2e: the stored pod), run as it is. */
  injected?: V1Pod;
  /** Loopback ports of the root namespace the pod reaches on its own loopback (e2e: the API server its kubeconfig names). */
  loopbackForwards?: number[];
  /** toxiproxy-server for TCP faults: true for the test binaries' one, or a path (without: a missing one, TCP faults fail open). */
  toxiproxy?: boolean | string;
  /** Extra `faultline sidecar` flags. */
  proxyArgs?: string[];
  /** The live plan file the proxy starts with; null: no plan file (another policy source, e.g. --kubeconfig). */
  livePlan?: Partial<LiveFaultPlan> | null;
  /** The faultline CLI the pod runs (default: the one under test, cliPath). */
  cli?: string;
  /** Node flags and env for the proxy (bench: the image's). */
  nodeArgs?: string[];
  env?: Record<string, string>;
  /** Preload netns-proxy-probe.ts (gc and timers on SIGUSR2, see `probe`). */
  probe?: boolean;
  /** An init hand-off (contract/handoff.ts) for the proxy to start with. */
  handoff?: object;
  /** Anything else SimulatedPod.start takes. */
  start?: Omit<StartOptions, 'livePlan' | 'appsInProcess' | 'proxyArgs' | 'proxyNodeArgs'>;
}

/** Stats the proxy's admin API serves (sidecar.ts adminView). */
export interface ProxyStats {
  planUpdates: number;
  planChanges: number;
  aborts: number;
  upstreamErrors: number;
  clientAbortsDuringDelay: number;
  toxiproxyRestarts: number;
  openConnections: number;
  connections: Record<string, number>;
  requests: Record<string, number>;
  faults: Record<string, number>;
  toxiproxy: { up: boolean; pid?: number; api?: string; writes?: Record<string, number>; runs?: { requested: number; finished: number }; disabled?: boolean };
  listeners: Array<{ target: string; listenPort: number }>;
  /** The capture listeners: recent refusals, and per inbound port what sniffed connections spoke (capture/observations.ts). */
  capture?: {
    refused: Array<{ direction: 'inbound' | 'outbound'; reason: string }>;
    ports: Array<{ port: number; protocols: Array<'http1' | 'h2c' | 'tls' | 'raw'>; notServed: boolean }>;
  };
}

export class PodProxy {
  readonly pod: SimulatedPod;
  readonly ports = DEFAULT_PROXY_PORTS;
  private last: string | undefined;
  private readonly forwards: Server[] = [];

  private constructor(pod: SimulatedPod) {
    this.pod = pod;
  }

  /** Builds the pod, runs init and the proxy; resolves once the proxy's startup probe passes and the admin relay listens. */
  static async start(o: PodProxyOptions = {}): Promise<PodProxy> {
    if (!isRoot()) throw new Error('running the proxy as in a pod needs root (network namespaces, nft, setns): run as root, as CI does');
    const pod = new SimulatedPod({ attach: 'root', cli: o.cli ?? cliPath });
    const px = new PodProxy(pod);
    try {
      // The proxy's UID cannot read root's binary cache: a copy in the pod's directory stands in for the image's.
      let toxiproxy = typeof o.toxiproxy === 'string' ? o.toxiproxy : undefined;
      if (o.toxiproxy === true) {
        toxiproxy = join(pod.root, 'toxiproxy-server');
        await copyFile(await toxiproxyBin(), toxiproxy);
        await chmod(toxiproxy, 0o755);
      }
      const spec = o.injected ?? injectedPod(o.pod ?? appPod({ ports: [] }));
      const handoff = join(pod.emptyDir('test-handoff'), 'handoff.json');
      if (o.handoff) await writeFile(handoff, JSON.stringify(o.handoff), { mode: 0o644 });
      await pod.start(spec, {
        ...o.start,
        // The namespace exists by now; the proxy starts after this.
        seedVolumes: async () => {
          await px.startForwards(o.loopbackForwards ?? []);
          await o.start?.seedVolumes?.();
        },
        ...(o.livePlan === null ? {} : { livePlan: { http: [], tcp: [], ...o.livePlan } }),
        appsInProcess: true,
        proxyArgs: [
          '--toxiproxy-bin', toxiproxy ?? join(pod.root, 'no-toxiproxy'),
          ...(o.handoff ? ['--handoff-file', handoff] : []),
          ...(o.proxyArgs ?? []),
        ],
        proxyNodeArgs: [...(o.nodeArgs ?? []), ...(o.probe ? ['--expose-gc', '--import', `${repoRoot}/test/support/netns-proxy-probe.ts`] : [])],
        ...(o.env ? { proxyEnv: o.env } : {}),
      });
      if (o.livePlan !== null) px.last = JSON.stringify({ http: [], tcp: [], ...o.livePlan });
      // As the proxy's UID: capture's guard lets no other UID reach Toxiproxy.
      await pod.spawnInPod(
        'relay',
        [NODE, `${repoRoot}/test/support/netns-relay.ts`, `${px.adminSocket}=${px.ports.admin}`, `${px.toxiproxySocket}=${px.ports.toxiproxy}`],
        (p) => p.stdout.includes('relay ready'),
        pod.proxyUid,
      );
    } catch (err) {
      await px.close().catch(() => undefined);
      throw err;
    }
    return px;
  }

  /** Each port: the test process serves a UNIX socket connected to 127.0.0.1:<port> here, a relay in the pod listens on its 127.0.0.1:<port>. */
  private async startForwards(ports: number[]): Promise<void> {
    if (ports.length === 0) return;
    const dir = this.pod.emptyDir('test-relay');
    const args: string[] = [];
    for (const port of ports) {
      const path = join(dir, `forward-${port}.sock`);
      const server = createServer((c) => {
        const up = connect(port, '127.0.0.1');
        c.pipe(up).pipe(c);
        up.on('error', () => c.destroy());
        c.on('error', () => up.destroy());
      });
      this.forwards.push(server);
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(path, resolve));
      // The relay runs as the proxy's UID.
      await chmod(path, 0o666);
      args.push(`${port}=${path}`);
    }
    await this.pod.spawnInPod('forward', [NODE, `${repoRoot}/test/support/netns-relay.ts`, ...args], (p) => p.stdout.includes('relay ready'), this.pod.proxyUid);
  }

  get podIp(): string {
    return this.pod.podIp;
  }

  /** The address the test process's own connections come from (root namespace side of eth0's pair). */
  get clientIp(): string {
    return this.pod.clientIp;
  }

  private get adminSocket(): string {
    return join(this.pod.emptyDir('test-relay'), 'admin.sock');
  }

  private get toxiproxySocket(): string {
    return join(this.pod.emptyDir('test-relay'), 'toxiproxy.sock');
  }

  /** Where a client reaches the pod's `port` (captured: through the proxy). */
  endpoint(port: number): Endpoint {
    return { host: this.pod.podIp, port };
  }

  /** Serves `server` (the app) in the pod's namespace on `port` (default: a free one); resolves with the port. */
  listen(server: net.Server, port = 0): Promise<number> {
    return listenInNetns(this.pod.podNs, server, port);
  }

  /** A free port in the pod's namespace that nothing listens on. */
  async deadPort(): Promise<number> {
    const s = createServer();
    const port = await this.listen(s);
    await new Promise((r) => s.close(r));
    return port;
  }

  get proc(): Proc {
    return this.pod.proc(PROXY_CONTAINER_NAME);
  }

  /** The proxy's stdout, line by line. */
  get stdout(): string[] {
    return this.proc.stdout.split('\n').filter((l) => l !== '');
  }

  /** The proxy's JSON log lines (it logs at info). */
  get lines(): Array<Record<string, unknown>> {
    return this.proc.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  find(msg: string, where: Record<string, unknown> = {}): Array<Record<string, unknown>> {
    return this.lines.filter((l) => l.msg === msg && Object.entries(where).every(([k, v]) => l[k] === v));
  }

  /** GET on the admin API (127.0.0.1 in the pod), through the relay. */
  admin<T>(path: string): Promise<T> {
    return json<T>(this.adminSocket, path);
  }

  /** GET on the admin API, whatever the status. */
  adminGet(path: string): Promise<{ status: number; body: string }> {
    return get(this.adminSocket, path);
  }

  /** GET on the proxy's Toxiproxy API, through the relay. */
  toxiproxy<T>(path: string): Promise<T> {
    return json<T>(this.toxiproxySocket, path);
  }

  stats(): Promise<ProxyStats> {
    return this.admin<ProxyStats>('/stats');
  }

  currentPlan(): Promise<LiveFaultPlan> {
    return this.admin<LiveFaultPlan>('/plan');
  }

  /** The proxy's health port, reached as the kubelet would: at the pod IP. */
  health(path = '/healthz/ready'): Promise<Response> {
    return fetch(`http://${this.podIp}:${this.ports.health}${path}`);
  }

  metrics(): Promise<string> {
    return fetch(`http://${this.podIp}:${this.ports.metrics}/metrics`).then((r) => r.text());
  }

  get planFile(): string {
    return join(this.pod.root, 'live-plan.json');
  }

  /** Replaces the live plan atomically, as a policy change would. Returns false when the content did not change. */
  async write(plan: Partial<LiveFaultPlan>): Promise<boolean> {
    const full = { http: [], tcp: [], ...plan };
    const text = JSON.stringify(full);
    if (text === this.last) return false;
    this.last = text;
    await this.pod.setLivePlan(full as LiveFaultPlan);
    return true;
  }

  /** Writes the last plan again in other JSON text, and waits until the source has delivered it. */
  async redeliver(): Promise<void> {
    if (this.last === undefined) throw new Error('no plan written yet');
    const before = (await this.stats()).planUpdates;
    await this.pod.setLivePlan(JSON.parse(this.last) as LiveFaultPlan, 2);
    await waitFor('the plan to be delivered again', async () => (await this.stats()).planUpdates > before, 5_000, 10);
  }

  /** Writes the plan and waits until the proxy has applied it, and its TCP faults' toxics are in Toxiproxy. */
  async apply(plan: Partial<LiveFaultPlan>): Promise<void> {
    const before = (await this.stats()).planUpdates;
    if (await this.write(plan)) await waitFor('the plan to be applied', async () => (await this.stats()).planUpdates > before, 5_000, 10);
    const tcp = plan.tcp ?? [];
    if (tcp.length === 0) return;
    await waitFor(
      'Toxiproxy to serve the plan\'s toxics',
      async () => {
        const s = await this.stats();
        if (!s.toxiproxy.up) return false;
        const proxies = await this.toxiproxy<Record<string, { toxics: Array<{ name: string; attributes: Record<string, number> }> }>>('/proxies');
        // The report says a TCP fault applies once the proxy routes to its Toxiproxy proxy.
        const report = (await (await this.health('/status')).json()) as DatapathReport;
        const applied = new Set(report.policies.flatMap((p) => p.applied.filter((a) => a.kind.startsWith('tcp.')).map((a) => a.target)));
        return tcp.every((f) => {
          const p = proxies[f.direction === 'inbound' ? `inbound-${f.port}` : `outbound-${f.host}-${f.port}`];
          return p !== undefined && applied.has(f.direction === 'inbound' ? `inbound :${f.port}` : `outbound ${f.host}:${f.port}`) && f.toxics.every((t) => {
            const have = p.toxics.find((x) => x.name === t.name);
            return have !== undefined && Object.entries(t.attributes).every(([k, v]) => have.attributes[k] === v);
          });
        });
      },
      15_000,
      20,
    );
  }

  /**
   * Collects garbage in the proxy and reads its heap, its pending timers, the
   * packages it loaded CommonJS files from and Node's built-in modules it
   * loaded (needs `probe: true`).
   */
  async probe(): Promise<{ heapUsed: number; timers: number; packages: string[]; builtins: string[] }> {
    const seen = this.find('test probe').length;
    process.kill(this.proc.child.pid!, 'SIGUSR2');
    const line = await waitFor('the probe to answer', () => this.find('test probe')[seen], 5_000, 10);
    if (line.gc !== true) throw new Error('the proxy runs without --expose-gc');
    return { heapUsed: line.heapUsed as number, timers: line.timers as number, packages: line.packages as string[], builtins: line.builtins as string[] };
  }

  /** A command in the pod's namespace as its app would run it (a non-proxy UID: its connections are captured as outbound). */
  execApp(argv: string[], opts: { timeoutMs?: number } = {}): Promise<Result> {
    return this.pod.execPod(argv, { uid: 1000, ...opts });
  }

  /** `curl` from the app's side of the pod: the HTTP status of `url`. */
  async curlStatus(url: string): Promise<number> {
    const r = await this.execApp(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', url]);
    return Number(r.stdout);
  }

  /** SIGTERM to the proxy alone, as the kubelet stops a container; resolves with its exit code. */
  async stopProxy(): Promise<number> {
    process.kill(this.proc.child.pid!, 'SIGTERM');
    return this.proc.exited;
  }

  async close(): Promise<void> {
    try {
      await this.pod.teardown();
    } finally {
      for (const s of this.forwards) s.close();
    }
  }
}

function get(socketPath: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath, path, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', (err) => reject(new Error(`GET ${path} through ${socketPath}: ${err.message}`)));
  });
}

async function json<T>(socketPath: string, path: string): Promise<T> {
  const { status, body } = await get(socketPath, path);
  if (status !== 200) throw new Error(`GET ${path}: ${status} ${body.slice(0, 200)}`);
  return JSON.parse(body) as T;
}

