// faultline-proxy datapath benchmark. Prints ONE JSON object measured in one run:
//   - HTTP pass-through: direct vs through the sidecar's raw path and its HTTP
//     path (max-rate req/s, p50/p99), and p50/p99 at a fixed 1,000 req/s from
//     the open-loop generator (bench/open-loop.ts: vegeta, a Go program);
//   - sidecar RSS (of dist/, the compiled JavaScript the images run; the
//     Kubernetes source also from the TypeScript sources, alongside) idle with
//     each policy source — a plan file, and the
//     Kubernetes list+watch (what runs in production), configured in-cluster
//     as in a pod, against a local HTTPS list/watch emulator holding one
//     ChaosPolicy that targets the pod —
//     and under load; plus where an idle proxy's memory goes (bare Node, type
//     stripping);
//   - TCP throughput direct vs through the supervised Toxiproxy (MB/s);
//   - HTTP delay accuracy (100 ms, 400 paced requests, against the same path
//     undelayed) and abort share (100k at 10%);
//   - http-proxy-3 vs http-proxy 1.18: max rate and an aborted-request leak check;
//   - Toxiproxy's plain pass-through (no toxics) as the anchor, `maxRate.toxiproxy`;
//   - `capture`: transparent capture in real namespaces (bench/capture.ts, root
//     only): direct, Toxiproxy, the raw path, the HTTP/1 fault path (a rule that
//     matches nothing, one that fires), the HTTP/2 path, each as a share of
//     direct with the proxy's CPU per request, and the same proxy paths from a
//     baseline commit (BENCH_BASELINE, default main) in the same run.
// The app and the sidecar run in a pod's network namespace, as in a pod
// (test/support/netns-proxy.ts: `faultline init`'s capture, the compiled proxy
// with the image's Node flags and ENV as the proxy UID), and the load comes
// from the root namespace at the pod IP: "direct" is the same app on ports the
// pod excludes from capture, so both cross the same veth. Root only. Separate
// processes, so the load generator never shares their event loop. Latencies at
// the fixed rate come from vegeta (microseconds; autocannon's histogram has 1 ms
// resolution, too coarse for a 0.25 ms target, and a Node generator's own event
// loop put more into the p99 than the 1 ms target: bench/open-loop.ts).
//
//   npm run bench:sidecar   (BENCH_DURATION_S=5, BENCH_ROUNDS=1 capture rounds, BENCH_BASELINE=main)

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ensureBinaries, ensureOpenLoop } from '../controlplane/binaries.ts';
import { freePorts } from '../common/ports.ts';
import { API_GROUP, API_GROUP_VERSION, API_VERSION } from '../policies/wellknown.ts';
import type { InitPlan, LiveFaultPlan } from '../contract/plans.ts';
import { PLAN_ENV, PROXY_CONTAINER_NAME, TOKEN_MOUNT_PATH } from '../contract/pod-layout.ts';
import { EXCLUDE_INBOUND_PORTS_ANNOTATION } from '../policies/wellknown.ts';
import { appPod, injectedPod } from '../test/support/netns-fixtures.ts';
import { PodProxy } from '../test/support/netns-proxy.ts';
import { FakeKubeApiserver } from '../test/support/sidecar-kube-apiserver.ts';
import { captureBench } from './capture.ts';
import { podEnv, proxyImageRuntime } from './image-runtime.ts';
import { rssMB } from './pod-app.ts';
import { describeGenerator, openLoop, unreadableRuns, type OpenLoopResult } from './open-loop.ts';
import { percentile, round } from './webhook-stats.ts';

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  statusCodeStats: Record<string, { count: number }>;
}
type Autocannon = (opts: Record<string, unknown>) => PromiseLike<AutocannonResult>;
// autocannon ships no types; this is the slice used here.
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NODE = path.join(ROOT, 'node_modules', '.bin', 'node');
/** What the images run (images/build.ts's bundle), and the TypeScript sources for comparison. */
const CLI = { compiled: path.join(ROOT, 'dist', 'faultline.js'), sources: path.join(ROOT, 'bin', 'faultline.js') };
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);

/**
 * Where a process's resident memory is (MB), from /proc/<pid>/smaps and the
 * process's own view of its V8 heap (GET /stats): the node binary's code and
 * read-only data (file-backed pages: V8's compilers, OpenSSL, ICU, the startup
 * snapshot; only the pages touched count), the V8 heap (new space = the
 * semi-spaces), and the other anonymous memory (malloc: OpenSSL, V8 zones,
 * buffers).
 */
