// Open-loop, fixed-rate HTTPS load generator for bench/webhook.ts, run as its
// own process:
//
//   node bench/webhook-load.ts '{"port":8443,"caFile":"…","bodyFile":"…","rate":1000,"durationS":10}'
//
// Prints one JSON line (LoadResult) on stdout and exits.
//
// Why a separate process: the benchmark driver, the server under test and the
// generator each have an event loop; when two of them share one, every GC pause
// or timer burst of one is charged to the other's latency. With the generator
// in the driver's process a bare Node HTTPS server answering a fixed body came
// out at p99 ≈ 15 ms, which is the benchmark measuring itself.
//
// Why open loop: request i is due at start + i/rate whether or not earlier
// requests have been answered, and its latency runs from that due time, not
// from when it was actually written. A server stall therefore costs every
// request that should have been sent during it (no coordinated omission), and
// any lateness of the generator itself is charged too — the conservative
// side. The generator's own lateness is reported separately (sendLag) so a
// reader can tell a slow server from a late generator, and the bare baseline,
// run through this same generator, shows the floor it imposes.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import type { Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import { summarize, type Summary } from './webhook-stats.ts';

export interface LoadConfig {
  port: number;
  host?: string;
  path?: string;
  /** PEM file of the CA that signed the server's certificate. */
  caFile: string;
  /** Request body (sent as application/json). */
  bodyFile: string;
  /** Requests per second. */
  rate: number;
  /** Measured seconds, after warmupS. */
  durationS: number;
  /** Seconds at the same rate whose samples are discarded (JIT, TLS handshakes). Default 1. */
  warmupS?: number;
  /** Keep-alive connections at most; a request finding all busy waits for one, and that wait counts. Default 32. */
  connections?: number;
}

export interface LoadResult extends Summary {
  targetRps: number;
  /** 200 responses among the measured requests, per second of the measured window. */
  achievedRps: number;
  samples: number;
  failures: number;
  /** Latency from the moment each request was actually handed to the HTTP client (what a closed-loop tool reports). */
  fromSend: Pick<Summary, 'p50Ms' | 'p99Ms' | 'p999Ms'>;
  /** How late the generator dispatched requests relative to their due time. */
  sendLag: Pick<Summary, 'p50Ms' | 'p99Ms' | 'maxMs'>;
  /** Most requests outstanding at once during the measured window. */
  maxInflight: number;
  /** Distinct connections requests went out on: all opened before the clock starts, so more than `connections` means some were re-opened mid-run. */
  connectionsUsed: number;
}

const REQUEST_TIMEOUT_MS = 10_000;

// Plain JS (eval'd worker): sleeps until each due time on an absolute clock
// (timeOrigin + now agrees across threads), then posts the request number.
const CLOCK = `
const { parentPort, workerData: { start, rate, total } } = require('node:worker_threads');
const cell = new Int32Array(new SharedArrayBuffer(4));
const now = () => performance.timeOrigin + performance.now();
for (let i = 0; i < total; i++) {
  const wait = start + (i * 1000) / rate - now();
  if (wait > 0) Atomics.wait(cell, 0, 0, wait);
  parentPort.postMessage(i);
}
`;

