// Wall time and peak memory of `faultline init`, each run in a fresh network
// namespace. Needs root. Prints one JSON object.
//
// Wall time, for a typical plan — capture with port and CIDR exclusions, loss +
// rate (nft/tbf fallbacks where sch_netem is missing) and a time offset:
//   wallMs                `faultline init` as the container runs it (the whole CLI loads)
//   initModuleOnlyWallMs  the same command with only its own module loaded, i.e.
//                         what lazy subcommand loading in cli/ would give
//   inProcessMs           init's own work (plan → applied), from its summary log
//
// Memory, for an empty plan and for network + IO + time faults, as the
// container's memory cgroup counts it (anonymous and kernel memory plus the
// page cache the run faults in, children such as nft and tc included), in a
// cgroup of our own below the one this process runs in:
//   peakMiB          memory.max_usage_in_bytes of an unlimited cgroup; `cold`
//                    runs a fresh copy of the node binary whose page cache was
//                    dropped, as on a node where no container has run it yet
//   smallestLimitMiB the lowest limit (1 MiB steps) a warm run survives (not
//                    OOM-killed), and a cold one finishes within 2x its unlimited time
//   atDefault        cold runs under the webhook's default --init-memory: failures
//                    (OOM-killed, or thrashing past that time) and wall time
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InitPlan } from '../contract/plans.ts';
import { DEFAULT_PROXY_PORTS, DEFAULT_PROXY_UID } from '../contract/pod-layout.ts';
import { INJECTION_SETTINGS } from '../webhook/injection-config.ts';
import { MemoryCgroup, MiB, quantityBytes } from '../test/support/memory-cgroup.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const TARGET_MS = 300;
const root = new URL('..', import.meta.url).pathname;
const node = join(root, 'node_modules/.bin/node');

function run(argv: string[], env: NodeJS.ProcessEnv = { PATH: process.env.PATH }, timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, timeout: timeoutMs, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}
async function ok(argv: string[]): Promise<void> {
  const r = await run(argv);
  if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
};
const stats = (xs: number[]) => ({
  median: +quantile(xs, 0.5).toFixed(1),
  p90: +quantile(xs, 0.9).toFixed(1),
  min: +Math.min(...xs).toFixed(1),
  max: +Math.max(...xs).toFixed(1),
});

const expiresAt = Date.now() + 3_600_000;
const plan: InitPlan = {
  version: 'bench',
  wiring: {
    proxyUid: DEFAULT_PROXY_UID,
    capture: {
      inboundPort: DEFAULT_PROXY_PORTS.inbound,
      outboundPort: DEFAULT_PROXY_PORTS.outbound,
      proxyPorts: [DEFAULT_PROXY_PORTS.admin, DEFAULT_PROXY_PORTS.metrics, DEFAULT_PROXY_PORTS.health, DEFAULT_PROXY_PORTS.toxiproxy],
      excludeInboundPorts: [8081],
      excludeInboundCidrs: [],
      excludeOutboundPorts: [5432],
      excludeOutboundCidrs: ['10.96.0.0/12'],
    },
  },
  kernel: {
    network: { chaosId: 'bench/net', expiresAt, device: 'eth0', loss: { percent: 5, correlation: 0 }, rateBitsPerSec: 10_000_000 },
    io: [],
    time: { chaosId: 'bench/time', expiresAt, offsetMs: -7_200_000, containers: [] },
  },
};

const cliArgv = [node, join(root, 'bin/faultline.js'), 'init'];
// Runs the init command's own module with the same flags parseArgs would give it.
const moduleOnlyArgv = (runDir: string, timeDir: string) => [
  node,
  '--input-type=module',
  '-e',
  `import { initCommand } from ${JSON.stringify(join(root, 'cli/commands/init.ts'))};
   process.exitCode = await initCommand.run({ 'run-dir': ${JSON.stringify(runDir)}, 'time-dir': ${JSON.stringify(timeDir)} }, []);`,
];