async function memoryBreakdownMB(pid: number, memory: ProxyMemory): Promise<Record<string, number>> {
  let mapping = '';
  const rss = { nodeCode: 0, nodeReadOnly: 0, otherFiles: 0, anonymous: 0 };
  for (const line of (await readFile(`/proc/${pid}/smaps`, 'utf8')).split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      const [, perms, file] = header as unknown as [string, string, string];
      mapping = file.endsWith('/node') && perms === 'r-xp' ? 'nodeCode' : file.endsWith('/node') && perms === 'r--p' ? 'nodeReadOnly' : file.startsWith('/') ? 'otherFiles' : 'anonymous';
      continue;
    }
    const kb = /^Rss:\s+(\d+) kB/.exec(line);
    if (kb) rss[mapping as keyof typeof rss] += Number(kb[1]) / 1024;
  }
  const mb = (bytes: number): number => round(bytes / 1048576, 1);
  return {
    rss: mb(memory.rss),
    nodeBinaryCode: round(rss.nodeCode, 1),
    nodeBinaryReadOnly: round(rss.nodeReadOnly, 1),
    sharedLibraries: round(rss.otherFiles, 1),
    v8HeapCommitted: mb(memory.heapTotal),
    v8HeapUsed: mb(memory.heapUsed),
    v8NewSpace: mb(memory.heapSpaces?.new_space ?? 0),
    v8OldSpace: mb(memory.heapSpaces?.old_space ?? 0),
    v8CodeSpace: mb(memory.heapSpaces?.code_space ?? 0),
    otherAnonymous: round(rss.anonymous - memory.heapTotal / 1048576, 1),
  };
}

type ProxyMemory = { rss: number; heapTotal: number; heapUsed: number; heapSpaces?: Record<string, number> };
/** An idle proxy's RSS, and where it is for the one run asked to break it down. */
type IdleMemory = { rssMB: number; breakdownMB?: Record<string, number> };
const TCP_BYTES = 256 * 1024 * 1024;

/** The app's ports in the pod: through the proxy (raw path, HTTP path, Toxiproxy) and direct (excluded from capture). */
const PORTS = { raw: 8080, http: 8081, tcp: 9000, direct: 18080, tcpDirect: 19000, anchor: 18090, anchorApi: 18474 } as const;

// HTTP on the raw, HTTP-path and direct ports, and a TCP source writing TCP_BYTES per connection (through Toxiproxy and direct).
const APP = `
import http from 'node:http'; import net from 'node:net';
const handler = (req, res) => { res.setHeader('content-type', 'text/plain'); res.end('ok'); };
for (const port of [${PORTS.raw}, ${PORTS.http}, ${PORTS.direct}]) http.createServer({ keepAliveTimeout: 60000 }, handler).listen(port, '0.0.0.0');
const chunk = Buffer.alloc(1 << 20, 0x61);
for (const port of [${PORTS.tcp}, ${PORTS.tcpDirect}]) net.createServer(sock => { let left = ${TCP_BYTES}; sock.on('error', () => {});
  const pump = () => { while (left > 0) { left -= chunk.length; if (!sock.write(chunk)) return void sock.once('drain', pump); } sock.end(); }; pump(); }).listen(port, '0.0.0.0');
setTimeout(() => console.log('app ready'), 200);
`;

/**
 * The floor under an idle proxy with the Kubernetes source: a plain Node
 * program with no library and none of our code doing only the proxy's I/O,
 * run by the same harness as the proxy (same arguments and Node flags): the
 * admin, metrics and health servers, a listener per wiring port, one TLS
 * list+watch of the pod's ChaosPolicies, and a toxiproxy-server child polled
 * over node:http. What the proxy idles at above this is libraries and our code.
 */
