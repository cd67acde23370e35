// Mutating-review throughput and latency of `faultline webhook`, against a bare
// Node HTTPS server answering a fixed body on the same machine in the same run.
// Both servers run as child processes so the load generator never shares their
// event loop. Prints one JSON object.
//
//   npm run bench:webhook   (BENCH_DURATION_S=10 BENCH_CONNECTIONS=10 BENCH_RATE=1000)
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { Agent, request } from 'node:https';
import { readFileSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { makeTestCertificates } from '../test/support/webhook-tls.ts';
import { podReview } from '../test/support/webhook-server.ts';

interface AutocannonResult {
  requests: { average: number; total: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  duration: number;
}
interface AutocannonInstance extends PromiseLike<AutocannonResult> {
  on(event: 'response', listener: (client: unknown, status: number, bytes: number, ms: number) => void): void;
}
type Autocannon = (opts: Record<string, unknown>) => AutocannonInstance;
// autocannon ships no types; this is the slice used here.
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const RATE = Number(process.env.BENCH_RATE ?? 1000);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A Deployment pod (2 containers, probes, env, volumes) padded with the env a real service carries: ~6 KB. */
function reviewBody(): string {
  const pod = parse(readFileSync(join(ROOT, 'test/fixtures/pods/02-deployment-two-containers.yaml'), 'utf8')) as {
    spec: { containers: Array<{ env?: Array<{ name: string; value: string }> }> };
  };
  const env = pod.spec.containers[0]!.env!;
  for (let i = 0; env.length < 40; i++) env.push({ name: `FEATURE_FLAG_${i}`, value: `checkout.feature-${i}.enabled=true;rollout=25` });
  return JSON.stringify(podReview(pod, { uid: '6e1f2b7a-4c3d-4e5f-9a8b-7c6d5e4f3a2b', namespace: 'shop' }));
}

// The baseline: what TLS + HTTP/1.1 keep-alive cost on this machine, with no framework and no work.
const BARE_SERVER = `
const https = require('node:https');
const fs = require('node:fs');
const body = Buffer.from(JSON.stringify({apiVersion:'admission.k8s.io/v1',kind:'AdmissionReview',response:{uid:'x',allowed:true}}));
const dir = process.argv[1];
const server = https.createServer({cert: fs.readFileSync(dir + '/tls.crt'), key: fs.readFileSync(dir + '/tls.key')}, (req, res) => {
  req.resume();
  req.on('end', () => { res.writeHead(200, {'content-type': 'application/json', 'content-length': body.length}); res.end(body); });
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({msg: 'webhook listening', port: server.address().port})));
process.on('SIGTERM', () => process.exit(0));
`;

/**
 * Starts a server process logging at info (as in production: one line per
 * injection) into a file, so the load generator does not spend CPU reading
 * it, and resolves once it logs 'webhook listening'.
 */
async function startServer(args: string[], logFile: string): Promise<{ proc: ChildProcess; port: number }> {
  const out = await open(logFile, 'w');
  const proc = spawn(process.execPath, args, {
    env: { ...process.env, FAULTLINE_LOG_LEVEL: 'info', KUBERNETES_SERVICE_HOST: '' },
    stdio: ['ignore', out.fd, 'inherit'],
  });
  await out.close();
  let exited = false;
  proc.on('exit', () => (exited = true));
  for (let waited = 0; waited < 20_000; waited += 50) {
    const line = (await readFile(logFile, 'utf8')).split('\n').find((l) => l.includes('webhook listening'));
    if (line) return { proc, port: (JSON.parse(line) as { port: number }).port };
    if (exited) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill('SIGKILL');
  throw new Error(`server ${args.join(' ')} did not start: ${await readFile(logFile, 'utf8')}`);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const round = (n: number): number => Math.round(n * 1000) / 1000;

/** One autocannon run; latency percentiles come from every response's own time (autocannon's histogram has 1 ms resolution). */
async function load(port: number, body: string, overallRate?: number) {
  const latencies: number[] = [];
  const instance = autocannon({
    url: `https://127.0.0.1:${port}/mutate/pods`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections: CONNECTIONS,
    pipelining: 1,
    duration: DURATION_S,
    ...(overallRate ? { overallRate } : {}),
  });
  instance.on('response', (_c, status, _b, ms) => {
    if (status === 200) latencies.push(ms);
  });
  const result = await instance;
  latencies.sort((a, b) => a - b);
  return {
    rps: Math.round(latencies.length / result.duration),
    p50Ms: round(percentile(latencies, 50)),
    p99Ms: round(percentile(latencies, 99)),
    p999Ms: round(percentile(latencies, 99.9)),
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

/**
 * Open-loop load at an even `rate`: one request due every 1/rate s, each timed
 * from when it was due (so a stalled server is charged for the queue it causes).
 * autocannon's overallRate instead lets every connection send its per-second
 * quota back to back at the start of each second, which measures a burst of
 * `connections` concurrent requests rather than a steady 1,000/s.
 */
async function paced(port: number, body: string, ca: Buffer, rate: number) {
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS * 2, ca });
  const payload = Buffer.from(body);
  const latencies: number[] = [];
  let failures = 0;
  const send = (due: number): Promise<void> =>
    new Promise((resolve) => {
      const req = request(
        { host: '127.0.0.1', port, path: '/mutate/pods', method: 'POST', agent, servername: 'localhost',
          headers: { 'content-type': 'application/json', 'content-length': payload.length } },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) latencies.push(performance.now() - due);
            else failures++;
            resolve();
          });
        },
      );
      req.on('error', () => {
        failures++;
        resolve();
      });
      req.end(payload);
    });
  const start = performance.now();
  const total = rate * DURATION_S;
  const inflight: Array<Promise<void>> = [];
  let sent = 0;
  while (sent < total) {
    const now = performance.now();
    while (sent < total && start + (sent * 1000) / rate <= now) inflight.push(send(start + (sent++ * 1000) / rate));
    // ~1 ms timer ticks: at most a request or two are due per tick, without a busy loop stealing a core.
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(inflight);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    achievedRps: Math.round(latencies.length / ((performance.now() - start) / 1000)),
    p50Ms: round(percentile(latencies, 50)),
    p99Ms: round(percentile(latencies, 99)),
    p999Ms: round(percentile(latencies, 99.9)),
    failures,
  };
}

