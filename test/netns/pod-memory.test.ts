// Faultline's containers fit the memory limits the webhook gives them: each
// runs in a memory cgroup limited to its own rendered resources.limits.memory,
// as the kubelet would set it, through start and a short load. At the old
// 32Mi default faultline-init was OOM-killed (exit 137) before doing anything.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { INIT_CONTAINER_NAME, KERNEL_CONTAINER_NAME, PROXY_CONTAINER_NAME } from '../../policies/wellknown.ts';
import { MiB } from '../support/memory-cgroup.ts';
import { appPod, injectedPod } from '../support/netns-fixtures.ts';
import { isRoot, POD_IP, SimulatedPod } from '../support/netns-pod.ts';
import { TOOLS } from '../support/netns-probes.ts';

describe('netns: Faultline containers within their memory limits', function () {
  this.timeout(120_000);
  let pod: SimulatedPod | undefined;
  before(function () {
    if (!isRoot()) this.skip(); // namespaces, FUSE and memory cgroups need root
  });
  after(async () => {
    await pod?.teardown();
  });

  it('faultline-init, faultline-proxy and faultline-kernel run network, IO and time faults with no OOM kill', async () => {
    const expiresAt = Date.now() + 3_600_000;
    const spec = injectedPod(appPod({ ports: [8080], volumes: { data: '/data' }, runAsUser: 1000 }), {
      network: { chaosId: 'shop/net', expiresAt, device: 'eth0', loss: { percent: 1, correlation: 0 }, rateBitsPerSec: 100_000_000 },
      io: [{ chaosId: 'shop/io', expiresAt, volumePath: '/data', path: '/data/**', methods: ['read'], errno: 'EIO', delayMs: 0, percent: 10 }],
      time: { chaosId: 'shop/time', expiresAt, offsetMs: -7_200_000, containers: [] },
    });
    const p = new SimulatedPod();
    pod = p;
    const started = p.start(spec, {
      enforceMemoryLimits: true,
      seedVolumes: () => writeFile(`${p.emptyDir('data')}/file`, 'data\n', { mode: 0o644 }),
    });
    await started.catch((err: Error) => {
      const init = p.cgroups.get(INIT_CONTAINER_NAME);
      throw new Error(`${err.message}\n(faultline-init: ${init?.oomKills()} OOM kills, peak ${((init?.peakBytes() ?? 0) / MiB).toFixed(1)} MiB)`);
    });
    for (let i = 0; i < 20; i++) assert.equal((await p.execClient(['curl', '-sf', '-o', '/dev/null', `http://${POD_IP}:8080/`])).code, 0);
    assert.equal((await p.execIn('app', [...TOOLS, 'read-loop', '/data/file', '500'])).code, 0);
    for (const name of [INIT_CONTAINER_NAME, PROXY_CONTAINER_NAME, KERNEL_CONTAINER_NAME]) {
      const cgroup = p.cgroups.get(name)!;
      const limit = [...spec.spec!.initContainers!].find((c) => c.name === name)!.resources!.limits!.memory;
      console.log(`      ${name}: peak ${(cgroup.peakBytes() / MiB).toFixed(1)} MiB of ${limit}`);
      assert.equal(cgroup.oomKills(), 0, `${name} was OOM-killed under ${limit}`);
    }
    assert.equal(p.init!.code, 0);
    assert.ok(p.proc(PROXY_CONTAINER_NAME).running && p.proc(KERNEL_CONTAINER_NAME).running);
  });
});
