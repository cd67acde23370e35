// Time offsets: faultline init installs libfaketime and the offset file into
// the faultline-time volume; containers started with the injected env see the
// shifted clock, and a rewrite of the file reaches an already-running process.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { PlannedTimeFault } from '../../contract/plans.ts';
import { DEFAULT_PROXY_UID } from '../../contract/pod-layout.ts';
import { appPod, injectedPod, NODE } from '../support/netns-fixtures.ts';
import { isRoot, SimulatedPod } from '../support/netns-pod.ts';

const TWO_HOURS = 2 * 3_600_000;
const TOLERANCE_MS = 3_000; // process start and curl on a loaded machine

describe('netns: faultline init time offset (libfaketime)', function () {
  this.timeout(90_000);
  let pod: SimulatedPod;

  before(async function () {
    if (!isRoot()) return this.skip(); // the pod simulator needs network namespaces
    pod = new SimulatedPod();
    const time: PlannedTimeFault = { chaosId: 'shop/time', expiresAt: Date.now() + 3_600_000, offsetMs: -TWO_HOURS, containers: ['app'] };
    // The proxy keeps the offset file in line with the live plan, which in a
    // cluster carries the same time fault as the kernel plan.
    await pod.start(injectedPod(appPod({ ports: [8080], runAsUser: 1000 }), { io: [], time }), { livePlan: { http: [], tcp: [], time } });
  });

  after(async () => {
    await pod?.teardown();
    if (pod) assert.deepEqual(await pod.leftovers(), []);
  });

  const appClock = async (): Promise<number> => {
    const r = await pod.execPod(['curl', '-s', '-m', '5', 'http://127.0.0.1:8080/time']);
    assert.equal(r.code, 0, r.stderr);
    return Number(r.stdout) - Date.now();
  };

  it('installs the library and a signed-seconds offset file the app can read', async () => {
    assert.match(pod.init!.stdout, /"time":\{"lib":"[^"]+\/libfaketime\.so\.1","rc":"[^"]+\/faketime\.rc","offset":"-7200s"\}/);
    // The proxy has taken the file over by now (same offset, its own spelling);
    // a re-run of init shows what init itself writes.
    assert.match(await readFile(pod.faketimeFile, 'utf8'), /^-7200s?\n$/);
    assert.equal((await pod.runInit()).code, 0);
    assert.equal(await readFile(pod.faketimeFile, 'utf8'), '-7200s\n');
    assert.equal((await stat(`${pod.timeDir}/libfaketime.so.1`)).mode & 0o777, 0o755);
    assert.equal((await stat(pod.faketimeFile)).mode & 0o777, 0o666);
  });

  it('a process started with the injected env sees the offset', async () => {
    const r = await pod.execIn('app', [NODE, '-e', 'console.log(Date.now())']);
    assert.equal(r.code, 0, r.stderr);
    const skew = Number(r.stdout) - Date.now();
    assert.ok(Math.abs(skew + TWO_HOURS) < TOLERANCE_MS, `skew ${skew} ms`);
    assert.ok(Math.abs((await appClock()) + TWO_HOURS) < TOLERANCE_MS);
  });

  it('keeps the preloaded library root-owned 0755: the proxy cannot replace it (issue 13 L5)', async () => {
    const lib = `${pod.timeDir}/libfaketime.so.1`;
    for (const path of [pod.timeDir, lib]) {
      const st = await stat(path);
      assert.deepEqual([st.uid, st.mode & 0o7777], [0, 0o755], path);
    }
    const before = await readFile(lib);
    const asProxy = (script: string) => pod.execPod(['bash', '-c', script], { uid: DEFAULT_PROXY_UID });
    const attacks = [
      `echo evil > ${lib}`,
      `echo evil > ${lib}.new && mv -f ${lib}.new ${lib}`,
      `rm -f ${lib}`,
      `mv ${pod.timeDir}/offset ${pod.timeDir}/moved`,
      `echo evil > ${pod.timeDir}/libevil.so`,
    ];
    for (const script of attacks) assert.notEqual((await asProxy(script)).code, 0, `the proxy UID could run: ${script}`);
    assert.deepEqual(await readFile(lib), before);
    assert.deepEqual(readdirSync(pod.timeDir).sort(), ['libfaketime.so.1', 'offset']);
  });

  it('a live rewrite of faketime.rc by the proxy UID reaches the running app', async () => {
    const rc = pod.faketimeFile;
    const r = await pod.execPod(['bash', '-c', `echo +3600s > ${rc}.tmp && mv -f ${rc}.tmp ${rc}`], { uid: DEFAULT_PROXY_UID });
    assert.equal(r.code, 0, r.stderr);
    const skew = await appClock();
    assert.ok(Math.abs(skew - 3_600_000) < TOLERANCE_MS, `skew ${skew} ms after rewrite`);
  });

  // An offset that starts, or moves back, under a running process: with
  // CLOCK_MONOTONIC faked too, Node's timers stopped for the jump's length (or
  // its `now >= timer_base` assertion aborted it). Only wall-clock time moves.
  it('keeps a running process’s timers going when the offset moves back under it', async () => {
    const script = 'const t0 = Date.now(); setTimeout(() => { console.log(Date.now()); }, 1500); console.log(t0);';
    const running = pod.execIn('app', [NODE, '-e', script], { timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 700));
    const rc = pod.faketimeFile;
    const moved = await pod.execPod(['bash', '-c', `echo -10800s > ${rc}.tmp && mv -f ${rc}.tmp ${rc}`], { uid: DEFAULT_PROXY_UID });
    assert.equal(moved.code, 0, moved.stderr);
    const r = await running;
    assert.equal(r.code, 0, `the process did not finish its 1.5 s timer: ${r.stderr.slice(0, 500)}`);
    const after = Number(r.stdout.trim().split('\n')[1]);
    const skew = after - Date.now();
    assert.ok(Math.abs(skew + 3 * 3_600_000) < TOLERANCE_MS, `skew ${skew} ms after the move`);
  });

  it('leaves containers outside the time fault on real time', async () => {
    const r = await pod.execIn('faultline-proxy', [NODE, '-e', 'console.log(Date.now())']);
    assert.ok(Math.abs(Number(r.stdout) - Date.now()) < TOLERANCE_MS);
  });
});