async function main(): Promise<void> {
  const certs = await makeTestCertificates('faultline-bench-ca');
  const dir = await mkdtemp(join(tmpdir(), 'faultline-bench-'));
  const procs: ChildProcess[] = [];
  try {
    await writeFile(join(dir, 'tls.crt'), certs.cert);
    await writeFile(join(dir, 'tls.key'), certs.key);
    const body = reviewBody();

    const webhook = await startServer([join(ROOT, 'bin/faultline.js'), 'webhook', '--cert-dir', dir, '--port', '0', '--address', '127.0.0.1'], join(dir, 'webhook.log'));
    procs.push(webhook.proc);
    await load(webhook.port, body, 200); // warm-up: JIT, TLS session state
    const max = await load(webhook.port, body);
    const at = await paced(webhook.port, body, certs.ca, RATE);
    const atBurst = await load(webhook.port, body, RATE);

    const bare = await startServer(['-e', BARE_SERVER, dir], join(dir, 'bare.log'));
    procs.push(bare.proc);
    await load(bare.port, body, 200);
    const baseMax = await load(bare.port, body);
    const baseAt = await paced(bare.port, body, certs.ca, RATE);

    console.log(
      JSON.stringify({
        reviewsPerSec: max.rps,
        p50Ms: max.p50Ms,
        p99Ms: max.p99Ms,
        at1000: { targetRps: RATE, ...at },
        at1000AutocannonBursty: { achievedRps: atBurst.rps, p50Ms: atBurst.p50Ms, p99Ms: atBurst.p99Ms },
        baselineReviewsPerSec: baseMax.rps,
        baselineP50Ms: baseMax.p50Ms,
        baselineP99Ms: baseMax.p99Ms,
        baselineAt1000: baseAt,
        non2xx: max.non2xx + atBurst.non2xx,
        errors: max.errors + atBurst.errors + at.failures,
        reviewBytes: Buffer.byteLength(body),
        connections: CONNECTIONS,
        durationS: DURATION_S,
        cpus: availableParallelism(),
        node: process.version,
      }),
    );
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
