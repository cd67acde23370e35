// Peak memory of each Faultline container in a simulated pod (network
// namespaces, test/support/netns-pod.ts), as the kubelet's container cgroup
// counts it: each container runs in a memory cgroup of its own below this
// process's, children included (Toxiproxy under the proxy, FUSE threads in
// faultline-kernel). Needs root. Prints one JSON object.
//
// The pod has an inbound HTTP port, an IO fault on a volume and a rate limit,
// so all three containers run: faultline-init, faultline-proxy and the
// privileged faultline-kernel serving FUSE. Load, bounded in count and time:
//   HTTP   autocannon from the client namespace through the proxy to the app
//   IO     reads through the FUSE layer (a third fail with EIO) and writes
// The figures are warm: node's binary is already in the page cache, charged
// elsewhere. bench:init measures what a cold binary adds (the first container
// on a node pays for it), and the smallest limit each needs.
// Each figure is compared with the webhook's default limit for that container.
import { writeFile } from 'node:fs/promises';
import { INIT_CONTAINER_NAME, KERNEL_CONTAINER_NAME, PROXY_CONTAINER_NAME } from '../contract/pod-layout.ts';
import { INJECTION_SETTINGS } from '../webhook/injection-config.ts';
import { MiB, quantityBytes } from '../test/support/memory-cgroup.ts';
import { appPod, injectedPod, NODE } from '../test/support/netns-fixtures.ts';
import { repoRoot } from '../test/support/netns-paths.ts';
import { isRoot, POD_IP, SimulatedPod } from '../test/support/netns-pod.ts';
import { TOOLS } from '../test/support/netns-probes.ts';

const HTTP_SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 10);
const HTTP_CONNECTIONS = 32;
const IO_READS = Number(process.env.BENCH_IO_READS ?? 3000);

if (!isRoot()) {
  console.error('bench:pod-memory needs root (network namespaces, FUSE, memory cgroups)');
  process.exit(1);
}

const expiresAt = Date.now() + 3_600_000;
const spec = injectedPod(appPod({ ports: [8080], volumes: { data: '/data' }, runAsUser: 1000 }), {
  network: { chaosId: 'bench/rate', expiresAt, device: 'eth0', rateBitsPerSec: 1_000_000_000 },
  io: [{ chaosId: 'bench/io', expiresAt, volumePath: '/data', path: '/data/faulty/**', methods: ['read'], errno: 'EIO', delayMs: 0, percent: 30 }],
});
const pod = new SimulatedPod();
const toMiB = (bytes: number) => +(bytes / MiB).toFixed(1);
let result: Record<string, unknown>;
try {
  await pod.start(spec, {
    measureMemory: true,
    seedVolumes: async () => {
      const dir = pod.emptyDir('data');
      await writeFile(`${dir}/file`, 'x'.repeat(64 * 1024), { mode: 0o666 });
    },
  });
  const autocannon = `${repoRoot}/node_modules/autocannon/autocannon.js`;
  const [http, reads, writes] = await Promise.all([
    pod.execClient([NODE, autocannon, '-j', '-c', String(HTTP_CONNECTIONS), '-d', String(HTTP_SECONDS), `http://${POD_IP}:8080/`], { timeoutMs: (HTTP_SECONDS + 30) * 1000 }),
    pod.execIn('app', [...TOOLS, 'read-loop', '/data/file', String(IO_READS)], { timeoutMs: 120_000 }),
    pod.execIn('app', [NODE, '-e', "const fs=require('fs');const b=Buffer.alloc(1<<20,7);for(let i=0;i<32;i++){fs.writeFileSync('/data/w',b);fs.unlinkSync('/data/w')}"], { timeoutMs: 120_000 }),
  ]);
  for (const [what, r] of [['autocannon', http], ['read loop', reads], ['writes', writes]] as const) if (r.code !== 0) throw new Error(`${what} failed: ${r.stderr}`);
  const load = JSON.parse(http.stdout) as { requests: { total: number; average: number }; non2xx: number; errors: number };
  const defaults: Record<string, string> = {
    [INIT_CONTAINER_NAME]: INJECTION_SETTINGS.initMemory.default,
    [PROXY_CONTAINER_NAME]: INJECTION_SETTINGS.proxyMemoryLimit.default,
    [KERNEL_CONTAINER_NAME]: INJECTION_SETTINGS.kernelMemory.default,
  };
  const containers: Record<string, unknown> = {};
  for (const name of [INIT_CONTAINER_NAME, PROXY_CONTAINER_NAME, KERNEL_CONTAINER_NAME]) {
    const cgroup = pod.cgroups.get(name)!;
    const limit = defaults[name]!;
    containers[name] = {
      peakMiB: toMiB(cgroup.peakBytes()),
      defaultLimit: limit,
      headroom: +(quantityBytes(limit) / cgroup.peakBytes()).toFixed(2),
      oomKills: cgroup.oomKills(),
    };
  }
  result = {
    bench: 'pod-memory',
    load: {
      http: { seconds: HTTP_SECONDS, connections: HTTP_CONNECTIONS, requests: load.requests.total, perSecond: load.requests.average, non2xx: load.non2xx, errors: load.errors },
      io: { reads: IO_READS, writesMiB: 32 },
    },
    containers,
  };
} finally {
  await pod.teardown();
}
console.log(JSON.stringify(result));
