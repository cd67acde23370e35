// The real node: start time to a Ready node, pod create → Running with and
// without Faultline's injection (one pod at a time, BENCH_PODS each, default
// 20), and the RSS of every component with pods running. Needs root, the
// node's packages and `npm run images:build`. Prints one JSON object:
//   startMs         startControlPlane({node}) from call to Node Ready (+ phases)
//   podRunningMs    {plain, injected}: p50/p90/max of create → phase Running
//   rssMiB          per component (shims: each, with pods running)
import { CoreV1Api, Watch, type V1Pod } from '@kubernetes/client-node';
import { readFile } from 'node:fs/promises';
import { NODE_IMAGES } from '../cli/commands/up.ts';
import { DEMO_IMAGE } from '../common/images.ts';
import { startControlPlane, type ControlPlane } from '../controlplane/index.ts';
import { pidsWithArg } from '../controlplane/node/host.ts';
import { CHAOS_LABEL, CHAOS_LABEL_ENABLED } from '../policies/wellknown.ts';

const PODS = Number(process.env.BENCH_PODS ?? 20);

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
};
const stats = (xs: number[]) => ({ n: xs.length, p50: Math.round(quantile(xs, 0.5)), p90: Math.round(quantile(xs, 0.9)), max: Math.round(Math.max(...xs)) });

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0) / 102.4) / 10;
}

/** Creates pods one at a time; each is timed from the create call to the watch seeing phase Running. */
async function timePods(cp: ControlPlane, namespace: string): Promise<number[]> {
  const core = cp.client('admin').makeApiClient(CoreV1Api);
  const running = new Map<string, () => void>();
  const watch = await new Watch(cp.client('admin')).watch(`/api/v1/namespaces/${namespace}/pods`, {}, (_type, pod: V1Pod) => {
    if (pod.status?.phase === 'Running') running.get(pod.metadata!.name!)?.();
  }, () => undefined);
  const times: number[] = [];
  try {
    for (let i = 0; i < PODS; i++) {
      const name = `p${i}`;
      const seen = new Promise<void>((resolve) => running.set(name, resolve));
      const t0 = performance.now();
      await core.createNamespacedPod({
        namespace,
        body: { metadata: { name }, spec: { containers: [{ name: 'app', image: DEMO_IMAGE, command: ['sleep', '3600'] }], terminationGracePeriodSeconds: 0 } },
      });
      await Promise.race([seen, new Promise((_, reject) => setTimeout(() => reject(new Error(`pod ${namespace}/${name} not Running after 120 s`)), 120_000))]);
      times.push(performance.now() - t0);
    }
  } finally {
    watch.abort();
  }
  return times;
}

const t0 = performance.now();
const cp = await startControlPlane({ node: { images: NODE_IMAGES }, progress: () => undefined, readyTimeoutMs: 180_000 });
const startMs = performance.now() - t0;
try {
  const kubectl = (args: string[]) => cp.kubectl('admin', args);
  await kubectl(['create', 'namespace', 'bench-plain']);
  await kubectl(['create', 'namespace', 'bench-injected']);
  await kubectl(['label', 'namespace', 'bench-injected', `${CHAOS_LABEL}=${CHAOS_LABEL_ENABLED}`]);
  // The default ServiceAccount must exist before a pod can be admitted.
  for (const ns of ['bench-plain', 'bench-injected']) {
    while ((await kubectl(['get', 'serviceaccount', 'default', '-n', ns])).code !== 0) await new Promise((r) => setTimeout(r, 100));
  }
  const plain = await timePods(cp, 'bench-plain');
  const injected = await timePods(cp, 'bench-injected');

  const rss: Record<string, unknown> = {};
  for (const [name, pid] of Object.entries(cp.pids)) rss[name] = await rssMiB(pid);
  const shims = (await pidsWithArg(cp.node!.layout.containerdSocket)).filter((p) => p !== cp.pids.containerd);
  const shimRss = await Promise.all(shims.map(rssMiB));
  rss.shimsEach = { n: shimRss.length, p50: quantile(shimRss, 0.5), max: Math.max(...shimRss) };
  const t = cp.timings;
  process.stdout.write(
    `${JSON.stringify({
      startMs: { total: Math.round(startMs), controlPlane: Math.round(t.controlPlane), controllerManager: Math.round(t.controllerManager), faultline: Math.round(t.faultline), node: Math.round(t.node), nodeReadyAfterContainerd: Math.round(cp.node!.timings.ready) },
      podRunningMs: { plain: stats(plain), injected: stats(injected) },
      rssMiB: rss,
    })}\n`,
  );
} finally {
  await cp.stop();
}
