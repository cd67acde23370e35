// Real servers and a real faultline-proxy for the datapath tests: an HTTP app
// (with a WebSocket endpoint), raw TCP apps, the sidecar in-process (timing
// checks, memory) or as a child process (`faultline sidecar`, end to end), a
// plan file the tests rewrite, and a log capture to assert fault events on.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { WebSocketServer } from 'ws';
import { ensureBinaries } from '../../controlplane/binaries.ts';
import { freePorts } from '../../common/ports.ts';
import type { LiveFaultPlan, TrafficWiring } from '../../contract/plans.ts';
import { FilePolicySource } from '../../sidecar/policy-source-file.ts';
import { Sidecar, type SidecarOptions } from '../../sidecar/sidecar.ts';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
/**
 * The CLI the datapath tests start: the TypeScript sources by default, the
 * images' compiled bundle under `npm run test:datapath:compiled`
 * (FAULTLINE_CLI=dist/faultline.js), so both run the same assertions.
 */
export const cliPath = path.resolve(repoRoot, process.env.FAULTLINE_CLI ?? path.join('bin', 'faultline.js'));

export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5_000, everyMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- apps

export interface App {
  port: number;
  close(): Promise<void>;
}

/** Binds an app's server and resolves with its port: loopback by default, or e.g. a pod's namespace (PodProxy.listen). */
export type Listen = (server: net.Server) => Promise<number>;

const onLoopback: Listen = async (server) => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
};

/** Where a client connects: a port on loopback, or an address and port. */
export type Endpoint = number | { host: string; port: number };

function hostPort(to: Endpoint): { host: string; port: number } {
  return typeof to === 'number' ? { host: '127.0.0.1', port: to } : to;
}

/**
 * HTTP app: GET /bytes?n=N streams N bytes; POST /echo streams the body back;
 * POST /count consumes the body and replies with its length; anything else
 * answers "ok <METHOD> <url>". /ws is a WebSocket echo.
 */
export async function startHttpApp(listen: Listen = onLoopback): Promise<App & { requests: number }> {
  const state = { requests: 0 };
  const server = http.createServer((req, res) => {
    state.requests++;
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/bytes') {
      const n = Number(url.searchParams.get('n') ?? 0);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let left = n;
      const pump = (): void => {
        while (left > 0) {
          const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
          left -= part.length;
          if (!res.write(part)) return void res.once('drain', pump);
        }
        res.end();
      };
      return pump();
    }
    if (url.pathname === '/echo') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      return void req.pipe(res);
    }
    if (url.pathname === '/count') {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => res.end(String(n)));
      return;
    }
    res.setHeader('content-type', 'text/plain');
    res.end(`ok ${req.method} ${req.url}`);
  });
  const wss = new WebSocketServer({ server, path: '/ws' });
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  const port = await listen(server);
  return {
    port,
    get requests() {
      return state.requests;
    },
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Raw TCP app. `echo` echoes; `source` writes `bytes` on connect then ends; `sink` counts what arrives. */
export async function startTcpApp(mode: 'echo' | 'source' | 'sink', bytes = 0, listen: Listen = onLoopback): Promise<App & { received: number[] }> {
  const received: number[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    if (mode === 'echo') return void s.pipe(s);
    if (mode === 'source') {
      const payload = randomBytes(bytes);
      s.end(payload);
      s.resume();
      return;
    }
    let n = 0;
    s.on('data', (c: Buffer) => (n += c.length));
    s.on('end', () => {
      received.push(n);
      s.end(String(n));
    });
  });
  const port = await listen(server);
  return {
    port,
    received,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

// ---------------------------------------------------------------- clients

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
}

export function request(to: Endpoint, reqPath: string, opts: { method?: string; headers?: Record<string, string>; body?: string; agent?: http.Agent } = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request({ ...hostPort(to), path: reqPath, method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Connects, optionally writes (then half-closes unless told not to), collects everything until the peer closes. */
export function tcpExchange(to: Endpoint, payload?: Buffer, opts: { halfClose?: boolean } = {}): Promise<{ data: Buffer; chunks: number; error?: NodeJS.ErrnoException; firstByteMs: number; ms: number }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let firstByteMs = -1;
    const chunks: Buffer[] = [];
    let error: NodeJS.ErrnoException | undefined;
    const s = net.connect({ ...hostPort(to), allowHalfOpen: true }, () => {
      if (payload) {
        if (opts.halfClose === false) s.write(payload);
        else s.end(payload);
      }
    });
    s.on('data', (c: Buffer) => {
      if (firstByteMs < 0) firstByteMs = performance.now() - t0;
      chunks.push(c);
    });
    s.on('end', () => s.end());
    s.on('error', (e: NodeJS.ErrnoException) => (error = e));
    s.on('close', () => {
      const r = { data: Buffer.concat(chunks), chunks: chunks.length, firstByteMs, ms: performance.now() - t0 };
      resolve(error ? { ...r, error } : r);
    });
  });
}

/**
 * One round trip through an echo app: write, wait for the whole echo, then
 * close. The connection stays open meanwhile, because Toxiproxy tears a link
 * down on the client's FIN and would drop data a latency toxic still holds.
 */
export function echoRoundTrip(to: Endpoint, msg = 'ping'): Promise<{ data: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let data = '';
    const s = net.connect(hostPort(to), () => s.write(msg));
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      data += d;
      if (data.length >= msg.length) {
        resolve({ data, ms: performance.now() - t0 });
        s.destroy();
      }
    });
    s.on('error', reject);
    s.on('close', () => reject(new Error(`closed after ${data.length} of ${msg.length} echoed bytes`)));
  });
}