const IO_FLOOR = `
// Node's modules through require(), as the proxy's bundle loads them (images/build.ts: an ESM import of node:http loads Node's bundled undici).
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const http = require('node:http'); const https = require('node:https'); const net = require('node:net'); const { spawn } = require('node:child_process'); const { readFileSync } = require('node:fs');
const arg = (n) => process.argv[process.argv.indexOf('--' + n) + 1];
const server = 'https://' + process.env.KUBERNETES_SERVICE_HOST + ':' + process.env.KUBERNETES_SERVICE_PORT;
const ca = readFileSync('${TOKEN_MOUNT_PATH}/ca.crt'); const token = readFileSync('${TOKEN_MOUNT_PATH}/token', 'utf8').trim();
let up = false; let policies = 0;
const json = (res, body) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(body)); };
http.createServer((req, res) => req.url === '/plan' ? json(res, { http: Array(policies).fill({}) }) : json(res, { toxiproxy: { up }, memory: process.memoryUsage() })).listen(+arg('admin-port'), '127.0.0.1');
http.createServer((req, res) => res.end('')).listen(+arg('metrics-port'), '127.0.0.1');
http.createServer((req, res) => json(res, { ready: true })).listen(+arg('health-port'), '127.0.0.1');
const { capture } = JSON.parse(readFileSync(arg('wiring-file'), 'utf8'));
for (const port of [capture.inboundPort, capture.outboundPort]) net.createServer((s) => s.destroy()).listen(port, '127.0.0.1');
const toxiproxy = spawn(arg('toxiproxy-bin'), ['-host', '127.0.0.1', '-port', arg('toxiproxy-port')], { stdio: 'ignore' });
process.on('SIGTERM', () => { toxiproxy.kill(); process.exit(0); });
const poll = () => http.get('http://127.0.0.1:' + arg('toxiproxy-port') + '/version', (r) => { r.resume(); up = true; }).on('error', () => setTimeout(poll, 25));
poll();
const path = '/apis/${API_GROUP}/${API_VERSION}/namespaces/' + process.env.POD_NAMESPACE + '/chaospolicies';
const agent = new https.Agent({ ca, keepAlive: true }); const headers = { authorization: 'Bearer ' + token };
https.get(server + path, { agent, headers }, (r) => { let body = ''; r.on('data', (d) => (body += d)).on('end', () => {
  const list = JSON.parse(body); policies = list.items.length;
  https.get(server + path + '?watch=1&resourceVersion=' + list.metadata.resourceVersion, { agent, headers }, (w) => w.resume());
}); });
`;


/** The webhook's FAULTLINE_PLAN for an injected pod. */
function proxyPlanOf(pod: ReturnType<typeof injectedPod>): InitPlan {
  const proxy = pod.spec!.initContainers!.find((c) => c.name === PROXY_CONTAINER_NAME)!;
  return JSON.parse(proxy.env!.find((e) => e.name === PLAN_ENV)!.value!) as InitPlan;
}

type SidecarPorts = Record<'admin' | 'health' | 'metrics' | 'toxiproxy', number>;

/** Distinct free ports for a sidecar's admin, health, metrics and Toxiproxy servers. */
async function sidecarPorts(): Promise<SidecarPorts> {
  const [admin, health, metrics, toxiproxy] = await freePorts(4);
  return { admin: admin!, health: health!, metrics: metrics!, toxiproxy: toxiproxy! };
}

