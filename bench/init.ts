// Wall time of `faultline init` for a typical plan — 3 inbound ports, 2 named
// upstreams, loss + rate (nft/tbf fallbacks where sch_netem is missing) and a
// time offset — each run in a fresh network namespace. Needs root.
// Prints one JSON object: {runs, wallMs, initModuleOnlyWallMs, inProcessMs, targetMs, netem}:
//   wallMs                `faultline init` as the container runs it (the whole CLI loads)
//   initModuleOnlyWallMs  the same command with only its own module loaded, i.e.
//                         what lazy subcommand loading in cli/ would give
//   inProcessMs           init's own work (plan → applied), from its summary log
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InitPlan } from '../contract/plans.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const TARGET_MS = 300;
const root = new URL('..', import.meta.url).pathname;
const node = join(root, 'node_modules/.bin/node');

function run(argv: string[], env: NodeJS.ProcessEnv = { PATH: process.env.PATH }): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env });
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
    proxyUid: 1337,
    inbound: [8080, 8443, 9090].map((port, i) => ({ port, listenPort: 15100 + i })),
    outbound: [
      { host: 'redis.bench', port: 6379, listenPort: 15200 },
      { host: 'db.bench', port: 5432, listenPort: 15201 },
    ],
    excludeInboundPorts: [8081],
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

const wall: number[] = [];
const moduleOnly: number[] = [];
const inProcess: number[] = [];
let netem = 'unknown';
for (let i = 0; i < RUNS; i++) {
  const ns = `fl-bench-${process.pid}-${i}`;
  const dir = mkdtempSync(join(tmpdir(), 'faultline-bench-'));
  try {
    await ok(['ip', 'netns', 'add', ns]);
    await ok(['ip', '-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0']);
    await ok(['ip', '-n', ns, 'link', 'set', 'peer0', 'up']);
    await ok(['ip', '-n', ns, 'addr', 'add', '10.214.0.2/24', 'dev', 'eth0']);
    await ok(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
    mkdirSync(`/etc/netns/${ns}`, { recursive: true });
    writeFileSync(`/etc/netns/${ns}/hosts`, '127.0.0.1 localhost\n10.214.0.10 redis.bench\n10.214.0.11 db.bench\n');
    const env = { PATH: process.env.PATH, FAULTLINE_PLAN: JSON.stringify(plan) };
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
  } finally {
    await run(['ip', 'netns', 'del', ns]);
    rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(
  JSON.stringify({
    bench: 'init',
    runs: RUNS,
    plan: '3 inbound, 2 upstreams, loss 5% + rate 10mbit, time offset',
    netem,
    wallMs: stats(wall),
    initModuleOnlyWallMs: stats(moduleOnly),
    inProcessMs: stats(inProcess),
    targetMs: TARGET_MS,
    withinTarget: quantile(wall, 0.5) <= TARGET_MS,
  }),
);