/** One request outside the measurement (connection set-up). */
function warm(agent: Agent, cfg: LoadConfig, payload: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: cfg.host ?? '127.0.0.1', port: cfg.port, path: cfg.path ?? '/mutate/pods', method: 'POST', agent,
        headers: { 'content-type': 'application/json', 'content-length': payload.length } },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`warm-up request: HTTP ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function runLoad(cfg: LoadConfig): Promise<LoadResult> {
  const payload = readFileSync(cfg.bodyFile);
  const warmupS = cfg.warmupS ?? 1;
  const agent = new Agent({
    keepAlive: true,
    maxSockets: cfg.connections ?? 32,
    ca: readFileSync(cfg.caFile),
    // Reuse the most recently freed connection: at ~1 request in flight the
    // same one or two stay warm instead of cycling through all of them.
    scheduling: 'lifo',
  });
  const total = Math.round(cfg.rate * (warmupS + cfg.durationS));
  const firstMeasured = Math.round(cfg.rate * warmupS);
  const measured = total - firstMeasured;
  // Indexed by request number minus firstMeasured; NaN = failed or not measured.
  const fromDue = new Float64Array(measured).fill(NaN);
  const fromSend = new Float64Array(measured).fill(NaN);
  const lag = new Float64Array(measured);
  const sockets = new Set<Socket>();
  let failures = 0;
  let inflight = 0;
  let maxInflight = 0;
  let lastEnd = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  let sent = 0;
  let finished = 0;

  const finish = (i: number, due: number, sentAt: number, ok: boolean): void => {
    const now = performance.now();
    inflight--;
    const m = i - firstMeasured;
    if (m >= 0) {
      if (ok) {
        fromDue[m] = now - due;
        fromSend[m] = now - sentAt;
        lastEnd = now;
      } else failures++;
    }
    if (++finished === total) resolveDone();
  };

  const send = (i: number, due: number): void => {
    const sentAt = performance.now();
    if (i >= firstMeasured) lag[i - firstMeasured] = sentAt - due;
    if (++inflight > maxInflight && i >= firstMeasured) maxInflight = inflight;
    let settled = false;
    const settle = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      finish(i, due, sentAt, ok);
    };
    const req = request(
      {
        host: cfg.host ?? '127.0.0.1',
        port: cfg.port,
        path: cfg.path ?? '/mutate/pods',
        method: 'POST',
        agent,
        timeout: REQUEST_TIMEOUT_MS,
        headers: { 'content-type': 'application/json', 'content-length': payload.length },
      },
      (res) => {
        res.resume();
        res.on('end', () => settle(res.statusCode === 200));
        res.on('error', () => settle(false));
      },
    );
    req.on('socket', (s: Socket) => sockets.add(s));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => settle(false));
    req.end(payload);
  };

  // Open every connection before the clock starts: a TLS handshake in the
  // middle of the run would be the generator's cost, not the server's.
  await Promise.all(Array.from({ length: cfg.connections ?? 32 }, () => warm(agent, cfg, payload)));

  // The clock is a worker thread that sleeps with Atomics.wait (sub-millisecond
  // precision, no CPU while waiting) and posts each request number when it
  // falls due. Node's own timers tick on a whole-millisecond loop clock, which
  // made requests leave ~0.75 ms late on average; a busy loop would be
  // punctual but would take a core from the server on a 2-core machine.
  const start = performance.timeOrigin + performance.now() + 20;
  const dueAt = (i: number): number => start - performance.timeOrigin + (i * 1000) / cfg.rate;
  const clock = new Worker(CLOCK, { eval: true, workerData: { start, rate: cfg.rate, total } });
  clock.on('message', (upTo: number) => {
    // Everything due by now, in order (the worker may have posted ahead of a busy main thread).
    while (sent <= upTo) {
      send(sent, dueAt(sent));
      sent++;
    }
  });
  clock.on('error', (err) => {
    process.stderr.write(`load generator clock failed: ${err.stack ?? err}\n`);
    process.exit(1);
  });
  await done;
  await clock.terminate();
  agent.destroy();

  const ok = (a: Float64Array): Float64Array => a.filter((v) => !Number.isNaN(v));
  const due = ok(fromDue);
  const s = summarize(due);
  const sendSummary = summarize(ok(fromSend));
  const lagSummary = summarize(lag);
  const windowMs = Math.max(lastEnd, dueAt(total)) - dueAt(firstMeasured);
  return {
    targetRps: cfg.rate,
    achievedRps: Math.round(due.length / (windowMs / 1000)),
    ...s,
    samples: due.length,
    failures,
    fromSend: { p50Ms: sendSummary.p50Ms, p99Ms: sendSummary.p99Ms, p999Ms: sendSummary.p999Ms },
    sendLag: { p50Ms: lagSummary.p50Ms, p99Ms: lagSummary.p99Ms, maxMs: lagSummary.maxMs },
    maxInflight,
    connectionsUsed: sockets.size,
  };
}

// A program, spawned by the driver; the driver imports only its types (erased).
const result = await runLoad(JSON.parse(process.argv[2] ?? '') as LoadConfig);
process.stdout.write(`${JSON.stringify(result)}\n`);