async function waitHttp(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fetch(url).then((r) => r.ok, () => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} never became ready`);
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) resolve(buf.slice(0, i));
    });
    child.once('exit', (code) => reject(new Error(`child exited with ${code}`)));
  });
}

/** RSS (MB) of a fresh Node process after it ran `code` (an ES module) and collected garbage. */
async function gcRssMB(code: string): Promise<number> {
  const measure = `${code}\nawait new Promise((r) => setTimeout(r, 500)); gc(); gc(); console.log(process.memoryUsage().rss);`;
  const child = spawn(NODE, ['--expose-gc', '--input-type=module', '-e', measure], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  return round(Number(await firstLine(child)) / 1048576, 1);
}

/**
 * Where an idle proxy's memory goes before any of its own code: a bare Node
 * process, and the same one-line module loaded as .ts (type stripping brings
 * in its TypeScript parser) and as .js.
 */
async function rssBaseline(dir: string): Promise<Record<string, number>> {
  await writeFile(path.join(dir, 'same.ts'), 'export const x = 1;\n');
  await writeFile(path.join(dir, 'same.js'), 'export const x = 1;\n');
  const bare = await gcRssMB('');
  const js = await gcRssMB(`await import(${JSON.stringify(path.join(dir, 'same.js'))});`);
  const ts = await gcRssMB(`await import(${JSON.stringify(path.join(dir, 'same.ts'))});`);
  return { bareNode: bare, jsEntry: js, tsEntry: ts, typeStripping: round(ts - js, 1) };
}

/** Where the load goes: a port on loopback, or a host and port (the pod). */
type Target = number | { host: string; port: number };
const hostPort = (t: Target): { host: string; port: number } => (typeof t === 'number' ? { host: '127.0.0.1', port: t } : t);
const urlOf = (t: Target, reqPath = '/'): string => `http://${hostPort(t).host}:${hostPort(t).port}${reqPath}`;

async function maxRate(to: Target, reqPath = '/'): Promise<{ rps: number; p50: number; p99: number }> {
  const r = await autocannon({ url: urlOf(to, reqPath), connections: 32, duration: DURATION_S });
  return { rps: Math.round(r.requests.average), p50: r.latency.p50, p99: r.latency.p99 };
}

async function tcpThroughput(from: { host: string; port: number }): Promise<number> {
  const t0 = performance.now();
  let n = 0;
  await new Promise<void>((resolve, reject) => {
    const s = net.connect(from);
    s.on('data', (c: Buffer) => (n += c.length));
    s.on('end', () => resolve());
    s.on('error', reject);
  });
  if (n !== TCP_BYTES) throw new Error(`TCP transfer incomplete: ${n} of ${TCP_BYTES} bytes`);
  return round(n / 1048576 / ((performance.now() - t0) / 1000), 1);
}

/** The two candidate libraries in the same harness: max rate and what 5k aborted slow requests leave behind. */
async function compareProxyLibraries(upstream: { host: string; port: number }): Promise<Record<string, unknown>> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const slow = http.createServer((_req, res) => setTimeout(() => res.end('late'), 5_000));
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
  const slowPort = (slow.address() as net.AddressInfo).port;
  const libs: Record<string, { createProxyServer: (o: object) => { web: (...a: unknown[]) => void; on: (e: string, f: (...a: unknown[]) => void) => void } }> = {
    'http-proxy-3': (await import('http-proxy-3')) as never,
    'http-proxy': ((await import('http-proxy')) as unknown as { default: never }).default,
  };
  const out: Record<string, unknown> = {};
  for (const [name, lib] of Object.entries(libs)) {
    const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 256 });
    const proxy = lib.createProxyServer({ agent });
    proxy.on('error', (_e, _q, res) => (res as http.ServerResponse).destroy());
    const server = http.createServer((req, res) => {
      proxy.web(req, res, { target: req.url === '/slow' ? `http://127.0.0.1:${slowPort}` : urlOf(upstream, '') });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const rate = await maxRate(port);
    gc();
    const heap0 = process.memoryUsage().heapUsed;
    for (let i = 0; i < 10; i++) {
      await Promise.all(
        Array.from({ length: 500 }, () =>
          new Promise<void>((resolve) => {
            const req = http.get({ host: '127.0.0.1', port, path: '/slow', agent: false });
            req.on('error', () => {});
            req.on('close', () => resolve());
            setTimeout(() => req.destroy(), 50);
          }),
        ),
      );
    }
    await new Promise((r) => setTimeout(r, 300));
    gc();
    const upstreamSockets = Object.values(agent.sockets).reduce((n, list) => n + (list?.length ?? 0), 0);
    out[name] = { ...rate, abortedSlowRequests: 5000, heapGrowthMB: round((process.memoryUsage().heapUsed - heap0) / 1048576, 1), upstreamSocketsLeftOpen: upstreamSockets };
    server.closeAllConnections();
    server.close();
    agent.destroy();
  }
  slow.closeAllConnections();
  slow.close();
  return out;
}

/**
 * Toxiproxy's plain pass-through (one proxy, no toxics) inside the pod, in
 * front of the app on its excluded port: the load crosses the same veth to
 * the pod and the same loopback hop to the app as on the proxy's paths.
 */
async function startToxiproxyAnchor(px: PodProxy, bin: string, appPort: number): Promise<{ host: string; port: number }> {
  await px.pod.spawnInPod('toxiproxy-anchor', [bin, '-host', '0.0.0.0', '-port', String(PORTS.anchorApi)], () => true);
  const api = px.endpoint(PORTS.anchorApi);
  await waitHttp(`http://${api.host}:${api.port}/version`);
  const r = await fetch(`http://${api.host}:${api.port}/proxies`, { method: 'POST', body: JSON.stringify({ name: 'anchor', listen: `0.0.0.0:${PORTS.anchor}`, upstream: `127.0.0.1:${appPort}` }) });
  if (!r.ok) throw new Error(`toxiproxy anchor: ${r.status} ${await r.text()}`);
  return px.endpoint(PORTS.anchor);
}

/**
 * argv run in a mount namespace of its own where the service-account token
 * volume of an injected pod is at TOKEN_MOUNT_PATH, as the kubelet mounts it:
 * a tmpfs over /var/run (or /run, where it links to) holds the mount point, so
 * nothing is created on the host, and both go with the process.
 */
