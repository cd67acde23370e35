// The proxy image's Node flags and ENV against the same plus candidate ones,
// on the HTTP/1 fault path: node:http's server, then undici's Pool upstream, whose
// response parser is llhttp compiled to WebAssembly. What a flag would cost or
// save before it goes into images/proxy.Dockerfile's ENTRYPOINT, or why it
// did not. Prints ONE JSON object from one run of interleaved rounds (the two
// take turns going first), each a fresh proxy of dist/ (the compiled bundle the
// image runs) in a pod's network namespace, as in a pod
// (test/support/netns-proxy.ts: capture, the proxy UID), with the image's ENV,
// loaded from the root namespace at the pod IP (root only):
//   - idle RSS 1 s after ready, peak RSS (VmHWM) after the loads;
//   - first 1 s on a second app port no rule names (the raw path), then the
//     HTTP/1 path: V8 optimizes the HTTP path's code as that load starts
//     (tiered up to TurboFan, llhttp's parse function alone takes ~23 MB of
//     scratch memory), and on a fresh proxy that burst would land on an idle
//     working set and leave the peak alone. After the raw path it lands on
//     the working set a busy pod has, as in bench:sidecar, whose high-water
//     mark it sets;
//   - max rate (autocannon, 16 connections, after a 1 s warm-up) and proxy CPU
//     per request (its utime+stime over the requests answered) with a fault on
//     the port that matches nothing (`noMatch`) and one that fires on every
//     request (`match`, a 0 ms delay matched by header), as bench:capture does;
//   - then a burst of many requests in flight at once (20 connections, 10
//     pipelined each, BURST_REQUESTS in all, no fault matching): peak RSS
//     after it (`burstPeakRssMB`), RSS 5 s later (`afterBurstRssMB`: V8 keeps
//     the pages a burst's garbage took until its memory reducer runs, about
//     100 s on when nothing allocates), and its CPU per request;
//   - the same burst as the first load of another fresh proxy (`coldBurst`):
//     a pod that starts into traffic. Its code has not tiered up yet, so each
//     request allocates more and stays in flight longer, more of it outlives
//     two scavenges and is promoted, and the old generation grows furthest;
//   - the 1-minute load average beside each round.
//
//   npm run bench:proxy-flags   (BENCH_CANDIDATE_FLAGS="--no-liftoff-only",
//   the default: what the image's --liftoff-only saves and costs, against
//   WebAssembly tiered up to TurboFan; BENCH_CANDIDATE_ENV="NAME=value ...";
//   BENCH_DURATION_S=5, BENCH_ROUNDS=4)

import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import path from 'node:path';
import { PodProxy } from '../test/support/netns-proxy.ts';
import { cpuUs } from './capture.ts';
import { proxyImageRuntime } from './image-runtime.ts';
import { autocannon, CLI, NODE, okApp, ROOT, rssMB } from './pod-app.ts';
import { median, round } from './webhook-stats.ts';

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const CONNECTIONS = 16;
/** The burst: requests in flight at once are connections × pipelining. */
const BURST = { connections: 20, pipelining: 10 };
const BURST_REQUESTS = 50_000;
const MATCH_HEADER = { 'x-bench-fault': 'delay0' };
/** The app's port in the pod, which the plan's HTTP rules name. */
const APP_PORT = 8080;
/** A second app port no rule names: its connections take the raw path. */
const RAW_PORT = 8081;
/** Added to the image's flags for the candidate. */
const CANDIDATE_FLAGS = (process.env.BENCH_CANDIDATE_FLAGS ?? '--no-liftoff-only').split(/\s+/).filter(Boolean);
/** Set in the candidate's environment over the image's ENV. */
const CANDIDATE_ENV = candidateEnv(process.env.BENCH_CANDIDATE_ENV ?? '');

function candidateEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of text.split(/\s+/).filter(Boolean)) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(pair);
    if (!m) throw new Error(`BENCH_CANDIDATE_ENV: ${JSON.stringify(pair)} is not NAME=value`);
    env[m[1]!] = m[2]!;
  }
  return env;
}