/** A fresh network namespace shaped like a pod's (eth0, the upstreams in /etc/hosts) and a scratch dir, for one run. */
async function inPodNetns<T>(tag: string, fn: (ns: string, dir: string) => Promise<T>): Promise<T> {
  const ns = `fl-bench-${process.pid}-${tag}`;
  const dir = mkdtempSync(join(tmpdir(), 'faultline-bench-'));
  try {
    await ok(['ip', 'netns', 'add', ns]);
    await ok(['ip', '-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0']);
    await ok(['ip', '-n', ns, 'link', 'set', 'peer0', 'up']);
    await ok(['ip', '-n', ns, 'addr', 'add', '10.214.0.2/24', 'dev', 'eth0']);
    await ok(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
    mkdirSync(`/etc/netns/${ns}`, { recursive: true });
    writeFileSync(`/etc/netns/${ns}/hosts`, '127.0.0.1 localhost\n10.214.0.10 redis.bench\n10.214.0.11 db.bench\n');
    return await fn(ns, dir);
  } finally {
    await run(['ip', 'netns', 'del', ns]);
    rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

const planEnv = (p: InitPlan): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, FAULTLINE_PLAN: JSON.stringify(p) });

const wall: number[] = [];
const moduleOnly: number[] = [];
const inProcess: number[] = [];
let netem = 'unknown';
for (let i = 0; i < RUNS; i++) {
  await inPodNetns(String(i), async (ns, dir) => {
    const env = planEnv(plan);
    // Alternate which variant goes first, so neither always meets a cold cache.
    const variants: Array<[number[], string[]]> = [
      [wall, [...cliArgv, '--run-dir', join(dir, 'run'), '--time-dir', join(dir, 'time')]],
      [moduleOnly, moduleOnlyArgv(join(dir, 'run'), join(dir, 'time'))],
    ];
    if (i % 2 === 1) variants.reverse();
    let r = { code: 0, stdout: '', stderr: '' };
    for (const [into, argv] of variants) {
      const t0 = performance.now();
      r = await run(['ip', 'netns', 'exec', ns, ...argv], env);
      into.push(performance.now() - t0);
      if (r.code !== 0) throw new Error(`faultline init failed: ${r.stdout}${r.stderr}`);
    }
    const summary = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { summary?: { durationMs: number; network?: { netem: string } } }).find((l) => l.summary)?.summary;
    if (summary) {
      inProcess.push(summary.durationMs);
      netem = summary.network?.netem ?? netem;
    }
  });
}

// ---- memory ----
const MEMORY_RUNS = Number(process.env.BENCH_MEMORY_RUNS ?? 5);
const DEFAULT_LIMIT = INJECTION_SETTINGS.initMemory.default;
const memoryPlans: Record<string, InitPlan> = {
  empty: { version: 'bench', wiring: plan.wiring, kernel: { io: [] } },
  'network+io+time': {
    ...plan,
    kernel: {
      ...plan.kernel,
      io: [{ chaosId: 'bench/io', expiresAt, volumePath: '/data', path: '/data/**', methods: ['read', 'write'], errno: 'EIO', delayMs: 10, percent: 10 }],
    },
  },
};

/** One `faultline init` in its own memory cgroup: exit code, peak, OOM kills and wall time. */
async function measuredRun(p: InitPlan, tag: string, opts: { limitBytes?: number; nodeBinary?: string; timeoutMs?: number } = {}) {
  return inPodNetns(tag, async (ns, dir) => {
    const cgroup = new MemoryCgroup(opts.limitBytes);
    try {
      const argv = [opts.nodeBinary ?? node, join(root, 'bin/faultline.js'), 'init', '--run-dir', join(dir, 'run'), '--time-dir', join(dir, 'time')];
      const t0 = performance.now();
      const r = await run(cgroup.wrap(['ip', 'netns', 'exec', ns, ...argv]), planEnv(p), opts.timeoutMs);
      return { code: r.code, ms: performance.now() - t0, peakBytes: cgroup.peakBytes(), oomKills: cgroup.oomKills(), output: r.stdout + r.stderr };
    } finally {
      await cgroup.remove();
    }
  });
}

/**
 * A copy of the node binary with none of it in the page cache: what the first
 * container on a node pays for (its image's node is faulted in, ~80 MiB of
 * page cache on this kernel even for `node --version`). The copy is written,
 * flushed and dropped from the cache (dd's nocache), so no process shares its pages.
 */
