// Transparent capture as an injected pod runs it, in real namespaces: the
// webhook's real injection renders FAULTLINE_PLAN, `faultline init` writes
// the capture table from it, `faultline sidecar` serves the two capture
// listeners as the proxy UID. Every port is captured, declared or not,
// probed or not; kubelet probes pass unfaulted; exclusions hold; the proxy
// is no relay; an outbound fault on an upstream named after the pod started
// applies within 1 s. (test/netns/capture.test.ts covers each protocol on
// the capture proxy alone; this is the wiring.)
import assert from 'node:assert/strict';
import type { LiveFaultPlan, PlannedHttpFault } from '../../contract/plans.ts';
import { DEFAULT_PROXY_PORTS, DEFAULT_PROXY_UID } from '../../contract/pod-layout.ts';
import { appPod, injectedPod, NODE } from '../support/netns-fixtures.ts';
import { CLIENT_IP, isRoot, NODE_IP, POD_IP, SimulatedPod } from '../support/netns-pod.ts';
import type { Proc } from '../support/netns-exec.ts';

const APP_UID = 1000;
const far = Date.now() + 3_600_000;
const fault = (over: Partial<PlannedHttpFault>): PlannedHttpFault => ({ chaosId: 'shop/in', expiresAt: far, name: 'in', direction: 'inbound', match: {}, ...over });

const inboundOnly: LiveFaultPlan = {
  http: [
    fault({ match: { port: 8080, path: { prefix: '/faulted' } }, abort: { status: 418, percent: 100 } }),
    // The undeclared port and the h2c port, faulted like any other.
    fault({ name: 'undeclared', match: { port: 9095, path: { prefix: '/faulted' } }, abort: { status: 418, percent: 100 } }),
    fault({ name: 'h2', match: { port: 8083, path: { prefix: '/faulted' } }, abort: { status: 418, percent: 100 } }),
    // 100% abort on the probed port and the excluded one: probes must still pass, the exclusion still reach the app.
    fault({ name: 'probed', match: { port: 8081 }, abort: { status: 503, percent: 100 } }),
    fault({ name: 'excluded', match: { port: 9090 }, abort: { status: 503, percent: 100 } }),
  ],
  tcp: [],
};

/** Polls until the captured call answers 421 (a plan change reaches the proxy through its file source). */
async function waitFor421(call: () => Promise<{ stdout: string }>): Promise<void> {
  const until = Date.now() + 5_000;
  let last = '';
  while (Date.now() < until) {
    last = (await call()).stdout;
    if (/\n421 abort=421$/.test(last)) return;
  }
  assert.fail(`never faulted: ${last}`);
}