function withTokenVolume(tokenDir: string, argv: string[]): string[] {
  if (!TOKEN_MOUNT_PATH.startsWith('/var/run/')) throw new Error(`withTokenVolume covers /var/run only, and the token mount is ${TOKEN_MOUNT_PATH}`);
  const script = `mount -t tmpfs -o size=1m,mode=0755 faultline-bench "$(readlink -f /var/run)" && mkdir -p ${TOKEN_MOUNT_PATH} && mount --bind "$0" ${TOKEN_MOUNT_PATH} && exec "$@"`;
  return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-euc', script, tokenDir, ...argv];
}

/**
 * Idle RSS of a sidecar whose policy source is the Kubernetes list+watch, as
 * in a pod: the in-cluster configuration (KUBERNETES_SERVICE_HOST/PORT, the
 * token volume: withTokenVolume), and one ChaosPolicy that targets this pod
 * (so the planner and the watch have really run) served by the HTTPS
 * list/watch emulator of the unit tests. The sidecar is stopped again before
 * the load tests.
 */
async function measureKubernetesSource(
  dir: string,
  startSidecar: (args: string[], p: SidecarPorts, env: NodeJS.ProcessEnv, cli: string, nodeFlags: string[], tokenDir?: string) => Promise<ChildProcess>,
  idleMemory: (adminPort: number, child?: ChildProcess) => Promise<IdleMemory>,
  cli: string,
  nodeFlags: string[],
  breakdown = false,
): Promise<IdleMemory> {
  const namespace = 'bench';
  const podName = 'bench-pod';
  const api = await FakeKubeApiserver.start(`/apis/${API_GROUP}/${API_VERSION}/namespaces/${namespace}/chaospolicies`);
  try {
    api.token = 'bench-token';
    api.upsert('bench', {
      apiVersion: API_GROUP_VERSION,
      kind: 'ChaosPolicy',
      spec: { duration: '1h', http: [{ match: { path: { exact: '/never' } }, abort: { status: 500, percent: 100 } }] },
      status: { targets: [podName], startedAt: new Date().toISOString() },
    });
    const tokenDir = path.join(dir, 'serviceaccount');
    await mkdir(tokenDir, { recursive: true });
    await writeFile(path.join(tokenDir, 'token'), api.token);
    await writeFile(path.join(tokenDir, 'ca.crt'), api.ca);
    const server = new URL(api.url);
    const env = { POD_NAMESPACE: namespace, POD_NAME: podName, KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port };
    const ports = await sidecarPorts();
    const child = await startSidecar([], ports, env, cli, nodeFlags, tokenDir);
    try {
      // Measured only once the policy is in the plan and the watch is open: the source has really run.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const plan = (await (await fetch(`http://127.0.0.1:${ports.admin}/plan`)).json()) as { http: unknown[] };
        if (plan.http.length === 1 && api.openWatches === 1) break;
        if (Date.now() > deadline) throw new Error(`the Kubernetes source did not sync: plan ${JSON.stringify(plan)}, ${api.openWatches} open watches`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return await idleMemory(ports.admin, breakdown ? child : undefined);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  } finally {
    await api.close();
  }
}

async function main(): Promise<void> {
  // The proxy is measured as the images run it: compiled JavaScript.
  const build = spawn(NODE, [path.join(ROOT, 'images', 'build.ts')], { stdio: ['ignore', 'ignore', 'inherit'] });
  if ((await new Promise((r) => build.once('exit', r))) !== 0) throw new Error('npm run build failed');
  if (process.getuid?.() !== 0) throw new Error('bench:sidecar needs root: the proxy runs in a network namespace, with nft capture');
  const dir = await mkdtemp(path.join(tmpdir(), 'faultline-bench-'));
  const children: ChildProcess[] = [];
  let pod: PodProxy | undefined;
  try {
    const rawApp = PORTS.direct;
    const httpApp = PORTS.http;
    const tcpApp = PORTS.tcp;
    const ports = await sidecarPorts();
    // The idle-memory runs below (no traffic) run the proxy on this host: the webhook's capture wiring on free ports.
    const wiringFile = path.join(dir, 'wiring.json');
    const [inboundPort, outboundPort] = (await freePorts(2)) as [number, number];
    const { wiring } = proxyPlanOf(injectedPod(appPod({ ports: [] })));
    await writeFile(wiringFile, JSON.stringify({ ...wiring, capture: { ...wiring.capture!, inboundPort, outboundPort } }));
    const expiresAt = Date.now() + 3600_000;
    const fault = (name: string, f: object): object => ({ chaosId: 'bench/bench', name, expiresAt, direction: 'inbound', ...f });
    const livePlan = {
        http: [
          // Never matches `/`: puts the port on the HTTP path at no fault cost.
          fault('never', { match: { port: httpApp, path: { exact: '/never' } }, abort: { status: 500, percent: 100 } }),
          fault('delay', { match: { port: httpApp, path: { exact: '/delay' } }, delay: { fixedMs: 100, jitterMs: 0, percent: 100 } }),
          fault('abort', { match: { port: httpApp, path: { exact: '/abort' } }, abort: { status: 503, percent: 10 } }),
        ],
        // latency 0: the cheapest toxic, so the number is Toxiproxy's own cost.
        tcp: [{ chaosId: 'bench/bench', expiresAt, direction: 'inbound', port: tcpApp, toxics: [{ name: 'noop', type: 'latency', stream: 'downstream', toxicity: 1, attributes: { latency: 0 } }] }],
      } as LiveFaultPlan;
    const { 'toxiproxy-server': toxiproxy } = await ensureBinaries();
    await ensureOpenLoop(); // built now if need be, not in the middle of the measurements
    type Stats = { memory: ProxyMemory; toxiproxy: { up: boolean } };
    const image = await proxyImageRuntime();
    const nodeFlags = image.nodeFlags;
    const stats = async (adminPort = ports.admin): Promise<Stats> => (await fetch(`http://127.0.0.1:${adminPort}/stats`)).json() as never;
    /** Starts `faultline sidecar` with `args` on `p`'s ports; resolves once it is ready and Toxiproxy is up. */
    const startSidecar = async (args: string[], p: typeof ports, env: NodeJS.ProcessEnv = {}, cli = CLI.compiled, flags = nodeFlags, tokenDir?: string): Promise<ChildProcess> => {
      // The image's ENV goes with its flags: "without the flags" runs without both.
      const imageEnv = flags.length > 0 ? image.env : {};
      const argv = [
        NODE, ...flags, cli, 'sidecar', '--wiring-file', wiringFile, ...args,
        '--toxiproxy-bin', toxiproxy, '--listen-host', '127.0.0.1',
        ...Object.entries(p).flatMap(([k, v]) => [`--${k}-port`, String(v)]),
      ];
      // unshare and sh exec in turn, so the child's pid is the proxy's (memoryBreakdownMB reads it).
      const [command, ...commandArgs] = tokenDir === undefined ? argv : withTokenVolume(tokenDir, argv);
      const child = spawn(
        command!,
        commandArgs,
        // The pod's environment, not this shell's (podEnv).
        { stdio: ['ignore', 'ignore', 'inherit'], env: podEnv(imageEnv, { FAULTLINE_LOG_LEVEL: 'warn', POD_IP: '127.0.0.1', ...env }) },
      );
      children.push(child);
      await waitHttp(`http://127.0.0.1:${p.health}/healthz/ready`);
      while (!(await stats(p.admin)).toxiproxy.up) await new Promise((r) => setTimeout(r, 50));
      return child;
    };
    /** RSS once a started sidecar has settled (its startup garbage is not collected on purpose: this is what a pod sees). */
    const idleMemory = async (adminPort: number, child?: ChildProcess): Promise<IdleMemory> => {
      await new Promise((r) => setTimeout(r, 1_000));
      const { memory } = await stats(adminPort);
      return { rssMB: round(memory.rss / 1048576, 1), ...(child?.pid ? { breakdownMB: await memoryBreakdownMB(child.pid, memory) } : {}) };
    };

    // The Kubernetes source first, measured and stopped before the load runs:
    // as the image runs it, then without the image's Node flags (their effect, same run).
    const kubernetes = await measureKubernetesSource(dir, startSidecar, idleMemory, CLI.compiled, nodeFlags, true);
    const rssIdleKubernetesMB = kubernetes.rssMB;
    const rssIdleKubernetesNoFlagsMB = (await measureKubernetesSource(dir, startSidecar, idleMemory, CLI.compiled, [])).rssMB;
    const rssIdleKubernetesSourcesMB = (await measureKubernetesSource(dir, startSidecar, idleMemory, CLI.sources, nodeFlags)).rssMB;
    await writeFile(path.join(dir, 'io-floor.mjs'), IO_FLOOR);
    const ioFloorKubernetesMB = (await measureKubernetesSource(dir, startSidecar, idleMemory, path.join(dir, 'io-floor.mjs'), nodeFlags)).rssMB;
    const baseline = await rssBaseline(dir);

    // The pod: the app, and the proxy as the image runs it, with the plan above.
    pod = await PodProxy.start({
      pod: appPod({ ports: [], annotations: { [EXCLUDE_INBOUND_PORTS_ANNOTATION]: `${PORTS.direct},${PORTS.tcpDirect},${PORTS.anchor},${PORTS.anchorApi}` } }),
      cli: CLI.compiled,
      nodeArgs: nodeFlags,
      env: { ...image.env, FAULTLINE_LOG_LEVEL: 'warn' },
      toxiproxy: true,
      livePlan,
    });
    const px = pod;
    await px.pod.spawnInPod('app', [NODE, '--input-type=module', '-e', APP], (p) => p.stdout.includes('app ready'));
    await px.apply(livePlan);
    const at = (port: number): { host: string; port: number } => px.endpoint(port);
    const podStats = async (): Promise<Stats> => px.admin<Stats>('/stats');
    await new Promise((r) => setTimeout(r, 1_000));
    const rssIdleMB = round((await podStats()).memory.rss / 1048576, 1);

    // Warm-up, then max rate with RSS sampled under load.
    for (const port of [rawApp, PORTS.raw, PORTS.http]) await autocannon({ url: urlOf(at(port)), connections: 32, duration: 1 });
    let rssLoadMB = 0;
    const sampler = setInterval(() => void podStats().then((s) => (rssLoadMB = Math.max(rssLoadMB, round(s.memory.rss / 1048576, 1)))), 250);
    const anchor = await startToxiproxyAnchor(px, toxiproxy, rawApp);
    const direct = await maxRate(at(rawApp));
    const viaToxiproxy = await maxRate(anchor);
    const viaRaw = await maxRate(at(PORTS.raw));
    const viaHttp = await maxRate(at(PORTS.http));
    clearInterval(sampler);
    // The sampled peak can fall between samples; the kernel's high-water mark cannot (it includes startup).
    const hwmLoadMB = (await rssMB(px.proc.child.pid!)).peak;

    const N = 5 * 1000;
    const fixedRuns: OpenLoopResult[] = [];
    const fixed = async (port: number): Promise<{ p50: number; p90: number; p99: number; p999: number; max: number; failures: number }> => {
      const r = await openLoop({ url: urlOf(at(port)), rate: 1000, count: N, connections: 16, warmupS: 1 });
      fixedRuns.push(r);
      return { ...r.latencyMs, failures: r.failures };
    };
    const fixedDirect = await fixed(rawApp);
    const fixedRaw = await fixed(PORTS.raw);
    const fixedHttp = await fixed(PORTS.http);

    const tcpDirect = await tcpThroughput(at(PORTS.tcpDirect));
    const tcpToxiproxy = await tcpThroughput(at(PORTS.tcp));

    // Delay accuracy. Requests start every 5 ms (open loop, ~20 in flight) so
    // their timers do not all fire in one tick and queue behind each other; the
    // error is latency − 100 ms − the same path's latency without a delay
    // (median, measured the same way), i.e. how far the injected delay is off.
    const agent = new http.Agent({ keepAlive: true });
    const paced = async (path: string, count: number): Promise<number[]> => {
      const latencies: number[] = [];
      const inFlight: Array<Promise<void>> = [];
      for (let i = 0; i < count; i++) {
        const t0 = performance.now();
        inFlight.push(
          new Promise<void>((resolve, reject) =>
            http.get({ ...at(PORTS.http), path, agent }, (res) => res.resume().on('end', resolve)).on('error', reject),
          ).then(() => {
            latencies.push(performance.now() - t0);
          }),
        );
        await new Promise((r) => setTimeout(r, 5));
      }
      await Promise.all(inFlight);
      return latencies.sort((x, y) => x - y);
    };
    await paced('/warmup', 50);
    const undelayedMs = percentile(await paced('/plain', 200), 50);
    const errors = (await paced('/delay', 400)).map((ms) => ms - 100 - undelayedMs);
    agent.destroy();

    const abort = await autocannon({ url: urlOf(at(PORTS.http), '/abort'), connections: 20, pipelining: 10, amount: 100_000 });
    const aborted = abort.statusCodeStats['503']?.count ?? 0;
    const answered = Object.values(abort.statusCodeStats).reduce((n, s) => n + Number(s.count), 0);
    const hwmAllPhasesMB = (await rssMB(px.proc.child.pid!)).peak;

    const libraries = await compareProxyLibraries(at(rawApp));

    await pod.close();
    pod = undefined;
    // Capture last: it runs its own apps, proxies and Toxiproxy in namespaces.
    const capture = await captureBench({ durationS: DURATION_S, rounds: Number(process.env.BENCH_ROUNDS ?? 1), baseline: process.env.BENCH_BASELINE ?? 'main' });

    const addedP50 = round(fixedRaw.p50 - fixedDirect.p50);
    // Direct requests queueing for milliseconds, or a generator that fell behind its rate: the machine could not
    // hold 1,000 req/s, so nothing added can be read off it. Failed requests: measured, and a miss.
    const { behind: generatorBehind, failed } = unreadableRuns(fixedRuns);
    const overloaded = fixedDirect.p50 > 2 || generatorBehind.length > 0;
    const fixedFailed = failed !== undefined;
    const addedP99 = round(fixedRaw.p99 - fixedDirect.p99);
    const delayP99 = round(percentile(errors, 99));
    const abortShare = round((100 * Number(aborted)) / answered, 2);
    console.log(
      JSON.stringify(
        {
          benchmark: 'sidecar',
          node: process.version,
          durationPerRunS: DURATION_S,
          loadAvg1m: loadavg()[0],
          maxRate: {
            direct,
            toxiproxy: viaToxiproxy,
            sidecarRawPath: viaRaw,
            sidecarHttpPath: viaHttp,
            toxiproxyShareOfDirect: round(viaToxiproxy.rps / direct.rps, 2),
            rawShareOfDirect: round(viaRaw.rps / direct.rps, 2),
            httpShareOfDirect: round(viaHttp.rps / direct.rps, 2),
          },
          at1000rps: {
            generator: describeGenerator(fixedRuns[0]!),
            requests: N,
            overloaded,
            ...(generatorBehind.length > 0 ? { generatorBehind } : {}),
            ...(failed ? { firstError: failed.firstError } : {}),
            direct: fixedDirect,
            sidecarRawPath: fixedRaw,
            sidecarHttpPath: fixedHttp,
            addedMs: { raw: { p50: addedP50, p99: addedP99 }, http: { p50: round(fixedHttp.p50 - fixedDirect.p50), p99: round(fixedHttp.p99 - fixedDirect.p99) } },
          },
          rssMB: {
            idle: rssIdleMB,
            idleKubernetesSource: rssIdleKubernetesMB,
            // The same without the image's Node flags and ENV (nodeFlags, imageEnv), for their effect.
            idleKubernetesSourceWithoutNodeFlags: rssIdleKubernetesNoFlagsMB,
            nodeFlags,
            imageEnv: image.env,
            idleKubernetesSourceBreakdown: kubernetes.breakdownMB,
            // The same, run from the TypeScript sources (type stripping) instead of dist/.
            idleKubernetesSourceFromTypeScript: rssIdleKubernetesSourcesMB,
            underLoadPeak: rssLoadMB,
            underLoadHighWaterMark: hwmLoadMB,
            // The same mark read after the later loads too: the TCP transfer through Toxiproxy, the delay run and the abort run (20 connections, 10 pipelined).
            allPhasesHighWaterMark: hwmAllPhasesMB,
            // gc'd, fresh processes: what no code of ours can take away.
            baseline,
            // The proxy's I/O alone, no library, no code of ours (IO_FLOOR): what the Kubernetes source's idle RSS cannot go below.
            ioFloorKubernetesSource: ioFloorKubernetesMB,
          },
          tcpMBps: { direct: tcpDirect, throughToxiproxy: tcpToxiproxy, share: round(tcpToxiproxy / tcpDirect, 2) },
          delay100ms: { requests: errors.length, undelayedPathMsP50: round(undelayedMs), errorMsP50: round(percentile(errors, 50)), errorMsP99: delayP99, errorMsMin: round(errors[0]!) },
          abort10pct: { requests: answered, aborted: Number(aborted), sharePct: abortShare, errors: abort.errors },
          proxyLibraries: libraries,
          capture,
          targets: {
            addedP50le025ms: fixedFailed ? false : overloaded ? null : addedP50 <= 0.25,
            addedP99le1ms: fixedFailed ? false : overloaded ? null : addedP99 <= 1,
            throughputGe50pct: viaRaw.rps / direct.rps >= 0.5,
            rssIdleLe60MB: rssIdleMB <= 60,
            rssIdleKubernetesLe60MB: rssIdleKubernetesMB <= 60,
            // The high-water mark: a release between samples must not pass for a lower peak.
            rssUnderLoadPeakLe90MB: hwmLoadMB <= 90,
            delayErrorP99le2ms: delayP99 <= 2,
            abortShareWithin1pt: Math.abs(abortShare - 10) <= 1,
            rawMatchesToxiproxy: viaRaw.rps >= viaToxiproxy.rps,
          },
        },
        null,
        2,
      ),
    );
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await pod?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
