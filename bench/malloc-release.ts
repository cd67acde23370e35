// The proxy with and without its malloc release (sidecar/malloc-release.ts),
// in interleaved rounds (off, on, off, on, ...): each a fresh proxy of dist/
// (the compiled bundle the images run) in a pod's network namespace, as in a
// pod (test/support/netns-proxy.ts: capture, the proxy UID), with the image's
// Node flags and ENV, loaded from the root namespace at the pod IP (root only).
// Per round:
//   - RSS idle 1 s after ready;
//   - the HTTP/1 fault path at max rate (a fault that matches nothing: every
//     request forwarded over undici, whose hot functions V8 optimizes), the
//     proxy's CPU per request;
//   - RSS right after the load, the high-water mark (VmHWM), and RSS once the
//     proxy has been quiet for one release interval and a second;
//   - what the release reported (GET /stats: checks, trims, bytes given back).
//
//   npm run bench:malloc-release   (BENCH_DURATION_S=12, BENCH_ROUNDS=2)

import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import path from 'node:path';
import { PodProxy } from '../test/support/netns-proxy.ts';
import { cpuUs } from './capture.ts';
import { proxyImageRuntime } from './image-runtime.ts';
import { autocannon, CLI, NODE, okApp, ROOT, rssMB } from './pod-app.ts';
import { median, round } from './webhook-stats.ts';

/** Longer than one release interval, so the CPU per request includes a check under load. */
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 12);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const CONNECTIONS = 32;
/** The proxy's default (cli/commands/sidecar.ts). */
const INTERVAL_S = 10;
const APP_PORT = 8080;


type Release = { checks: number; releases: number; releasedBytes: number; releaseMs: number; freeBytes: number };
type Round = {
  loadAvg1m: number;
  idleRssMB: number;
  rps: number;
  cpuUsPerRequest: number;
  afterLoadRssMB: number;
  highWaterMarkMB: number;
  quietRssMB: number;
  release?: Release;
};

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:malloc-release needs root: the proxy runs in a network namespace, with nft capture');
  const build = spawn(NODE, [path.join(ROOT, 'images', 'build.ts')], { stdio: ['ignore', 'ignore', 'inherit'] });
  if ((await new Promise((r) => build.once('exit', r))) !== 0) throw new Error('npm run build failed');
  const image = await proxyImageRuntime();
  const expiresAt = Date.now() + 3_600_000;
  const livePlan = {
    http: [{ chaosId: 'bench/malloc', expiresAt, direction: 'inbound' as const, name: 'never', match: { port: APP_PORT, path: { exact: '/never-requested' } }, abort: { status: 503, percent: 100 } }],
    tcp: [],
  };

  const runProxy = async (intervalS: number): Promise<Round> => {
    const loadAvg1m = round(loadavg()[0]!, 2);
    const px = await PodProxy.start({ cli: CLI, nodeArgs: image.nodeFlags, env: { ...image.env, FAULTLINE_LOG_LEVEL: 'warn' }, livePlan, proxyArgs: ['--malloc-release-interval', String(intervalS)] });
    try {
      await px.pod.spawnInPod('app', [NODE, '--input-type=module', '-e', okApp(APP_PORT)], (p) => p.stdout.includes('app ready'));
      const pid = px.proc.child.pid!;
      const url = `http://${px.podIp}:${APP_PORT}/`;
      await new Promise((r) => setTimeout(r, 1_000));
      const idle = await rssMB(pid);
      const c0 = cpuUs(pid);
      const r = await autocannon({ url, connections: CONNECTIONS, duration: DURATION_S });
      if (r.errors > 0 || r.non2xx > 0 || r.requests.total === 0) throw new Error(`load: ${r.errors} errors, ${r.non2xx} non-2xx of ${r.requests.total}`);
      const cpu = Math.round((cpuUs(pid) - c0) / r.requests.total);
      const after = await rssMB(pid);
      await new Promise((resolve) => setTimeout(resolve, (INTERVAL_S + 1) * 1000));
      const quiet = await rssMB(pid);
      const { mallocRelease } = await px.admin<{ mallocRelease?: Release }>('/stats');
      return {
        loadAvg1m,
        idleRssMB: idle.rss,
        rps: Math.round(r.requests.average),
        cpuUsPerRequest: cpu,
        afterLoadRssMB: after.rss,
        highWaterMarkMB: quiet.peak,
        quietRssMB: quiet.rss,
        ...(mallocRelease ? { release: mallocRelease } : {}),
      };
    } finally {
      await px.close();
    }
  };

  const rounds: Array<{ off: Round; on: Round }> = [];
  for (let i = 0; i < ROUNDS; i++) rounds.push({ off: await runProxy(0), on: await runProxy(INTERVAL_S) });
  const pick = (v: 'off' | 'on', f: (r: Round) => number): number => median(rounds.map((r) => f(r[v])));
  const summary = (v: 'off' | 'on'): Record<string, number> => ({
    idleRssMB: pick(v, (r) => r.idleRssMB),
    afterLoadRssMB: pick(v, (r) => r.afterLoadRssMB),
    highWaterMarkMB: pick(v, (r) => r.highWaterMarkMB),
    quietRssMB: pick(v, (r) => r.quietRssMB),
    rps: pick(v, (r) => r.rps),
    cpuUsPerRequest: pick(v, (r) => r.cpuUsPerRequest),
  });
  /** on ÷ off within each round (same load), then the median and range. */
  const ratio = (f: (r: Round) => number): { median: number; min: number; max: number } => {
    const xs = rounds.map((r) => round(f(r.on) / f(r.off), 3));
    return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
  };
  const quietOn = pick('on', (r) => r.quietRssMB);
  console.log(JSON.stringify({
    benchmark: 'malloc-release',
    node: process.version,
    nodeFlags: image.nodeFlags,
    imageEnv: image.env,
    intervalS: INTERVAL_S,
    durationPerLoadS: DURATION_S,
    connections: CONNECTIONS,
    medians: { off: summary('off'), on: summary('on') },
    onOverOff: {
      quietRssMB: ratio((r) => r.quietRssMB),
      afterLoadRssMB: ratio((r) => r.afterLoadRssMB),
      highWaterMarkMB: ratio((r) => r.highWaterMarkMB),
      cpuUsPerRequest: ratio((r) => r.cpuUsPerRequest),
      rps: ratio((r) => r.rps),
    },
    quietRssSavedMB: round(pick('off', (r) => r.quietRssMB) - quietOn, 1),
    // Event-loop time per trim, over the rounds with the release on.
    msPerRelease: round(median(rounds.map((r) => (r.on.release && r.on.release.releases > 0 ? r.on.release.releaseMs / r.on.release.releases : 0))), 2),
    rounds,
  }, null, 2));
}

await main();
