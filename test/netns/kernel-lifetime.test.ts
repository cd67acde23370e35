// faultline-kernel is a native sidecar: it must live as long as its pod, and a
// restart after its faults expired (the kubelet restarting it after a crash or
// an OOM kill) must start cleanly, take away what the expired faults left in
// the kernel (tbf qdisc, nft loss rules, a dead FUSE layer) and pass its
// startup probe.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import type { KernelFaultPlan } from '../../contract/plans.ts';
import { KERNEL_CONTAINER_NAME } from '../../contract/pod-layout.ts';
import { appPod, injectedPod, NODE } from '../support/netns-fixtures.ts';
import { isRoot, SimulatedPod } from '../support/netns-pod.ts';

const APP_UID = 1000;
// Long enough to outlast a slow pod start on a loaded machine, short enough to wait out.
const FAULT_SECONDS = 12;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

async function startPod(kernel: (expiresAt: number) => KernelFaultPlan): Promise<{ pod: SimulatedPod; expiresAt: number }> {
  const pod = new SimulatedPod();
  const expiresAt = Date.now() + FAULT_SECONDS * 1000;
  try {
    await pod.start(injectedPod(appPod({ ports: [8080], volumes: { data: '/data' }, runAsUser: APP_UID }), kernel(expiresAt)));
  } catch (err) {
    await pod.teardown();
    throw err;
  }
  return { pod, expiresAt };
}

/** Loss (nft fallback without sch_netem) and a rate (tbf), as the webhook plans them. */
const networkFault = (expiresAt: number) => ({
  chaosId: 'shop/net',
  expiresAt,
  experiment: 'uid-net/1',
  device: 'eth0',
  loss: { percent: 50, correlation: 0 },
  rateBitsPerSec: 50_000_000,
});

const rootQdisc = async (pod: SimulatedPod) => /^qdisc (\S+)/m.exec((await pod.execPod(['tc', 'qdisc', 'show', 'dev', 'eth0', 'root'])).stdout)?.[1];
const lossChain = async (pod: SimulatedPod) => (await pod.execPod(['nft', 'list', 'chain', 'inet', 'faultline', 'loss'])).code === 0;
const topMountType = async (path: string) =>
  (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[4] === path)
    .map((f) => f[f.indexOf('-') + 1])
    .at(-1);

/** Runs faultline-kernel's own startup probe, as the kubelet would (exec in the container). */
async function startupProbePasses(pod: SimulatedPod): Promise<boolean> {
  const spec = pod.spec!.spec!.initContainers!.find((c) => c.name === KERNEL_CONTAINER_NAME)!;
  const command = spec.startupProbe?.exec?.command;
  assert.ok(command, `${KERNEL_CONTAINER_NAME} has an exec startup probe`);
  return (await pod.execIn(KERNEL_CONTAINER_NAME, command)).code === 0;
}

/** SIGTERM as the kubelet sends it at pod deletion: a clean exit 0, promptly. */
async function assertStopsOnSigterm(pod: SimulatedPod): Promise<void> {
  const kernel = pod.proc(KERNEL_CONTAINER_NAME);
  const t0 = performance.now();
  process.kill(kernel.child.pid!, 'SIGTERM');
  const code = await Promise.race([kernel.exited, sleep(5_000).then(() => 'still running')]);
  assert.equal(code, 0, kernel.stdout + kernel.stderr);
  assert.ok(performance.now() - t0 < 5_000);
  assert.match(kernel.stdout, /faultline kernel stopped/);
}

