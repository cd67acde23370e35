// Idle RSS of two builds of the proxy side by side, in one run: what a change
// costs the proxy's memory. Each round starts the baseline and the candidate
// (alternating which goes first), each on the same wiring and plan (an HTTP
// fault, so the HTTP path and the datapath report are loaded), reads GET
// /status once as the reconciler does, lets it settle and reads its RSS.
//
//   node bench/sidecar-rss-ab.ts <baseline dist/faultline.js> [candidate, default ./dist/faultline.js]
// (build each with `npm run build` in its checkout). Prints one JSON object.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts } from '../common/ports.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NODE = path.join(ROOT, 'node_modules', '.bin', 'node');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const [baseline, candidate = path.join(ROOT, 'dist', 'faultline.js')] = process.argv.slice(2);
if (!baseline) {
  console.error('usage: node bench/sidecar-rss-ab.ts <baseline dist/faultline.js> [candidate dist/faultline.js]');
  process.exit(2);
}

const round1 = (x: number): number => Math.round(x * 10) / 10;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function waitHttp(url: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await fetch(url).then((r) => r.ok, () => false)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${url} never answered`);
}

async function idleRss(cli: string, dir: string, withPolicies: boolean): Promise<number> {
  const [admin, health, metrics, toxiproxy, app, inboundPort, outboundPort] = (await freePorts(7)) as [number, number, number, number, number, number, number];
  const wiring = path.join(dir, 'wiring.json');
  const plan = path.join(dir, 'plan.json');
  // Capture's two listeners on free loopback ports: idle, no traffic, so no nft is needed.
  const capture = { inboundPort, outboundPort, proxyPorts: [admin, health, metrics, toxiproxy], excludeInboundPorts: [], excludeInboundCidrs: [], excludeOutboundPorts: [], excludeOutboundCidrs: [] };
  await writeFile(wiring, JSON.stringify({ proxyUid: 1337, capture }));
  const expiresAt = Date.now() + 3_600_000;
  // The baseline's plan schema predates `policies` (the planner adds it now): each gets what its planner renders.
  await writeFile(plan, JSON.stringify({
    ...(withPolicies ? { policies: [{ chaosId: 'bench/p', uid: 'u', generation: 1 }] } : {}),
    http: [{ chaosId: 'bench/p', expiresAt, name: 'p/delay', direction: 'inbound', match: { port: app, path: { exact: '/delay' } }, delay: { fixedMs: 10, jitterMs: 0, percent: 100 } }],
  }));
  const child: ChildProcess = spawn(NODE, [cli, 'sidecar', '--wiring-file', wiring, '--plan-file', plan, '--toxiproxy-bin', path.join(dir, 'none'), '--listen-host', '127.0.0.1',
    '--admin-port', String(admin), '--health-port', String(health), '--metrics-port', String(metrics), '--toxiproxy-port', String(toxiproxy)],
  { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, FAULTLINE_LOG_LEVEL: 'warn', POD_IP: '127.0.0.1' } });
  try {
    await waitHttp(`http://127.0.0.1:${health}/healthz/ready`);
    // The baseline has no /status (404): the same request either way.
    await fetch(`http://127.0.0.1:${health}/status`).then((r) => r.arrayBuffer());
    await new Promise((r) => setTimeout(r, 1_000));
    const stats = (await (await fetch(`http://127.0.0.1:${admin}/stats`)).json()) as { memory: { rss: number } };
    return stats.memory.rss / 1048576;
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

const dir = await mkdtemp(path.join(tmpdir(), 'faultline-rss-ab-'));
try {
  const load = loadavg().map((x) => round1(x));
  const runs = { baseline: [] as number[], candidate: [] as number[] };
  for (let i = 0; i < ROUNDS; i++) {
    const order: Array<keyof typeof runs> = i % 2 === 0 ? ['baseline', 'candidate'] : ['candidate', 'baseline'];
    for (const which of order) runs[which].push(await idleRss(which === 'baseline' ? baseline : candidate, dir, which === 'candidate'));
  }
  const b = median(runs.baseline);
  const c = median(runs.candidate);
  console.log(JSON.stringify({
    rounds: ROUNDS,
    loadAverageAtStart: load,
    loadAverageAtEnd: loadavg().map((x) => round1(x)),
    idleRssMB: {
      baseline: { median: round1(b), runs: runs.baseline.map(round1) },
      candidate: { median: round1(c), runs: runs.candidate.map(round1) },
      deltaMB: round1(c - b),
      ratio: Math.round((c / b) * 1000) / 1000,
    },
  }, null, 2));
} finally {
  await rm(dir, { recursive: true, force: true });
}