describe('netns: capture wired into an injected pod (webhook plan → faultline init → faultline sidecar)', function () {
  this.timeout(90_000);
  let pod: SimulatedPod;
  let upstream: Proc;

  before(async function () {
    if (!isRoot()) return this.skip(); // network namespaces and nftables need root
    pod = new SimulatedPod();
    const spec = injectedPod(
      appPod({
        ports: [8080, 9090], undeclaredPorts: [9095], h2Ports: [8083], probePort: 8081, runAsUser: APP_UID,
        annotations: {
          'faultline.dev/exclude-inbound-ports': '9090',
          'faultline.dev/exclude-outbound-ports': '7001',
          'faultline.dev/exclude-outbound-cidrs': `${NODE_IP}/32`,
        },
      }),
    );
    await pod.start(spec, { hosts: { 'upstream.test': CLIENT_IP }, livePlan: inboundOnly });
    // The upstream lives in the client namespace.
    upstream = pod.spawnClient('upstream', [NODE, '-e', "require('http').createServer((q,s)=>{console.log('hit '+q.url);s.end('upstream '+q.url)}).listen(7000,()=>console.log('up')).on('listening',function(){require('http').createServer((q,s)=>s.end('upstream7001 '+q.url)).listen(7001)})"]);
    while (!upstream.stdout.includes('up')) {
      if (!upstream.running) throw new Error(upstream.stderr);
      await new Promise((r) => setTimeout(r, 20));
    }
  });

  after(async () => {
    await pod?.teardown();
    if (pod) assert.deepEqual(await pod.leftovers(), []);
  });

  const fmt = ['-s', '-m', '5', '-o', '-', '-w', '\\n%{http_code} %header{x-faultline-fault}'];
  const curl = (url: string, uid?: number) => pod.execPod(['curl', ...fmt, url], uid === undefined ? {} : { uid });
  const clientCurl = (url: string, ...args: string[]) => pod.execClient(['curl', ...fmt, ...args, url]);

  it('installs the capture table, not per-port redirects', async () => {
    const table = (await pod.execPod(['nft', 'list', 'table', 'inet', 'faultline_capture'])).stdout;
    assert.match(table, new RegExp(`meta l4proto tcp redirect to :${DEFAULT_PROXY_PORTS.inbound}`));
    assert.match(table, new RegExp(`meta skuid ${DEFAULT_PROXY_UID} return[\\s\\S]*meta l4proto tcp redirect to :${DEFAULT_PROXY_PORTS.outbound}`));
    assert.match(table, /tcp dport \{ 9090, 16000, 16001, 16006, 16020, 16021, 16474 \} return/);
    assert.doesNotMatch((await pod.execPod(['nft', 'list', 'table', 'inet', 'faultline'])).stdout, /redirect/);
  });

  it('faults inbound HTTP on a declared port, and the app sees the pod IP, never 127.0.0.1', async () => {
    assert.match((await clientCurl(`http://${POD_IP}:8080/faulted`)).stdout, /\n418 abort=418$/);
    assert.equal((await clientCurl(`http://${POD_IP}:8080/ok`)).stdout, 'app 8080 /ok\n200 ');
    assert.equal((await clientCurl(`http://${POD_IP}:8080/peer`)).stdout, `app 8080 from ${POD_IP}\n200 `);
  });

  it('captures a port the pod never declared', async () => {
    assert.match((await clientCurl(`http://${POD_IP}:9095/faulted`)).stdout, /\n418 abort=418$/);
    assert.equal((await clientCurl(`http://${POD_IP}:9095/ok`)).stdout, 'app 9095 /ok\n200 ');
  });

  it('h2c (prior knowledge) works through a faulted proxy: faulted streams abort, the rest reach the app', async () => {
    assert.match((await clientCurl(`http://${POD_IP}:8083/faulted`, '--http2-prior-knowledge')).stdout, /\n418 abort=418$/);
    assert.equal((await clientCurl(`http://${POD_IP}:8083/ok`, '--http2-prior-knowledge')).stdout, 'app 8083 /ok\n200 ');
  });

  it('faults the probed port for clients while kubelet probes (from the node, or kube-probe/…) pass a 100% abort', async () => {
    assert.match((await clientCurl(`http://${POD_IP}:8081/live`)).stdout, /\n503 abort=503$/);
    assert.equal((await clientCurl(`http://${POD_IP}:8081/live`, '--interface', NODE_IP)).stdout, 'app 8081 /live\n200 ', 'from status.hostIP');
    assert.equal((await clientCurl(`http://${POD_IP}:8081/ready`, '-A', 'kube-probe/1.36')).stdout, 'app 8081 /ready\n200 ', 'User-Agent kube-probe');
  });

  it('honours faultline.dev/exclude-inbound-ports: the excluded port is reached directly, unfaulted', async () => {
    assert.equal((await clientCurl(`http://${POD_IP}:9090/peer`)).stdout, `app 9090 from ${CLIENT_IP}\n200 `);
  });

  it('applies an outbound fault on an upstream named after the pod started within 1 s, no restart', async () => {
    assert.equal((await curl('http://upstream.test:7000/faulted', APP_UID)).stdout, 'upstream /faulted\n200 ');
    const named = fault({ chaosId: 'shop/out', name: 'out', direction: 'outbound', match: { port: 7000, host: 'upstream.test', path: { prefix: '/faulted' } }, abort: { status: 419, percent: 100 } });
    const t0 = Date.now();
    await pod.setLivePlan({ ...inboundOnly, http: [...inboundOnly.http, named] });
    let answer = '';
    while (Date.now() - t0 < 1_000) {
      answer = (await curl('http://upstream.test:7000/faulted', APP_UID)).stdout;
      if (/\n419 abort=419$/.test(answer)) break;
    }
    const ms = Date.now() - t0;
    assert.match(answer, /\n419 abort=419$/, `not faulted ${ms} ms after the plan changed`);
    console.log(`      (the outbound fault applied ${ms} ms after the plan file changed)`);
    // Unfaulted requests go through the proxy and on to the real upstream: no loop.
    assert.equal((await curl('http://upstream.test:7000/ok', APP_UID)).stdout, 'upstream /ok\n200 ');
    // The proxy's own UID is never captured.
    assert.equal((await curl('http://upstream.test:7000/faulted', DEFAULT_PROXY_UID)).stdout, 'upstream /faulted\n200 ');
  });

  it('honours faultline.dev/exclude-outbound-ports and -cidrs: those connections bypass the proxy', async () => {
    const cidr = fault({ chaosId: 'shop/out', name: 'out-all', direction: 'outbound', match: { host: '10.213.0.0/29' }, abort: { status: 421, percent: 100 } });
    await pod.setLivePlan({ ...inboundOnly, http: [...inboundOnly.http, cidr] });
    await waitFor421(() => curl(`http://${CLIENT_IP}:7000/x`, APP_UID));
    assert.equal((await curl(`http://${NODE_IP}:7000/x`, APP_UID)).stdout, 'upstream /x\n200 ', 'excluded destination CIDR');
    assert.equal((await curl(`http://${CLIENT_IP}:7001/x`, APP_UID)).stdout, 'upstream7001 /x\n200 ', 'excluded destination port');
    await pod.setLivePlan(inboundOnly);
  });

  it('is never a relay: dialling the capture listeners directly is refused, and nothing reaches the upstream', async () => {
    const hits = () => upstream.stdout.split('\n').filter((l) => l.startsWith('hit ')).length;
    const before = hits();
    for (const port of [DEFAULT_PROXY_PORTS.outbound, DEFAULT_PROXY_PORTS.inbound]) {
      const r = await pod.execClient(['curl', '-s', '-m', '5', '-H', `Host: ${CLIENT_IP}:7000`, `http://${POD_IP}:${port}/relay`]);
      assert.notEqual(r.code, 0, `port ${port} answered: ${r.stdout}`);
    }
    assert.equal(hits(), before);
    const stats = JSON.parse((await pod.execPod(['curl', '-s', `http://127.0.0.1:${DEFAULT_PROXY_PORTS.admin}/stats`])).stdout) as { capture: { refused: Array<{ direction: string; reason: string }> } };
    assert.deepEqual(stats.capture.refused.slice(-2).map((r) => [r.direction, r.reason]), [
      ['outbound', 'not redirected: the listener was dialled directly'],
      ['inbound', 'not redirected: the listener was dialled directly'],
    ]);
  });

  it('converges on re-run: the capture table is identical', async () => {
    const list = async () => (await pod.execPod(['nft', 'list', 'table', 'inet', 'faultline_capture'])).stdout;
    const before = await list();
    const again = await pod.runInit();
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.equal(await list(), before);
    assert.equal((before.match(new RegExp(`redirect to :${DEFAULT_PROXY_PORTS.inbound}`, 'g')) ?? []).length, 1);
  });
});