describe('netns: faultline kernel lives as long as its pod', function () {
  this.timeout(120_000);
  const pods: SimulatedPod[] = [];
  before(function () {
    if (!isRoot()) this.skip(); // network namespaces, tc, nft and FUSE need root
  });
  after(async () => {
    for (const p of pods) await p.teardown();
  });

  it('stays up after its network fault ends and its qdisc-removal timer fired; SIGTERM then exits 0', async () => {
    const { pod, expiresAt } = await startPod((at) => ({ network: networkFault(at), io: [] }));
    pods.push(pod);
    assert.ok(['tbf', 'netem'].includes((await rootQdisc(pod)) ?? ''), 'the network fault is applied');
    await sleep(expiresAt - Date.now() + 1_500);
    const kernel = pod.proc(KERNEL_CONTAINER_NAME);
    assert.match(kernel.stdout, /network fault expired/);
    // The chaos event log: a start and an expiry per fault kind, under the policy generation's chaos_id.
    const events = kernel.stdout.split('\n').filter((l) => l.includes('"event":"chaos"')).map((l) => JSON.parse(l) as { chaos_id: string; fault: string; status: string; duration_ms: number });
    assert.deepEqual(events.map((e) => `${e.chaos_id} ${e.fault} ${e.status}`).sort(), [
      'uid-net/1 network.loss expired', 'uid-net/1 network.loss started', 'uid-net/1 network.rate expired', 'uid-net/1 network.rate started',
    ]);
    assert.ok(events.filter((e) => e.status === 'expired').every((e) => e.duration_ms > 0));
    assert.ok(!['tbf', 'netem'].includes((await rootQdisc(pod)) ?? ''), 'the qdisc is removed at expiry');
    assert.equal(await lossChain(pod), false, 'the nft loss chain is removed at expiry');
    // Nothing is left to keep Node's event loop busy: before the fix it exited 0 here.
    await sleep(2_000);
    assert.ok(kernel.running, `faultline kernel exited (${kernel.child.exitCode}):\n${kernel.stdout}${kernel.stderr}`);
    assert.equal(await startupProbePasses(pod), true);
    await assertStopsOnSigterm(pod);
  });

  describe('restarted after its faults expired (M1)', () => {
    let pod: SimulatedPod;
    let expiresAt: number;
    before(async () => {
      ({ pod, expiresAt } = await startPod((at) => ({
        network: networkFault(at),
        io: [{ chaosId: 'shop/io', expiresAt: at, volumePath: '/data', path: '/data/**', methods: ['read', 'write'], errno: 'EIO', delayMs: 0, percent: 100 }],
      })));
      pods.push(pod);
    });

    const appRead = () => pod.execIn('app', [NODE, '-e', "process.stdout.write(require('fs').readFileSync('/data/f.txt', 'utf8'))"]);

    it('a crash before expiry leaves the qdisc, the nft loss rules and a dead FUSE layer behind', async () => {
      assert.equal(await topMountType(pod.hostPath('app', '/data')), 'fuse.faultline');
      await pod.crashKernel();
      await sleep(expiresAt - Date.now() + 1_100);
      // What the restarted sidecar finds: nobody removed any of it.
      assert.ok(['tbf', 'netem'].includes((await rootQdisc(pod)) ?? ''), 'stale qdisc');
      if ((await rootQdisc(pod)) === 'tbf') assert.equal(await lossChain(pod), true, 'stale nft loss chain');
      assert.match((await appRead()).stderr, /ENOTCONN/);
    });

    it('the restart removes them: no tbf/netem qdisc, no nft loss chain, the volume reads and writes normally', async () => {
      await pod.restartKernel();
      assert.ok(!['tbf', 'netem'].includes((await rootQdisc(pod)) ?? ''), `root qdisc ${await rootQdisc(pod)}`);
      assert.equal(await lossChain(pod), false);
      assert.notEqual(await topMountType(pod.hostPath('app', '/data')), 'fuse.faultline');
      const write = await pod.execIn('app', [NODE, '-e', "require('fs').writeFileSync('/data/f.txt', 'after expiry')"]);
      assert.equal(write.code, 0, write.stderr);
      const read = await appRead();
      assert.equal(read.code, 0, read.stderr);
      assert.equal(read.stdout, 'after expiry');
    });

    it('stays up and passes its startup probe; SIGTERM exits 0', async () => {
      await sleep(2_000);
      const kernel = pod.proc(KERNEL_CONTAINER_NAME);
      assert.ok(kernel.running, `faultline kernel exited (${kernel.child.exitCode}):\n${kernel.stdout}${kernel.stderr}`);
      assert.equal(await startupProbePasses(pod), true);
      await assertStopsOnSigterm(pod);
    });
  });
});
