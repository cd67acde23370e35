// Real servers and clients for the datapath tests: an HTTP app (with a
// WebSocket endpoint) and raw TCP apps, served wherever `listen` binds them
// (a pod's namespace: netns-proxy.ts runs the proxy as in a pod), and the
// clients that reach them.

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { ensureBinaries } from '../../controlplane/binaries.ts';

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
