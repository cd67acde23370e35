// The fail-open gate in a simulated pod (network namespaces, real nft, the
// real proxy, faultline-failopen's own bash script in a memory cgroup of its
// own): CYCLES times, SIGKILL the proxy, then restart it. Per cycle:
//   directMs     death → a new inbound connection reaches the app itself, as a
//                client polling every 2 ms sees it (refused attempts counted)
//   openMs       death → the watcher's "gate open" log line (after nft ran)
//   closeMs      the restarted proxy holding its end → "gate closed"
// and for the watcher: its RSS (every process in its cgroup), the cgroup's
// peak (the nft runs included), and its CPU time (its own and the nft
// children's, from /proc/<pid>/stat) over the cycles and while idle.
// Needs root. Prints one JSON object, with the load average.
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { FAIL_OPEN_CONTAINER_NAME, PROXY_CONTAINER_NAME } from '../contract/pod-layout.ts';
import { MiB } from '../test/support/memory-cgroup.ts';
import { probeUntilDirect, proxyLog, until, watcherLog } from '../test/support/netns-fail-open.ts';
import { appPod, injectedPod } from '../test/support/netns-fixtures.ts';
import { isRoot, SimulatedPod } from '../test/support/netns-pod.ts';

const CYCLES = Number(process.env.BENCH_CYCLES ?? 10);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 10);

if (!isRoot()) {
  console.error('bench:failopen needs root (network namespaces, nft, memory cgroups)');
  process.exit(1);
}

const expiresAt = Date.now() + 3_600_000;
const load = () => loadavg().map((l) => Math.round(l * 100) / 100);
const pod = new SimulatedPod();
const spec = injectedPod(appPod({ ports: [8080], runAsUser: 1000 }));

/** Clock ticks of a process and its waited-for children (utime, stime, cutime, cstime). */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return [11, 12, 13, 14].reduce((n, i) => n + Number(fields[i]), 0);
}
const TICK_MS = 10; // USER_HZ = 100 on Linux
function watcherPids(): number[] {
  const cgroup = pod.cgroups.get(FAIL_OPEN_CONTAINER_NAME)!;
  return readFileSync(join(cgroup.dir, 'cgroup.procs'), 'utf8').trim().split('\n').map(Number);
}
const rssKiB = (pid: number) => Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

try {
  const loadAtStart = load();
  await pod.start(spec, {
    measureMemory: true,
    livePlan: { http: [{ chaosId: 'bench/in', expiresAt, name: 'in', direction: 'inbound', match: { port: 8080, path: { prefix: '/faulted' } }, abort: { status: 418, percent: 100 } }], tcp: [] },
  });
  const [bash] = watcherPids();
  const ticksAtStart = cpuTicks(bash!);
  const cycles: Array<{ directMs: number; refused: number; openMs: number; closeMs: number }> = [];
  for (let i = 0; i < CYCLES; i++) {
    const opens = watcherLog(pod).filter((l) => l.msg.startsWith('proxy is down')).length;
    const probe = await probeUntilDirect(pod, 8080);
    const killedAt = await pod.crash(PROXY_CONTAINER_NAME);
    const seen = await probe.result;
    const opened = await until('the gate opening', () => watcherLog(pod).filter((l) => l.msg.startsWith('proxy is down'))[opens]);
    const closes = watcherLog(pod).filter((l) => l.msg.startsWith('proxy is up')).length;
    await pod.restartProxy();
    const held = await until('the proxy holding its end', () => proxyLog(pod).find((l) => l.msg.startsWith('holding the liveness FIFO')));
    const closed = await until('the gate closing', () => watcherLog(pod).filter((l) => l.msg.startsWith('proxy is up'))[closes]);
    cycles.push({ directMs: seen.directAt - killedAt, refused: seen.failed, openMs: opened.time - killedAt, closeMs: closed.time - held.time });
  }
  const flips = 2 * CYCLES;
  const cyclingTicks = cpuTicks(bash!) - ticksAtStart;
  const idleFrom = cpuTicks(bash!);
  await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
  const idleTicks = cpuTicks(bash!) - idleFrom;
  const pids = watcherPids();
  const summary = (key: 'directMs' | 'openMs' | 'closeMs') => {
    const xs = cycles.map((c) => c[key]);
    return { p50: percentile(xs, 50), max: Math.max(...xs), min: Math.min(...xs) };
  };
  console.log(
    JSON.stringify(
      {
        bench: 'fail-open',
        cycles: CYCLES,
        deathToDirectMs: summary('directMs'),
        refusedPerCycle: { p50: percentile(cycles.map((c) => c.refused), 50), max: Math.max(...cycles.map((c) => c.refused)) },
        deathToGateOpenMs: summary('openMs'),
        proxyHoldingToGateClosedMs: summary('closeMs'),
        watcher: {
          processes: pids.length,
          rssKiB: pids.reduce((n, pid) => n + rssKiB(pid), 0),
          cgroupPeakMiB: +(pod.cgroups.get(FAIL_OPEN_CONTAINER_NAME)!.peakBytes() / MiB).toFixed(1),
          cpuMsPerFlip: +((cyclingTicks * TICK_MS) / flips).toFixed(1),
          cpuMsIdle: idleTicks * TICK_MS,
          idleSeconds: IDLE_SECONDS,
        },
        perCycle: cycles,
        loadavgAtStart: loadAtStart,
        loadavgAtEnd: load(),
      },
      null,
      2,
    ),
  );
} finally {
  await pod.teardown();
}
