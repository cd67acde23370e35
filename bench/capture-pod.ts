// The proxy and load sides of bench/capture.ts, each run inside one of its
// network namespaces (the apps come from test/support/netns-capture-pod.ts):
//   proxy <root> <planFile> <podIPs> <inboundPort> <outboundPort>
//                                      the CaptureProxy of the checkout at <root> (this one, or the
//                                      baseline commit's), its plan read once: the bench measures the
//                                      datapath, not a plan file re-read per request
//   h1 <url> <seconds> <connections> [header:value]
//                                      autocannon at max rate; prints {rps, requests, p50Ms, p99Ms, errors}
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const [mode, ...args] = process.argv.slice(2);

if (mode === 'proxy') {
  const [root, planFile, podIPs, inboundPort, outboundPort] = args as [string, string, string, string, string];
  const at = (file: string): string => path.join(root, file);
  const { CaptureProxy } = (await import(at('sidecar/capture/capture-proxy.ts'))) as typeof import('../sidecar/capture/capture-proxy.ts');
  const { Metrics } = (await import(at('sidecar/metrics.ts'))) as typeof import('../sidecar/metrics.ts');
  const { createLogger } = (await import(at('common/log.ts'))) as typeof import('../common/log.ts');
  const plan = JSON.parse(readFileSync(planFile, 'utf8')) as import('../contract/plans.ts').LiveFaultPlan;
  const proxy = await CaptureProxy.start({
    listenHost: '::',
    inboundPort: Number(inboundPort),
    outboundPort: Number(outboundPort),
    podAddresses: new Set(podIPs.split(',')),
    nodeAddresses: new Set(),
    plan: () => plan,
    faultHeader: true,
    metrics: new Metrics(),
    log: createLogger('capture-bench', 'silent'),
  });
  await proxy.ready();
  process.on('SIGTERM', () => void proxy.close().then(() => process.exit(0)));
  console.log('proxy ready');
} else if (mode === 'h1') {
  const [url, seconds, connections, header] = args as [string, string, string, string | undefined];
  type Result = { requests: { average: number; total: number }; latency: { p50: number; p99: number }; errors: number; non2xx: number };
  const autocannon = createRequire(import.meta.url)('autocannon') as (o: object) => Promise<Result>;
  const headers = header ? { [header.slice(0, header.indexOf(':'))]: header.slice(header.indexOf(':') + 1) } : {};
  const r = await autocannon({ url, duration: Number(seconds), connections: Number(connections), pipelining: 1, headers });
  console.log(JSON.stringify({ rps: r.requests.average, requests: r.requests.total, p50Ms: r.latency.p50, p99Ms: r.latency.p99, errors: r.errors + r.non2xx }));
} else {
  console.error(`unknown mode ${mode}`);
  process.exitCode = 2;
}