// ---------------------------------------------------------------- sidecar

export async function toxiproxyBin(): Promise<string> {
  return (await ensureBinaries())['toxiproxy-server'];
}

/** Collects the sidecar's JSON log lines (fault events, restarts) for assertions. */
export class LogCapture {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly logger = pino(
    { level: 'debug', base: { component: 'sidecar' } },
    new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        for (const line of chunk.toString().split('\n')) if (line) this.lines.push(JSON.parse(line) as Record<string, unknown>);
        cb();
      },
    }),
  );
  find(msg: string, where: Record<string, unknown> = {}): Array<Record<string, unknown>> {
    return this.lines.filter((l) => l.msg === msg && Object.entries(where).every(([k, v]) => l[k] === v));
  }
}

export class PlanFile {
  readonly dir: string;
  readonly file: string;
  private constructor(dir: string) {
    this.dir = dir;
    this.file = path.join(dir, 'plan.json');
  }
  static async create(): Promise<PlanFile> {
    return new PlanFile(await mkdtemp(path.join(tmpdir(), 'faultline-sidecar-')));
  }
  last: string | undefined;
  /** Atomic replace, as a real writer should do. Returns false when the content did not change. */
  async write(plan: Partial<LiveFaultPlan>): Promise<boolean> {
    const text = JSON.stringify({ http: [], tcp: [], ...plan });
    if (text === this.last) return false;
    this.last = text;
    const tmp = `${this.file}.tmp`;
    await writeFile(tmp, text);
    await rename(tmp, this.file);
    return true;
  }
  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

export interface InProcess {
  sidecar: Sidecar;
  plan: PlanFile;
  log: LogCapture;
  /** Proxy listener port for the target with this app port (inbound) or upstream port (outbound). */
  portFor(port: number): number;
  /** Writes the plan and waits until the sidecar has applied it (and Toxiproxy converged, if used). */
  apply(plan: Partial<LiveFaultPlan>): Promise<void>;
  close(): Promise<void>;
}

export async function startInProcess(
  wiring: Pick<TrafficWiring, 'inbound' | 'outbound'>,
  opts: Partial<Pick<SidecarOptions, 'faultHeader' | 'handoffDelay' | 'toxiproxyBin' | 'faketimeFile'>> = {},
): Promise<InProcess> {
  const plan = await PlanFile.create();
  const log = new LogCapture();
  let sidecar: Sidecar;
  try {
    sidecar = await Sidecar.start({
      wiring: { proxyUid: 1337, excludeInboundPorts: [], ...wiring },
      upstreamHost: '127.0.0.1',
      listenHost: '127.0.0.1',
      source: new FilePolicySource(plan.file, log.logger),
      toxiproxyBin: opts.toxiproxyBin,
      toxiproxyPort: 0,
      adminPort: 0,
      healthPort: 0,
      metricsPort: 0,
      faultHeader: opts.faultHeader ?? false,
      faketimeFile: opts.faketimeFile ?? path.join(plan.dir, 'faketime.rc'),
      handoffDelay: opts.handoffDelay,
      log: log.logger,
    });
  } catch (err) {
    await plan.remove();
    throw err;
  }
  return {
    sidecar,
    plan,
    log,
    portFor(port) {
      const i = sidecar.targets.findIndex((t) => t.port === port);
      if (i < 0) throw new Error(`no listener for port ${port}`);
      return sidecar.listenPorts[i]!;
    },
    async apply(p) {
      const before = sidecar.metrics.stats.planUpdates;
      if (await plan.write(p)) await waitFor('the plan to be applied', () => sidecar.metrics.stats.planUpdates > before, 2_000);
      if (sidecar.reconciler && sidecar.supervisor) {
        await waitFor('toxiproxy to be up', () => sidecar.supervisor!.up, 10_000);
        await sidecar.reconciler.kick();
      }
    },
    async close() {
      await sidecar.close();
      await plan.remove();
    },
  };
}

export interface Child {
  proc: ChildProcess;
  ports: { admin: number; health: number; metrics: number; toxiproxy: number };
  stdout: string[];
  admin<T>(p: string): Promise<T>;
  stop(): Promise<void>;
}

/**
 * `node <cliPath> sidecar …` with fresh ports; resolves once /healthz/ready says 200.
 * `at`: the address the traffic and health listeners bind, and the health port (e2e: a pod's own loopback IP and its declared port).
 */
export async function startChild(args: string[], env: Record<string, string> = {}, at: { host: string; healthPort?: number } = { host: '127.0.0.1' }): Promise<Child> {
  const [admin, freeHealth, metrics, toxiproxy] = (await freePorts(4)) as [number, number, number, number];
  const health = at.healthPort ?? freeHealth;
  const ports = { admin, health, metrics, toxiproxy };
  const node = path.join(repoRoot, 'node_modules', '.bin', 'node');
  const proc = spawn(
    node,
    [
      cliPath, 'sidecar',
      '--admin-port', String(ports.admin), '--health-port', String(ports.health),
      '--metrics-port', String(ports.metrics), '--toxiproxy-port', String(ports.toxiproxy),
      '--listen-host', at.host,
      ...args,
    ],
    // info at least: tests assert on the fault events the child logs.
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FAULTLINE_LOG_LEVEL: 'info', ...env } },
  );
  const stdout: string[] = [];
  let stderr = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => stdout.push(...d.split('\n').filter(Boolean)));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const child: Child = {
    proc,
    ports,
    stdout,
    async admin<T>(p: string) {
      const res = await fetch(`http://127.0.0.1:${ports.admin}${p}`);
      return (await res.json()) as T;
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(t);
      }
    },
  };
  try {
    await waitFor(
      'the sidecar to become ready',
      async () => {
        if (proc.exitCode !== null) throw new Error(`sidecar exited with ${proc.exitCode}: ${stderr}\n${stdout.join('\n')}`);
        return fetch(`http://${at.host}:${ports.health}/healthz/ready`).then((r) => r.status === 200, () => false);
      },
      15_000,
      25,
    );
  } catch (err) {
    await child.stop();
    throw err;
  }
  return child;
}
