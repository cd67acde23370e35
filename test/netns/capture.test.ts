// Transparent capture end to end in real namespaces: the capture nft table
// (capture-rules.ts) in a pod namespace, the CaptureProxy as the proxy UID,
// apps speaking HTTP/1.1, h2c, gRPC, TLS and raw TCP, and a client namespace
// on a veth pair. The client's IPv6 address plays the node (kubelet probes).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LiveFaultPlan, PlannedHttpFault } from '../../contract/plans.ts';
import { DEFAULT_PROXY_PORTS } from '../../contract/pod-layout.ts';
import { renderCaptureRules } from '../../pod-setup/redirect/capture-rules.ts';
import { exec, execOk, Proc } from '../support/netns-exec.ts';
import { NODE } from '../support/netns-fixtures.ts';
import { repoRoot } from '../support/netns-paths.ts';
import { isRoot } from '../support/netns-pod.ts';

const POD4 = '10.214.0.2';
const POD6 = 'fd14::2';
const CLIENT4 = '10.214.0.1';
const CLIENT6 = 'fd14::1'; // plays the node: status.hostIP
const PROXY_UID = 1337;
const APP_UID = 1000;
const TOOL = `${repoRoot}/test/support/netns-capture-pod.ts`;
const far = Date.now() + 3_600_000;
const rule = (over: Partial<PlannedHttpFault>): PlannedHttpFault => ({ chaosId: 'shop/p', expiresAt: far, name: 'p/r', direction: 'inbound', match: {}, ...over });