async function until(ready: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} never became ready`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

type PathRow = { rps: number; cpuUsPerRequest: number };

/** Max rate against `url` (by default CONNECTIONS for DURATION_S), the proxy's CPU charged to the requests answered. */
async function charged(pid: number, url: string, headers: Record<string, string>, load: Record<string, number> = { connections: CONNECTIONS, duration: DURATION_S }): Promise<PathRow> {
  const c0 = cpuUs(pid);
  const r = await autocannon({ url, ...load, headers });
  if (r.errors > 0 || r.non2xx > 0 || r.requests.total === 0) throw new Error(`load on ${url}: ${r.errors} errors, ${r.non2xx} non-2xx of ${r.requests.total}`);
  return { rps: Math.round(r.requests.average), cpuUsPerRequest: Math.round((cpuUs(pid) - c0) / r.requests.total) };
}

async function main(): Promise<void> {
  if (CANDIDATE_FLAGS.length === 0 && Object.keys(CANDIDATE_ENV).length === 0)
    throw new Error('BENCH_CANDIDATE_FLAGS and BENCH_CANDIDATE_ENV are empty: nothing to compare the image with');
  const build = spawn(NODE, [path.join(ROOT, 'images', 'build.ts')], { stdio: ['ignore', 'ignore', 'inherit'] });
  if ((await new Promise((r) => build.once('exit', r))) !== 0) throw new Error('npm run build failed');
  const image = await proxyImageRuntime();
  const arms = {
    image: { flags: image.nodeFlags, env: image.env },
    candidate: { flags: [...image.nodeFlags, ...CANDIDATE_FLAGS], env: { ...image.env, ...CANDIDATE_ENV } },
  };
  if (process.getuid?.() !== 0) throw new Error('bench:proxy-flags needs root: the proxy runs in a network namespace, with nft capture');

  const expiresAt = Date.now() + 3_600_000;
  const rule = { chaosId: 'bench/proxy-flags', expiresAt, direction: 'inbound' as const };
  const livePlan = {
    http: [
      // Never matches `/`: every request takes the HTTP/1 path and is forwarded untouched.
      { ...rule, name: 'never', match: { port: APP_PORT, path: { exact: '/never-requested' } }, abort: { status: 503, percent: 100 } },
      // Fires on every request carrying the header: matched, rolled, counted, forwarded after 0 ms.
      { ...rule, name: 'header', match: { port: APP_PORT, headers: MATCH_HEADER }, delay: { fixedMs: 0, jitterMs: 0, percent: 100 } },
    ],
    tcp: [],
  };
  {
    type Arm = { flags: string[]; env: Record<string, string> };
    type BurstRow = { burst: PathRow; peakRssMB: number; afterRssMB: number };
    /**
     * A fresh pod: the app on APP_PORT (and on RAW_PORT with `rawApp`), the
     * proxy with an arm's flags and environment, its Toxiproxy up, 1 s to
     * settle; then `use`, then the pod is closed.
     */
    const withPod = async <T>({ flags, env }: Arm, rawApp: boolean, use: (px: PodProxy, pid: number) => Promise<T>): Promise<T> => {
      const px = await PodProxy.start({ cli: CLI, nodeArgs: flags, env: { ...env, FAULTLINE_LOG_LEVEL: 'warn' }, toxiproxy: true, livePlan });
      try {
        await px.pod.spawnInPod('app', [NODE, '--input-type=module', '-e', okApp(APP_PORT)], (p) => p.stdout.includes('app ready'));
        if (rawApp) await px.pod.spawnInPod('raw-app', [NODE, '--input-type=module', '-e', okApp(RAW_PORT)], (p) => p.stdout.includes('app ready'));
        await until(async () => (await px.stats()).toxiproxy.up, 'its Toxiproxy');
        await new Promise((r) => setTimeout(r, 1_000));
        return await use(px, px.proc.child.pid!);
      } finally {
        await px.close();
      }
    };
    /** The burst against `url`: its rate and CPU per request, the peak RSS after it, and RSS 5 s later. */
    const burstAt = async (pid: number, url: string): Promise<BurstRow> => {
      const burst = await charged(pid, url, {}, { ...BURST, amount: BURST_REQUESTS });
      const peakRssMB = (await rssMB(pid)).peak;
      await new Promise((r) => setTimeout(r, 5_000));
      return { burst, peakRssMB, afterRssMB: (await rssMB(pid)).rss };
    };
    /** Every load but the cold burst, on one fresh pod. */
    const runWarm = (arm: Arm): Promise<Record<string, unknown>> => {
      const loadAvg1m = round(loadavg()[0]!, 2);
      return withPod(arm, true, async (px, pid) => {
        const url = `http://${px.podIp}:${APP_PORT}/`;
        const idleRssMB = (await rssMB(pid)).rss;
        await autocannon({ url: `http://${px.podIp}:${RAW_PORT}/`, connections: CONNECTIONS, duration: 1 });
        await autocannon({ url, connections: CONNECTIONS, duration: 1 });
        const noMatch = await charged(pid, url, {});
        const match = await charged(pid, url, MATCH_HEADER);
        const peakRssMB = (await rssMB(pid)).peak;
        const { burst, peakRssMB: burstPeakRssMB, afterRssMB: afterBurstRssMB } = await burstAt(pid, url);
        return { loadAvg1m, idleRssMB, peakRssMB, noMatch, match, burst, burstPeakRssMB, afterBurstRssMB };
      });
    };
    /** Another fresh pod whose proxy's first load is the burst. */
    const runColdBurst = (arm: Arm): Promise<BurstRow> => withPod(arm, false, (px, pid) => burstAt(pid, `http://${px.podIp}:${APP_PORT}/`));
    /** Both pods, one after the other: one proxy at a time. */
    const runProxy = async (arm: Arm): Promise<Record<string, unknown>> => {
      const warm = await runWarm(arm);
      const coldBurst = await runColdBurst(arm);
      return { ...warm, coldBurst, loadAvg1mAfter: round(loadavg()[0]!, 2) };
    };

    const rounds: Array<Record<keyof typeof arms, Awaited<ReturnType<typeof runProxy>>>> = [];
    for (let i = 0; i < ROUNDS; i++) {
      const row: Partial<(typeof rounds)[number]> = {};
      for (const v of i % 2 === 0 ? (['candidate', 'image'] as const) : (['image', 'candidate'] as const)) row[v] = await runProxy(arms[v]);
      rounds.push(row as (typeof rounds)[number]);
    }

    type Row = { idleRssMB: number; peakRssMB: number; noMatch: PathRow; match: PathRow; burst: PathRow; burstPeakRssMB: number; afterBurstRssMB: number; coldBurst: BurstRow };
    const pick = (v: keyof typeof arms, f: (r: Row) => number): number[] => rounds.map((r) => f(r[v] as Row));
    const summary = (v: keyof typeof arms): Record<string, number> => ({
      idleRssMB: median(pick(v, (r) => r.idleRssMB)),
      peakRssMB: median(pick(v, (r) => r.peakRssMB)),
      noMatchRps: median(pick(v, (r) => r.noMatch.rps)),
      noMatchCpuUsPerRequest: median(pick(v, (r) => r.noMatch.cpuUsPerRequest)),
      matchRps: median(pick(v, (r) => r.match.rps)),
      matchCpuUsPerRequest: median(pick(v, (r) => r.match.cpuUsPerRequest)),
      burstRps: median(pick(v, (r) => r.burst.rps)),
      burstCpuUsPerRequest: median(pick(v, (r) => r.burst.cpuUsPerRequest)),
      burstPeakRssMB: median(pick(v, (r) => r.burstPeakRssMB)),
      afterBurstRssMB: median(pick(v, (r) => r.afterBurstRssMB)),
      coldBurstRps: median(pick(v, (r) => r.coldBurst.burst.rps)),
      coldBurstCpuUsPerRequest: median(pick(v, (r) => r.coldBurst.burst.cpuUsPerRequest)),
      coldBurstPeakRssMB: median(pick(v, (r) => r.coldBurst.peakRssMB)),
      afterColdBurstRssMB: median(pick(v, (r) => r.coldBurst.afterRssMB)),
    });
    /** candidate ÷ image within each round (same load), then the median and range over rounds. */
    const ratio = (f: (r: Row) => number): { median: number; min: number; max: number } => {
      const xs = rounds.map((r) => round(f(r.candidate as Row) / f(r.image as Row), 3));
      return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
    };
    console.log(JSON.stringify({
      benchmark: 'proxy-flags',
      node: process.version,
      nodeFlags: { image: arms.image.flags, candidate: arms.candidate.flags },
      env: { image: arms.image.env, candidate: arms.candidate.env },
      durationPerLoadS: DURATION_S,
      connections: CONNECTIONS,
      burst: { ...BURST, requests: BURST_REQUESTS },
      medians: { image: summary('image'), candidate: summary('candidate') },
      candidateOverImage: {
        noMatchRps: ratio((r) => r.noMatch.rps),
        noMatchCpuUsPerRequest: ratio((r) => r.noMatch.cpuUsPerRequest),
        matchRps: ratio((r) => r.match.rps),
        matchCpuUsPerRequest: ratio((r) => r.match.cpuUsPerRequest),
        idleRssMB: ratio((r) => r.idleRssMB),
        peakRssMB: ratio((r) => r.peakRssMB),
        burstCpuUsPerRequest: ratio((r) => r.burst.cpuUsPerRequest),
        burstPeakRssMB: ratio((r) => r.burstPeakRssMB),
        afterBurstRssMB: ratio((r) => r.afterBurstRssMB),
        coldBurstCpuUsPerRequest: ratio((r) => r.coldBurst.burst.cpuUsPerRequest),
        coldBurstPeakRssMB: ratio((r) => r.coldBurst.peakRssMB),
        afterColdBurstRssMB: ratio((r) => r.coldBurst.afterRssMB),
      },
      rounds,
    }, null, 2));
  }
}

await main();
