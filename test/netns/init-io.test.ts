// FUSE IO faults served by `faultline kernel` (the faultline-kernel sidecar)
// over a real volume (a tmpfs mount point, as an emptyDir is), read by a
// process running as the app's UID, as the app would.
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import type { PlannedIoFault } from '../../policies/types.ts';
import { appPod, injectedPod, NODE } from '../support/netns-fixtures.ts';
import { isRoot, SimulatedPod } from '../support/netns-pod.ts';
import { TOOLS } from '../support/netns-probes.ts';

const APP_UID = 1000;

interface Call {
  ok: boolean;
  code?: string;
  ms: number;
  bytes?: number;
}

describe('netns: FUSE IO faults (faultline kernel)', function () {
  this.timeout(120_000);
  let pod: SimulatedPod;
  let soonExpiresAt: number;

  before(async function () {
    if (!isRoot()) return this.skip(); // mounting FUSE needs root (CAP_SYS_ADMIN)
    pod = new SimulatedPod();
    const far = Date.now() + 3_600_000;
    // Long enough to outlast a slow pod start on a loaded machine, short enough to wait out.
    soonExpiresAt = Date.now() + 20_000;
    const io: PlannedIoFault[] = [
      { chaosId: 'shop/io', expiresAt: far, volumePath: '/data', path: '/data/faulty/**', methods: ['read'], errno: 'EIO', delayMs: 50, percent: 30 },
      { chaosId: 'shop/soon', expiresAt: soonExpiresAt, volumePath: '/data', path: 'soon/*', methods: ['open'], errno: 'EACCES', delayMs: 0, percent: 100 },
    ];
    // A rate limit ending with the `soon` rule: faultline kernel removes the qdisc then.
    const network = { chaosId: 'shop/rate', expiresAt: soonExpiresAt, device: 'eth0', rateBitsPerSec: 50_000_000 };
    const spec = injectedPod(appPod({ ports: [8080], volumes: { data: '/data' }, runAsUser: APP_UID }), { io, network });
    const dir = pod.emptyDir('data');
    await pod.start(spec, {
      // Data that was in the volume before the FUSE layer went on.
      seedVolumes: async () => {
        for (const sub of ['faulty', 'other', 'soon']) {
          await mkdir(`${dir}/${sub}`, { recursive: true });
          await writeFile(`${dir}/${sub}/file`, `${sub} content\n`);
          await chmod(`${dir}/${sub}/file`, 0o644);
        }
      },
    });
  });

  after(async () => {
    await pod?.teardown();
  });

  const readLoop = async (path: string, count: number): Promise<Call[]> => {
    const r = await pod.execIn('app', [...TOOLS, 'read-loop', path, String(count)], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Call[];
  };

  it('the volume is served through FUSE', async () => {
    const mounts = await readFile('/proc/self/mountinfo', 'utf8');
    // The last mount on a path is the one on top, the one the app sees.
    const line = mounts.split('\n').filter((l) => l.split(' ')[4] === pod.hostPath('app', '/data')).at(-1);
    assert.ok(line?.includes('fuse.faultline'), `no FUSE mount on the volume:\n${line}`);
  });

  it('fails every open of a 100% rule while it is live', async () => {
    assert.ok(Date.now() < soonExpiresAt - 1_000, 'pod start took too long to observe the live rule');
    assert.deepEqual([...new Set((await readLoop('/data/soon/file', 5)).map((c) => c.code))], ['EACCES']);
  });

  it('fails ~30% of 300 reads with EIO, each after the configured 50 ms', async () => {
    const calls = await readLoop('/data/faulty/file', 300);
    const failed = calls.filter((c) => !c.ok);
    // Binomial(300, 0.3): mean 90, sd 7.9; ±4 sd keeps false failures below 1e-4.
    assert.ok(failed.length >= 58 && failed.length <= 122, `${failed.length} of 300 failed`);
    assert.deepEqual([...new Set(failed.map((c) => c.code))], ['EIO']);
    const minDelay = Math.min(...failed.map((c) => c.ms));
    console.log(`      EIO share ${((100 * failed.length) / 300).toFixed(1)}%, fastest EIO after ${minDelay.toFixed(1)} ms`);
    assert.ok(minDelay >= 50, `an EIO came after ${minDelay} ms`);
    for (const c of calls.filter((x) => x.ok)) assert.equal(c.bytes, 'faulty content\n'.length);
  });

  it('passes non-matching paths through untouched, writes included', async () => {
    const calls = await readLoop('/data/other/file', 100);
    assert.equal(calls.filter((c) => !c.ok).length, 0);
    // A file the app creates lands in the real volume, owned like its directory.
    const w = await pod.execIn('app', [NODE, '-e', "require('fs').writeFileSync('/data/new.txt','written through fuse')"]);
    assert.equal(w.code, 0, w.stderr);
    assert.equal(await readFile(pod.hostPath('app', '/data/new.txt'), 'utf8'), 'written through fuse');
  });

  const rootQdisc = async () => (await pod.execPod(['tc', 'qdisc', 'show', 'dev', 'eth0', 'root'])).stdout;

  it('passes through once a fault expires, with the mount still in place', async () => {
    assert.match(await rootQdisc(), /^qdisc tbf /);
    await new Promise((r) => setTimeout(r, Math.max(0, soonExpiresAt - Date.now() + 200)));
    assert.equal((await readLoop('/data/soon/file', 50)).filter((c) => !c.ok).length, 0);
  });

  it('removes the expired network fault\'s qdisc (tc has no expiry of its own)', async () => {
    assert.doesNotMatch(await rootQdisc(), /tbf/);
    assert.match(pod.proc('faultline-kernel').stdout, /network fault expired; its qdisc and nft rules are gone/);
  });

  it('a restarted faultline kernel replaces the dead layer a crash left behind', async () => {
    await pod.crashKernel();
    // Nobody serves the layer now: the app gets ENOTCONN, the state a restart must repair.
    assert.deepEqual([...new Set((await readLoop('/data/other/file', 3)).map((c) => c.code))], ['ENOTCONN']);
    await pod.restartKernel();
    const calls = await readLoop('/data/other/file', 20);
    assert.deepEqual([...new Set(calls.map((c) => c.code ?? 'ok'))], ['ok']);
    assert.match(pod.proc('faultline-kernel').stdout, /serving IO faults/);
  });

  it('teardown (SIGTERM to faultline kernel) leaves no namespaces, mounts, processes or files', async () => {
    const kernel = pod.proc('faultline-kernel');
    await pod.teardown();
    assert.equal(await kernel.exited, 0, kernel.stdout + kernel.stderr);
    assert.match(kernel.stdout, /faultline kernel stopped/);
    assert.deepEqual(await pod.leftovers(), []);
  });
});
