// faultline-kernel is a native sidecar: it must live as long as its pod, and a
// restart after its faults expired (the kubelet restarting it after a crash or
// an OOM kill) must start cleanly, take away what the expired faults left in
// the kernel (tbf qdisc, nft loss rules, a dead FUSE layer) and pass its
// startup probe.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

// FaultKeeper.lift in the pod's network namespace, as the kernel brake calls it
// when a policy stops running (kernel-brake.ts needs an API server; the lift is
// what this checks). Its own run and state directories, so the pod's running
// faultline-kernel keeps its ready file.
const LIFT = `
const { startFaultKeeper } = await import(process.env.KEEPER);
const { createLogger } = await import(process.env.LOG);
const plan = JSON.parse(process.env.PLAN);
const keeper = await startFaultKeeper(plan, { stateDir: process.env.DIR + '/state', runDir: process.env.DIR + '/run' }, createLogger('kernel'));
await keeper.lift(new Set([plan.kernel.network.chaosId]), 'policy spec.paused');
await keeper.stop();
`;

async function liftInPod(pod: SimulatedPod, kernel: KernelFaultPlan): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'faultline-lift-'));
  try {
    const r = await pod.execPod([NODE, '--input-type=module', '-e', LIFT], {
      env: {
        ...process.env,
        FAULTLINE_LOG_LEVEL: 'info',
        KEEPER: new URL('../../pod-setup/fault-keeper.ts', import.meta.url).href,
        LOG: new URL('../../common/log.ts', import.meta.url).href,
        PLAN: JSON.stringify({ kernel }),
        DIR: dir,
      },
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    return r.stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

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

  it('a lift before expiry (policy paused or deleted) removes the root qdisc and the nft loss chain, and logs each fault lifted', async () => {
    const { pod, expiresAt } = await startPod((at) => ({ network: networkFault(at), io: [] }));
    pods.push(pod);
    const qdisc = await rootQdisc(pod);
    assert.ok(['tbf', 'netem'].includes(qdisc ?? ''), 'the network fault is applied');
    // Without sch_netem the loss is an nft rule: the chain a lift must take away too.
    if (qdisc === 'tbf') assert.equal(await lossChain(pod), true, 'the nft loss fallback is in place');
    const out = await liftInPod(pod, { network: networkFault(expiresAt), io: [] });
    assert.ok(Date.now() < expiresAt, 'the lift came before the fault expired');
    assert.ok(!['tbf', 'netem'].includes((await rootQdisc(pod)) ?? ''), 'no root qdisc after the lift');
    assert.equal(await lossChain(pod), false, 'no nft loss chain after the lift');
    const lifted = out.split('\n').filter((l) => l.includes('"event":"chaos"')).map((l) => JSON.parse(l) as { fault: string; status: string; reason?: string });
    assert.deepEqual(lifted.filter((e) => e.status === 'lifted').map((e) => `${e.fault} ${e.reason}`).sort(), ['network.loss policy spec.paused', 'network.rate policy spec.paused']);
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