async function waitUntil(cond: () => Promise<boolean>, what: string, timeoutMs = 1_000): Promise<void> {
  // 1 s: a new outbound policy must take effect on a running pod within a second.
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('netns: transparent capture (one inbound and one outbound listener, original destination per connection)', function () {
  this.timeout(120_000);
  const id = `${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
  const podNs = `fl-cap-${id}-pod`;
  const cliNs = `fl-cap-${id}-cli`;
  let dir: string;
  let planFile: string;
  const procs: Proc[] = [];

  const setPlan = (plan: Partial<LiveFaultPlan>) => writeFileSync(planFile, JSON.stringify({ http: [], tcp: [], ...plan }));
  const inPod = (argv: string[], uid?: number) =>
    exec(['ip', 'netns', 'exec', podNs, ...(uid === undefined ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups']), ...argv], { timeoutMs: 20_000 });
  const inClient = (argv: string[]) => exec(['ip', 'netns', 'exec', cliNs, ...argv], { timeoutMs: 20_000 });
  const curl = (args: string[]) => inClient(['curl', '-s', '-m', '5', '-o', '-', '-w', '\\n%{http_code}', ...args]);
  const start = async (name: string, argv: string[], ready: string): Promise<Proc> => {
    const p = new Proc(name, argv, { PATH: process.env.PATH });
    procs.push(p);
    const until = Date.now() + 30_000;
    while (!p.stdout.includes(ready)) {
      if (!p.running || Date.now() > until) throw new Error(`${name} did not start: ${p.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return p;
  };

  before(async function () {
    if (!isRoot()) return this.skip();
    dir = mkdtempSync(join(tmpdir(), 'faultline-capture-'));
    chmodSync(dir, 0o755);
    planFile = join(dir, 'plan.json');
    setPlan({});
    chmodSync(planFile, 0o644);
    await execOk(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=app', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
    for (const ns of [podNs, cliNs]) await execOk(['ip', 'netns', 'add', ns]);
    await execOk(['ip', 'link', 'add', 'eth0', 'netns', podNs, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', cliNs]);
    for (const [ns, v4, v6] of [[podNs, POD4, POD6], [cliNs, CLIENT4, CLIENT6]] as const) {
      const ip = (...a: string[]) => execOk(['ip', 'netns', 'exec', ns, 'ip', ...a]);
      await ip('link', 'set', 'lo', 'up');
      await ip('link', 'set', 'eth0', 'up');
      await ip('addr', 'add', `${v4}/24`, 'dev', 'eth0');
      await ip('-6', 'addr', 'add', `${v6}/64`, 'dev', 'eth0', 'nodad');
    }
    await execOk(['ip', 'netns', 'exec', podNs, 'nft', '-f', '-'], {
      input: renderCaptureRules({
        proxyUid: PROXY_UID,
        inboundPort: DEFAULT_PROXY_PORTS.inbound,
        outboundPort: DEFAULT_PROXY_PORTS.outbound,
        proxyPorts: [DEFAULT_PROXY_PORTS.admin, DEFAULT_PROXY_PORTS.metrics, DEFAULT_PROXY_PORTS.health],
        excludeInboundPorts: [8082],
        excludeInboundCidrs: [],
        excludeOutboundPorts: [],
        excludeOutboundCidrs: [],
      }),
    });
    await start('apps', ['ip', 'netns', 'exec', podNs, NODE, TOOL, 'apps', dir], 'apps ready');
    // The pod's resolver: `ip netns exec` mounts this over /etc/hosts for what it runs.
    mkdirSync(`/etc/netns/${podNs}`, { recursive: true });
    writeFileSync(`/etc/netns/${podNs}/hosts`, `127.0.0.1 localhost\n${CLIENT4} upstream.test\n`);
    await start('proxy', ['ip', 'netns', 'exec', podNs, 'setpriv', `--reuid=${PROXY_UID}`, `--regid=${PROXY_UID}`, '--clear-groups', NODE, TOOL, 'proxy', planFile, `${POD4},${POD6}`, CLIENT6], 'proxy ready');
    await start('upstream', ['ip', 'netns', 'exec', cliNs, NODE, '-e', "require('http').createServer((q,s)=>{console.log('hit '+q.url);s.end('upstream '+q.url)}).listen(7000,()=>console.log('up'))"], 'up');
  });

  after(async () => {
    for (const p of procs) await p.stop();
    for (const ns of [podNs, cliNs]) await exec(['ip', 'netns', 'del', ns]);
    if (dir) rmSync(dir, { recursive: true, force: true });
    rmSync(`/etc/netns/${podNs}`, { recursive: true, force: true });
    rmSync(`/etc/netns/${cliNs}`, { recursive: true, force: true });
    const left = (await exec(['ip', 'netns', 'list'])).stdout;
    assert.ok(!left.includes(podNs) && !left.includes(cliNs), 'netns left behind');
    assert.ok(!dir || !existsSync(dir));
    assert.ok(!existsSync(`/etc/netns/${podNs}`));
    for (const p of procs) assert.ok(!p.running, `${p.name} still running`);
  });

  it('HTTP/1.1: faults the matched request; forwards the rest to the pod IP, not 127.0.0.1', async () => {
    setPlan({ http: [rule({ match: { port: 8080, path: { prefix: '/faulted' } }, abort: { status: 418, percent: 100 } })] });
    assert.match((await curl([`http://${POD4}:8080/faulted`])).stdout, /\n418$/);
    assert.equal((await curl([`http://${POD4}:8080/ok`])).stdout, `app 8080 /ok from ::ffff:${POD4}\n200`);
  });

  it('h2c (prior knowledge): the same faults per stream, the rest relayed', async () => {
    setPlan({ http: [rule({ match: { port: 8081, path: { prefix: '/faulted' } }, abort: { status: 418, percent: 100 } })] });
    assert.match((await curl(['--http2-prior-knowledge', `http://${POD4}:8081/faulted`])).stdout, /\n418$/);
    assert.equal((await curl(['--http2-prior-knowledge', `http://${POD4}:8081/ok`])).stdout, `app 8081 /ok from ::ffff:${POD4}\n200`);
  });

  it('gRPC: aborts the matched method with its grpc-status, other methods reach the app', async () => {
    setPlan({ http: [rule({ protocol: 'grpc', match: { port: 50051, path: { exact: '/shop.Cart/GetCart' } }, abort: { status: 200, percent: 100, grpcStatus: 14, body: 'chaos' } })] });
    const faulted = JSON.parse((await inClient([NODE, TOOL, 'grpc', `${POD4}:50051`, 'GetCart'])).stdout) as { code: number; details: string };
    assert.deepEqual([faulted.code, faulted.details], [14, 'chaos']);
    const ok = JSON.parse((await inClient([NODE, TOOL, 'grpc', `${POD4}:50051`, 'AddItem'])).stdout) as { code: number; res: { from: string } };
    assert.equal(ok.code, 0);
    assert.match(ok.res.from, new RegExp(`${POD4.replace(/\./g, '\\.')}:\\d+$`));
  });

  it('TLS: passes through untouched even with an HTTP fault on its port (HTTP faults cannot apply to it)', async () => {
    setPlan({ http: [rule({ match: { port: 8443 }, abort: { status: 418, percent: 100 } })] });
    assert.equal((await curl(['-k', `https://${POD4}:8443/faulted`])).stdout, `app 8443 /faulted from ::ffff:${POD4}\n200`);
  });

  it('raw TCP: echoes byte-exact on a port with no HTTP fault, and with one (sniffed, then raw)', async () => {
    const echo = (payload: string) =>
      inClient([NODE, '-e', `const s=require('net').connect(9000,'${POD4}',()=>s.end('${payload}'));let d='';s.on('data',c=>d+=c);s.on('end',()=>console.log(d))`]);
    setPlan({});
    assert.equal((await echo('hello raw')).stdout.trim(), 'hello raw');
    setPlan({ http: [rule({ match: { port: 9000 }, abort: { status: 418, percent: 100 } })] });
    assert.equal((await echo('\\u0000\\u0001binary')).stdout.trim(), '\u0000\u0001binary');
  });

  it('kubelet probes pass unfaulted: from the node\'s address (any protocol) and with User-Agent kube-probe/…', async () => {
    setPlan({ http: [rule({ abort: { status: 503, percent: 100 } })] });
    assert.match((await curl([`http://${POD4}:8080/healthz`])).stdout, /\n503$/, 'faulted for anyone else');
    assert.equal((await curl([`http://[${POD6}]:8080/healthz`])).stdout, `app 8080 /healthz from ${POD6}\n200`, 'from the node');
    assert.match((await curl(['-A', 'kube-probe/1.36', `http://${POD4}:8080/healthz`])).stdout, /^app 8080 \/healthz from .*\n200$/);
  });

  it('honours inbound port exclusions: the excluded port is reached directly', async () => {
    setPlan({ http: [rule({ abort: { status: 503, percent: 100 } })] });
    assert.equal((await curl([`http://${POD4}:8082/x`])).stdout, `app 8082 /x from ::ffff:${CLIENT4}\n200`);
  });

  it('captures the app\'s outbound TCP to any upstream (faults by original destination), never loopback or the proxy UID', async () => {
    setPlan({ http: [rule({ direction: 'outbound', match: { host: CLIENT4, port: 7000, path: { prefix: '/faulted' } }, abort: { status: 419, percent: 100 } })] });
    const appCurl = (url: string, uid = APP_UID) => inPod(['curl', '-s', '-m', '5', '-o', '-', '-w', '\\n%{http_code}', url], uid);
    assert.match((await appCurl(`http://${CLIENT4}:7000/faulted`)).stdout, /\n419$/);
    assert.equal((await appCurl(`http://${CLIENT4}:7000/ok`)).stdout, 'upstream /ok\n200');
    assert.equal((await appCurl(`http://${CLIENT4}:7000/faulted`, PROXY_UID)).stdout, 'upstream /faulted\n200', 'the proxy UID is never captured');
    // By name, resolved through the pod's resolver, and by CIDR.
    setPlan({ http: [rule({ direction: 'outbound', match: { host: 'upstream.test', port: 7000, path: { prefix: '/by-name' } }, abort: { status: 420, percent: 100 } })] });
    await waitUntil(async () => /\n420$/.test((await appCurl(`http://${CLIENT4}:7000/by-name`)).stdout), 'the host name to resolve');
    setPlan({ http: [rule({ direction: 'outbound', match: { host: '10.214.0.0/24', port: 7000 }, abort: { status: 421, percent: 100 } })] });
    assert.match((await appCurl(`http://${CLIENT4}:7000/any`)).stdout, /\n421$/);
    setPlan({ http: [rule({ abort: { status: 503, percent: 100 } })] });
    assert.equal((await appCurl('http://127.0.0.1:8080/x')).stdout, 'app 8080 /x from ::ffff:127.0.0.1\n200', 'loopback is never captured');
  });

  it('is never a relay: a client dialling the listeners directly is reset, and nothing reaches the upstream', async () => {
    setPlan({});
    const upstream = procs.find((p) => p.name === 'upstream')!;
    const hitsBefore = upstream.stdout.split('\n').filter((l) => l.startsWith('hit ')).length;
    for (const port of [DEFAULT_PROXY_PORTS.outbound, DEFAULT_PROXY_PORTS.inbound]) {
      const r = await inClient(['curl', '-s', '-m', '5', '-H', `Host: ${CLIENT4}:7000`, `http://${POD4}:${port}/relay`]);
      assert.notEqual(r.code, 0, `port ${port} answered: ${r.stdout}`);
    }
    assert.equal(upstream.stdout.split('\n').filter((l) => l.startsWith('hit ')).length, hitsBefore);
    // The proxy itself says why: it refused them as not redirected.
    const proxy = procs.find((p) => p.name === 'proxy')!;
    proxy.child.kill('SIGUSR2');
    const until = Date.now() + 5_000;
    while (!proxy.stdout.includes('"refused"') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const { refused } = JSON.parse(proxy.stdout.split('\n').find((l) => l.includes('"refused"'))!) as { refused: Array<{ direction: string; reason: string }> };
    assert.deepEqual(refused.slice(-2).map((r) => [r.direction, r.reason]), [
      ['outbound', 'not redirected: the listener was dialled directly'],
      ['inbound', 'not redirected: the listener was dialled directly'],
    ]);
  });
});
