// Transparent capture's cost, in one run, in real namespaces (needs root):
// a pod namespace with the capture nft table, the CaptureProxy as UID 1337 and
// the apps; a client namespace with the load generator. Every figure is also
// given as a share of direct (a capture-excluded port of the same app), and
// with the proxy's CPU per request (its utime+stime over the requests served).
//   maxRate.direct          HTTP/1.1 straight to the app (excluded port)
//   maxRate.toxiproxy       Toxiproxy's plain pass-through, no toxics (the anchor)
//   maxRate.captureRaw      captured, no HTTP fault on the port: raw path
//   maxRate.httpNoMatch     captured, an HTTP fault on the port that matches nothing: sniff + HTTP/1 path
//   maxRate.httpMatch       the same port, requests a rule matches by header and fires on (a 0 ms delay)
//   maxRate.h2Direct / h2   h2c straight / captured with an HTTP fault on the port (HTTP/2 path)
//   at1000rps               p50/p99 at a fixed 1,000 req/s over 16 keep-alive connections from the client namespace
//                           (bench/open-loop.ts: vegeta, a Go program), direct, captured (raw, HTTP/1 path) and
//                           through Toxiproxy (a non-Node hop, uncaptured), in every round: the round with the
//                           median raw added p99, and every round's added figures
// With a baseline (BENCH_BASELINE=<git rev>, bench:sidecar uses main), the
// proxy paths run again from that commit's code in the same run, alternating
// round by round (BENCH_ROUNDS), and each figure gets its ratio to the baseline.
// BENCH_CPU_PROF=<dir> writes a V8 CPU profile of each proxy run there (--cpu-prof).
//   npm run bench:capture   BENCH_DURATION_S (5), BENCH_CONNECTIONS (16), BENCH_ROUNDS (1)
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBinaries, ensureOpenLoop } from '../controlplane/binaries.ts';
import { DEFAULT_PROXY_PORTS } from '../contract/pod-layout.ts';
import { renderCaptureRules } from '../pod-setup/redirect/capture-rules.ts';
import { exec, execOk, Proc } from '../test/support/netns-exec.ts';
import { describeGenerator, openLoop, unreadableRuns, type OpenLoopResult } from './open-loop.ts';
import { median, medianBy, round } from './webhook-stats.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const NODE = join(ROOT, 'node_modules/.bin/node');
const APPS = join(ROOT, 'test/support/netns-capture-pod.ts');
const TOOL = join(ROOT, 'bench/capture-pod.ts');
const POD = '10.215.0.2';
const CLIENT = '10.215.0.1';
const TOXIPROXY_LISTEN = 18080;
/** The apps' ports (netns-capture-pod.ts): HTTP/1 8080 (raw), 8082 (direct), 8084 (HTTP path); h2c 8081 (HTTP/2 path), 8083 (direct). */
const PORT = { raw: 8080, h1Direct: 8082, h1Faulted: 8084, h2Faulted: 8081, h2Direct: 8083 };
const MATCH_HEADER = 'x-bench-fault:delay0';
/** A direct p50 above this at 1,000 req/s (sub-millisecond on an idle machine) marks the latency targets unmeasurable. */
const OVERLOADED_P50_MS = 2;

export interface CaptureBenchOptions {
  durationS?: number;
  connections?: number;
  rounds?: number;
  /** A git revision whose proxy code runs alongside, as the "before". */
  baseline?: string;
  /** Directory for V8 CPU profiles of the proxies (--cpu-prof). */
  cpuProfDir?: string;
}

type Load = { rps: number; requests?: number; p50Ms?: number; p99Ms?: number; errors: number; errorKinds?: Record<string, number> };
/** One fixed-rate run's figures (ms). */
type Fixed = { requests: number; p50Ms: number; p90Ms: number; p99Ms: number; p999Ms: number; maxMs: number; failures: number };
type Row = Load & { cpuUsPerRequest?: number };
const PROXY_PATHS = ['captureRaw', 'httpNoMatch', 'httpMatch', 'h2'] as const;
type ProxyPath = (typeof PROXY_PATHS)[number];

const load1 = (): number => Math.round(loadavg()[0]! * 100) / 100;

/** utime+stime of a process, in µs. */
export function cpuUs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100; // USER_HZ = 100 on Linux
}

