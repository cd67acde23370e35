// Transparent capture's cost, in one run, in real namespaces (needs root):
// a pod namespace with the capture nft table, the CaptureProxy as UID 1337 and
// the apps; a client namespace with the load generator. Every figure is also
// given as a share of direct (a capture-excluded port of the same app).
//   maxRate.direct           HTTP/1.1 straight to the app (excluded port)
//   maxRate.toxiproxy        Toxiproxy's plain pass-through, no toxics (the anchor)
//   maxRate.captureRaw       captured, no HTTP fault on the port: raw path
//   maxRate.captureHttp      captured, an HTTP fault on the port that matches nothing: sniff + HTTP/1 path
//   maxRate.h2Direct / h2    h2c straight / captured with an HTTP fault on the port (HTTP/2 path)
//   BENCH_DURATION_S (5), BENCH_CONNECTIONS (16)
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBinaries } from '../controlplane/binaries.ts';
import { DEFAULT_PROXY_PORTS } from '../contract/pod-layout.ts';
import { renderCaptureRules } from '../pod-setup/redirect/capture-rules.ts';
import { exec, execOk, Proc } from '../test/support/netns-exec.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const NODE = join(ROOT, 'node_modules/.bin/node');
const TOOL = join(ROOT, 'test/support/netns-capture-pod.ts');
const DURATION = process.env.BENCH_DURATION_S ?? '5';
const CONNECTIONS = process.env.BENCH_CONNECTIONS ?? '16';
const POD = '10.215.0.2';
const CLIENT = '10.215.0.1';
const TOXIPROXY_LISTEN = 18080;
const id = `${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
const podNs = `fl-capb-${id}-pod`;
const cliNs = `fl-capb-${id}-cli`;
const dir = mkdtempSync(join(tmpdir(), 'faultline-capture-bench-'));
chmodSync(dir, 0o755);
const planFile = join(dir, 'plan.json');
const procs: Proc[] = [];
const far = Date.now() + 3_600_000;

async function start(name: string, argv: string[], ready: string): Promise<Proc> {
  const p = new Proc(name, argv, { PATH: process.env.PATH });
  procs.push(p);
  const until = Date.now() + 30_000;
  while (!(p.stdout + p.stderr).includes(ready)) {
    if (!p.running || Date.now() > until) throw new Error(`${name} did not start: ${p.stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return p;
}
const setPlan = (ports: number[]) =>
  writeFileSync(planFile, JSON.stringify({ tcp: [], http: ports.map((port) => ({ chaosId: 'b/p', expiresAt: far, name: 'p/r', direction: 'inbound', match: { port, path: { exact: '/never-requested' } }, abort: { status: 503, percent: 100 } })) }));
type Load = { rps: number; p50Ms?: number; p99Ms?: number; errors: number; errorKinds?: Record<string, number> };
const load = async (mode: 'load-h1' | 'load-h2', url: string): Promise<Load> =>
  JSON.parse((await execOk(['ip', 'netns', 'exec', cliNs, NODE, TOOL, mode, url, DURATION, CONNECTIONS], { timeoutMs: 120_000 })).stdout) as never;

try {
  const { 'toxiproxy-server': toxiproxy } = await ensureBinaries();
  await execOk(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=app', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
  for (const ns of [podNs, cliNs]) await execOk(['ip', 'netns', 'add', ns]);
  await execOk(['ip', 'link', 'add', 'eth0', 'netns', podNs, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', cliNs]);
  for (const [ns, v4] of [[podNs, POD], [cliNs, CLIENT]] as const) {
    for (const a of [['link', 'set', 'lo', 'up'], ['link', 'set', 'eth0', 'up'], ['addr', 'add', `${v4}/24`, 'dev', 'eth0']]) await execOk(['ip', 'netns', 'exec', ns, 'ip', ...a]);
  }
  await execOk(['ip', 'netns', 'exec', podNs, 'nft', '-f', '-'], {
    input: renderCaptureRules({
      proxyUid: 1337, inboundPort: DEFAULT_PROXY_PORTS.inbound, outboundPort: DEFAULT_PROXY_PORTS.outbound, proxyPorts: [DEFAULT_PROXY_PORTS.admin, DEFAULT_PROXY_PORTS.toxiproxy],
      excludeInboundPorts: [8082, 8083, TOXIPROXY_LISTEN], excludeInboundCidrs: [], excludeOutboundPorts: [], excludeOutboundCidrs: [],
    }),
  });
  setPlan([8084, 8081]);
  chmodSync(planFile, 0o644);
  await start('apps', ['ip', 'netns', 'exec', podNs, NODE, TOOL, 'apps', dir], 'apps ready');
  await start('proxy', ['ip', 'netns', 'exec', podNs, 'setpriv', '--reuid=1337', '--regid=1337', '--clear-groups', NODE, TOOL, 'proxy', planFile, POD, '10.215.0.250'], 'proxy ready');
  await start('toxiproxy', ['ip', 'netns', 'exec', podNs, toxiproxy, '-host', '127.0.0.1', '-port', String(DEFAULT_PROXY_PORTS.toxiproxy)], 'Starting Toxiproxy HTTP server');
  await execOk(['ip', 'netns', 'exec', podNs, 'curl', '-sf', '-X', 'POST', `http://127.0.0.1:${DEFAULT_PROXY_PORTS.toxiproxy}/proxies`, '-d', JSON.stringify({ name: 'anchor', listen: `${POD}:${TOXIPROXY_LISTEN}`, upstream: `${POD}:8082` })]);

  const only = process.env.BENCH_ONLY_H2 === '1';
  const skipped: Load = { rps: 0, errors: 0 };
  const direct = only ? { ...skipped, rps: 1 } : await load('load-h1', `http://${POD}:8082/`);
  const toxi = only ? skipped : await load('load-h1', `http://${POD}:${TOXIPROXY_LISTEN}/`);
  const raw = only ? skipped : await load('load-h1', `http://${POD}:8080/`);
  const httpPath = only ? skipped : await load('load-h1', `http://${POD}:8084/`);
  const h2Direct = await load('load-h2', `http://${POD}:8083/`);
  const h2 = await load('load-h2', `http://${POD}:8081/`);
  const share = (x: number, of: number) => Math.round((x / of) * 1000) / 1000;
  const row = (r: Load, of: number) => ({ rps: Math.round(r.rps), shareOfDirect: share(r.rps, of), ...(r.p50Ms !== undefined ? { p50Ms: r.p50Ms, p99Ms: r.p99Ms } : {}), errors: r.errors, ...(r.errorKinds ? { errorKinds: r.errorKinds } : {}) });
  console.log(JSON.stringify({
    bench: 'capture',
    durationS: Number(DURATION),
    connections: Number(CONNECTIONS),
    maxRate: {
      direct: row(direct, direct.rps),
      toxiproxy: row(toxi, direct.rps),
      captureRaw: row(raw, direct.rps),
      captureHttp: row(httpPath, direct.rps),
      h2Direct: row(h2Direct, h2Direct.rps),
      h2: row(h2, h2Direct.rps),
    },
    rawVsToxiproxy: share(raw.rps, toxi.rps),
  }, null, 2));
} finally {
  for (const p of procs) await p.stop();
  for (const ns of [podNs, cliNs]) await exec(['ip', 'netns', 'del', ns]);
  rmSync(dir, { recursive: true, force: true });
}