async function coldNodeBinary(dir: string): Promise<string> {
  const copy = join(dir, 'node');
  copyFileSync(join(root, 'node_modules/node/bin/node'), copy);
  await ok(['sync', copy]);
  await ok(['dd', `if=${copy}`, 'iflag=nocache', 'count=0', 'status=none']);
  return copy;
}

/** Lowest limit in whole MiB in [lo, hi] that `survives`, assuming survival is monotone in the limit. */
async function smallestLimit(lo: number, hi: number, survives: (limitMiB: number) => Promise<boolean>): Promise<number> {
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (await survives(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

const toMiB = (bytes: number) => +(bytes / MiB).toFixed(1);
const memory: Record<string, unknown> = {};
const scratch = mkdtempSync(join(tmpdir(), 'faultline-bench-node-'));
try {
  for (const [name, p] of Object.entries(memoryPlans)) {
    const warm: Array<{ peakBytes: number; ms: number }> = [];
    const cold: Array<{ peakBytes: number; ms: number }> = [];
    for (let i = 0; i < MEMORY_RUNS; i++) {
      const w = await measuredRun(p, `mw${i}`);
      const c = await measuredRun(p, `mc${i}`, { nodeBinary: await coldNodeBinary(scratch) });
      for (const r of [w, c]) if (r.code !== 0) throw new Error(`faultline init (${name}) exited ${r.code}: ${r.output}`);
      warm.push(w);
      cold.push(c);
    }
    const highest = Math.ceil(Math.max(...cold.map((r) => r.peakBytes)) / MiB);
    // Warm, a run over its limit is OOM-killed. Cold, it is not: the kernel
    // keeps evicting and re-reading node's text and the run crawls (minutes at
    // 64 MiB), so "survives" there means done within twice the unlimited time.
    const coldBudgetMs = Math.ceil(2 * quantile(cold.map((r) => r.ms), 0.5));
    const smallestWarm = await smallestLimit(8, highest, async (mib) => {
      const r = await measuredRun(p, `mbw${mib}`, { limitBytes: mib * MiB, timeoutMs: 20_000 });
      return r.code === 0 && r.oomKills === 0;
    });
    const smallestCold = await smallestLimit(smallestWarm, highest, async (mib) => {
      const r = await measuredRun(p, `mbc${mib}`, { limitBytes: mib * MiB, nodeBinary: await coldNodeBinary(scratch), timeoutMs: coldBudgetMs });
      return r.code === 0 && r.oomKills === 0;
    });
    const atDefault: Array<{ code: number; ms: number; oomKills: number }> = [];
    for (let i = 0; i < MEMORY_RUNS; i++)
      atDefault.push(await measuredRun(p, `md${i}`, { limitBytes: quantityBytes(DEFAULT_LIMIT), nodeBinary: await coldNodeBinary(scratch), timeoutMs: coldBudgetMs }));
    memory[name] = {
      peakMiB: { warm: stats(warm.map((r) => toMiB(r.peakBytes))), cold: stats(cold.map((r) => toMiB(r.peakBytes))) },
      unlimitedWallMs: { warm: stats(warm.map((r) => r.ms)), cold: stats(cold.map((r) => r.ms)) },
      smallestLimitMiB: { warm: smallestWarm, coldWithin2xTime: smallestCold },
      atDefault: {
        limit: DEFAULT_LIMIT,
        coldRuns: MEMORY_RUNS,
        failures: atDefault.filter((r) => r.code !== 0).length,
        oomKills: atDefault.reduce((n, r) => n + r.oomKills, 0),
        wallMs: stats(atDefault.map((r) => r.ms)),
      },
    };
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

console.log(
  JSON.stringify({
    bench: 'init',
    runs: RUNS,
    plan: 'capture with exclusions, loss 5% + rate 10mbit, time offset',
    netem,
    wallMs: stats(wall),
    initModuleOnlyWallMs: stats(moduleOnly),
    inProcessMs: stats(inProcess),
    targetMs: TARGET_MS,
    withinTarget: quantile(wall, 0.5) <= TARGET_MS,
    memory: { runs: MEMORY_RUNS, ...memory },
  }),
);