export async function captureBench(o: CaptureBenchOptions = {}): Promise<Record<string, unknown>> {
  const duration = String(o.durationS ?? 5);
  const connections = String(o.connections ?? 16);
  const rounds = o.rounds ?? 1;
  const id = `${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
  const podNs = `fl-capb-${id}-pod`;
  const cliNs = `fl-capb-${id}-cli`;
  const dir = mkdtempSync(join(tmpdir(), 'faultline-capture-bench-'));
  chmodSync(dir, 0o755);
  const planFile = join(dir, 'plan.json');
  const procs: Proc[] = [];
  const far = Date.now() + 3_600_000;

  const start = async (name: string, argv: string[], ready: string): Promise<Proc> => {
    const p = new Proc(name, argv, { PATH: process.env.PATH });
    procs.push(p);
    const until = Date.now() + 30_000;
    while (!(p.stdout + p.stderr).includes(ready)) {
      if (!p.running || Date.now() > until) throw new Error(`${name} did not start: ${p.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return p;
  };
  const inCli = async (argv: string[]): Promise<Load> => JSON.parse((await execOk(['ip', 'netns', 'exec', cliNs, NODE, ...argv], { timeoutMs: 180_000 })).stdout) as Load;
  const h1 = (port: number, header?: string): Promise<Load> => inCli([TOOL, 'h1', `http://${POD}:${port}/`, duration, connections, ...(header ? [header] : [])]);
  const h2 = (port: number): Promise<Load> => inCli([APPS, 'load-h2', `http://${POD}:${port}/`, duration, connections]);
  const fixedRuns: OpenLoopResult[] = [];
  const fixed = async (port: number): Promise<Fixed> => {
    const r = await openLoop({ netns: cliNs, url: `http://${POD}:${port}/`, rate: 1000, count: 5000, connections: 16, warmupS: 1 });
    fixedRuns.push(r);
    const q = r.latencyMs;
    return { requests: r.requests, p50Ms: q.p50, p90Ms: q.p90, p99Ms: q.p99, p999Ms: q.p999, maxMs: q.max, failures: r.failures };
  };
  /** A load against a process whose CPU is charged to the requests it served. */
  const charged = async (pid: number | undefined, run: () => Promise<Load>, seconds: number): Promise<Row> => {
    const c0 = pid ? cpuUs(pid) : 0;
    const r = await run();
    const served = r.requests ?? r.rps * seconds;
    return pid && served > 0 ? { ...r, cpuUsPerRequest: Math.round((cpuUs(pid) - c0) / served) } : r;
  };

  // The baseline's proxy code, exported from git into a scratch tree that shares our node_modules.
  let baselineRoot: string | undefined;
  try {
    if (o.baseline) {
      baselineRoot = join(dir, 'baseline');
      execFileSync('mkdir', ['-p', baselineRoot]);
      execFileSync('sh', ['-c', `git -C "$0" archive "$1" | tar -x -C "$2"`, ROOT, o.baseline, baselineRoot]);
      symlinkSync(join(ROOT, 'node_modules'), join(baselineRoot, 'node_modules'));
    }
    const { 'toxiproxy-server': toxiproxy } = await ensureBinaries();
    await ensureOpenLoop(); // built now if need be, not in the middle of the measurements
    await execOk(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=app', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
    for (const ns of [podNs, cliNs]) await execOk(['ip', 'netns', 'add', ns]);
    await execOk(['ip', 'link', 'add', 'eth0', 'netns', podNs, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', cliNs]);
    for (const [ns, v4] of [[podNs, POD], [cliNs, CLIENT]] as const) {
      for (const a of [['link', 'set', 'lo', 'up'], ['link', 'set', 'eth0', 'up'], ['addr', 'add', `${v4}/24`, 'dev', 'eth0']]) await execOk(['ip', 'netns', 'exec', ns, 'ip', ...a]);
    }
    await execOk(['ip', 'netns', 'exec', podNs, 'nft', '-f', '-'], {
      input: renderCaptureRules({
        proxyUid: 1337, inboundPort: DEFAULT_PROXY_PORTS.inbound, outboundPort: DEFAULT_PROXY_PORTS.outbound, proxyPorts: [DEFAULT_PROXY_PORTS.admin, DEFAULT_PROXY_PORTS.toxiproxy],
        excludeInboundPorts: [PORT.h1Direct, PORT.h2Direct, TOXIPROXY_LISTEN], excludeInboundCidrs: [], excludeOutboundPorts: [], excludeOutboundCidrs: [],
      }),
    });
    const rule = (name: string, port: number, f: object): object => ({ chaosId: 'b/p', expiresAt: far, name, direction: 'inbound', match: { port, path: { exact: '/never-requested' } }, ...f });
    const [matchName, matchValue] = MATCH_HEADER.split(':') as [string, string];
    writeFileSync(planFile, JSON.stringify({
      tcp: [],
      http: [
        rule('h1/never', PORT.h1Faulted, { abort: { status: 503, percent: 100 } }),
        // Fires on every request carrying the header: matched, rolled, counted, forwarded after 0 ms.
        { ...rule('h1/header', PORT.h1Faulted, {}), match: { port: PORT.h1Faulted, headers: { [matchName]: matchValue } }, delay: { fixedMs: 0, jitterMs: 0, percent: 100 } },
        rule('h2/never', PORT.h2Faulted, { abort: { status: 503, percent: 100 } }),
      ],
    }));
    chmodSync(planFile, 0o644);
    await start('apps', ['ip', 'netns', 'exec', podNs, NODE, APPS, 'apps', dir], 'apps ready');
    const toxi = await start('toxiproxy', ['ip', 'netns', 'exec', podNs, toxiproxy, '-host', '127.0.0.1', '-port', String(DEFAULT_PROXY_PORTS.toxiproxy)], 'Starting Toxiproxy HTTP server');
    await execOk(['ip', 'netns', 'exec', podNs, 'curl', '-sf', '-X', 'POST', `http://127.0.0.1:${DEFAULT_PROXY_PORTS.toxiproxy}/proxies`, '-d', JSON.stringify({ name: 'anchor', listen: `${POD}:${TOXIPROXY_LISTEN}`, upstream: `${POD}:${PORT.h1Direct}` })]);

    const seconds = Number(duration);
    const prof = o.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProfDir] : [];
    const runProxy = async (root: string): Promise<{ rows: Record<ProxyPath, Row>; pid: number; proc: Proc }> => {
      const proc = await start('proxy', ['ip', 'netns', 'exec', podNs, 'setpriv', '--reuid=1337', '--regid=1337', '--clear-groups', NODE, ...prof, TOOL, 'proxy', root, planFile, POD, String(DEFAULT_PROXY_PORTS.inbound), String(DEFAULT_PROXY_PORTS.outbound)], 'proxy ready');
      const pid = proc.child.pid!;
      // Warm-up: JIT, upstream pools.
      await inCli([TOOL, 'h1', `http://${POD}:${PORT.h1Faulted}/`, '1', connections]);
      const rows = {
        captureRaw: await charged(pid, () => h1(PORT.raw), seconds),
        httpNoMatch: await charged(pid, () => h1(PORT.h1Faulted), seconds),
        httpMatch: await charged(pid, () => h1(PORT.h1Faulted, MATCH_HEADER), seconds),
        h2: await charged(pid, () => h2(PORT.h2Faulted), seconds),
      };
      return { rows, pid, proc };
    };
    const stop = async (p: Proc): Promise<void> => {
      await p.stop();
      procs.splice(procs.indexOf(p), 1);
    };

    const perRound: Array<Record<string, unknown>> = [];
    type At1000 = { overloaded: boolean; failed?: true; addedMs: Record<'captureRaw' | 'httpNoMatch' | 'toxiproxy', { p50: number; p99: number }> } & Record<string, unknown>;
    const at1000Rounds: At1000[] = [];
    for (let r = 0; r < rounds; r++) {
      const loadAtStart = load1();
      const direct = await h1(PORT.h1Direct);
      const toxiproxyRow = await charged(toxi.child.pid, () => h1(TOXIPROXY_LISTEN), seconds);
      const h2Direct = await h2(PORT.h2Direct);
      // Whichever proxy runs first in a round runs in different conditions (the direct loads just
      // ended, the machine's load drifts): the order alternates round by round (ABBA).
      const baselineFirst = baselineRoot !== undefined && r % 2 === 1;
      const baseline = baselineFirst ? await runProxy(baselineRoot!) : undefined;
      if (baseline) await stop(baseline.proc);
      const current = await runProxy(ROOT);
      // Added latency at a fixed rate, with the current proxy only, in every round (see at1000rps below).
      fixedRuns.length = 0;
      const fixedDirect = await fixed(PORT.h1Direct);
      const fixedRaw = await fixed(PORT.raw);
      const fixedHttp = await fixed(PORT.h1Faulted);
      // The anchor: what one more userspace hop costs when it is not Node (Toxiproxy, Go, no capture).
      const fixedToxiproxy = await fixed(TOXIPROXY_LISTEN);
      const added = (x: Fixed): { p50: number; p99: number } => ({ p50: round(x.p50Ms - fixedDirect.p50Ms), p99: round(x.p99Ms - fixedDirect.p99Ms) });
      // Direct requests queueing for milliseconds, or a generator that fell behind its rate, means the machine
      // could not hold 1,000 req/s: nothing added can be read off that.
      const { behind: generatorBehind, failed } = unreadableRuns(fixedRuns);
      at1000Rounds.push({
        generator: describeGenerator(fixedRuns[0]!),
        requests: 5000, overloaded: fixedDirect.p50Ms > OVERLOADED_P50_MS || generatorBehind.length > 0,
        ...(generatorBehind.length > 0 ? { generatorBehind } : {}),
        ...(failed ? { failed: true, firstError: failed.firstError } : {}),
        direct: fixedDirect, captureRaw: fixedRaw, httpNoMatch: fixedHttp, toxiproxy: fixedToxiproxy,
        addedMs: { captureRaw: added(fixedRaw), httpNoMatch: added(fixedHttp), toxiproxy: added(fixedToxiproxy) },
      });
      await stop(current.proc);
      const baselineAfter = baselineRoot && !baselineFirst ? await runProxy(baselineRoot) : undefined;
      if (baselineAfter) await stop(baselineAfter.proc);
      const baselineRows = (baseline ?? baselineAfter)?.rows;
      perRound.push({ loadAvg1m: [loadAtStart, load1()], direct, toxiproxy: toxiproxyRow, h2Direct, current: current.rows, ...(baselineRows ? { baseline: baselineRows, baselineFirst } : {}) });
    }

    // Each figure: the median over rounds, as a share of the same round's direct (h2: of h2c direct).
    type RoundRow = { direct: Load; h2Direct: Load; toxiproxy: Row; current: Record<ProxyPath, Row>; baseline?: Record<ProxyPath, Row> };
    const rs = perRound as unknown as RoundRow[];
    const of = (p: ProxyPath | 'toxiproxy', rr: RoundRow): Load => (p === 'h2' ? rr.h2Direct : rr.direct);
    const summarize = (pick: (rr: RoundRow) => Row | undefined, p: ProxyPath | 'toxiproxy'): Record<string, number> | undefined => {
      const rows = rs.map((rr) => ({ row: pick(rr), base: of(p, rr) })).filter((x): x is { row: Row; base: Load } => x.row !== undefined);
      if (rows.length === 0) return undefined;
      const cpu = rows.map((x) => x.row.cpuUsPerRequest).filter((x): x is number => x !== undefined);
      return {
        rps: Math.round(median(rows.map((x) => x.row.rps))),
        shareOfDirect: round(median(rows.map((x) => x.row.rps / x.base.rps))),
        ...(rows[0]!.row.p50Ms !== undefined ? { p50Ms: median(rows.map((x) => x.row.p50Ms!)), p99Ms: median(rows.map((x) => x.row.p99Ms!)) } : {}),
        ...(cpu.length > 0 ? { cpuUsPerRequest: median(cpu) } : {}),
        errors: rows.reduce((n, x) => n + x.row.errors, 0),
      };
    };
    const maxRate: Record<string, unknown> = {
      direct: { rps: Math.round(median(rs.map((r) => r.direct.rps))), shareOfDirect: 1, p50Ms: median(rs.map((r) => r.direct.p50Ms!)), p99Ms: median(rs.map((r) => r.direct.p99Ms!)), errors: rs.reduce((n, r) => n + r.direct.errors, 0) },
      toxiproxy: summarize((r) => r.toxiproxy, 'toxiproxy'),
      h2Direct: { rps: Math.round(median(rs.map((r) => r.h2Direct.rps))), shareOfDirect: 1, errors: rs.reduce((n, r) => n + r.h2Direct.errors, 0) },
    };
    for (const p of PROXY_PATHS) maxRate[p] = summarize((r) => r.current[p], p);
    const baselineRates: Record<string, unknown> = {};
    const vsBaseline: Record<string, unknown> = {};
    if (baselineRoot) {
      for (const p of PROXY_PATHS) {
        baselineRates[p] = summarize((r) => r.baseline?.[p], p);
        // Per round, current over baseline, then the median: both ran within seconds of each other.
        vsBaseline[p] = {
          rps: round(median(rs.map((r) => r.current[p].rps / r.baseline![p].rps))),
          cpuUsPerRequest: round(median(rs.map((r) => (r.current[p].cpuUsPerRequest ?? NaN) / (r.baseline![p].cpuUsPerRequest ?? NaN)))),
        };
      }
    }
    const raw = maxRate.captureRaw as { rps: number };
    const toxiRate = maxRate.toxiproxy as { rps: number };
    const share = (p: ProxyPath): number => (maxRate[p] as { shareOfDirect: number }).shareOfDirect;
    // One 5 s sample's p99 is its worst 50 requests: a stall of this shared
    // machine landing in the proxied sample and not in direct's (or the other
    // way round) swung the added p99 by several ms. The round whose raw added
    // p99 is the median is reported whole, every round's added p99 beside it;
    // an overloaded or failed round decides the verdict, not the median.
    const at1000rps: At1000 = {
      ...medianBy(at1000Rounds, (x) => x.addedMs.captureRaw.p99)!,
      overloaded: at1000Rounds.some((x) => x.overloaded),
      ...(at1000Rounds.some((x) => x.failed) ? { failed: true as const } : {}),
      roundsAddedMs: Object.fromEntries((['captureRaw', 'httpNoMatch', 'toxiproxy'] as const).map((k) => [k, at1000Rounds.map((x) => x.addedMs[k])])),
    };
    const { addedMs, overloaded, failed } = at1000rps;
    const added = addedMs.captureRaw;
    // Each of #12's targets with the figure it is judged on; pass is null when the figure can't be read (overloaded
    // machine), false when requests failed.
    const target = (value: number, pass: boolean | null): { value: number; pass: boolean | null } => ({ value, pass });
    return {
      bench: 'capture',
      durationS: seconds,
      connections: Number(connections),
      rounds,
      maxRate,
      ...(baselineRoot ? { baseline: { rev: o.baseline, commit: execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', o.baseline!], { encoding: 'utf8' }).trim(), maxRate: baselineRates }, currentVsBaseline: vsBaseline } : {}),
      rawVsToxiproxy: round(raw.rps / toxiRate.rps),
      at1000rps,
      targets: {
        rawMatchesToxiproxy: target(round(raw.rps / toxiRate.rps), raw.rps >= toxiRate.rps),
        addedP50le025ms: target(added.p50, failed ? false : overloaded ? null : added.p50 <= 0.25),
        addedP99le1ms: target(added.p99, failed ? false : overloaded ? null : added.p99 <= 1),
        httpNoMatchGe30pctOfDirect: target(share('httpNoMatch'), share('httpNoMatch') >= 0.3),
        httpMatchGe30pctOfDirect: target(share('httpMatch'), share('httpMatch') >= 0.3),
      },
      perRound,
    };
  } finally {
    for (const p of procs) await p.stop();
    for (const ns of [podNs, cliNs]) await exec(['ip', 'netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const env = process.env;
  const result = await captureBench({
    durationS: Number(env.BENCH_DURATION_S ?? 5),
    connections: Number(env.BENCH_CONNECTIONS ?? 16),
    rounds: Number(env.BENCH_ROUNDS ?? 1),
    ...(env.BENCH_BASELINE ? { baseline: env.BENCH_BASELINE } : {}),
    ...(env.BENCH_CPU_PROF ? { cpuProfDir: env.BENCH_CPU_PROF } : {}),
  });
  console.log(JSON.stringify(result, null, 2));
}
