// The fail-open gate in real namespaces with real nft: the webhook's pod spec,
// faultline-init's table, the real proxy and faultline-failopen's own bash
// script. SIGKILL the proxy: new connections, inbound and outbound, reach the
// app and the upstream directly within the bound; restart it: they are
// captured (and faulted) again. Teardown leaves nothing.
import assert from 'node:assert/strict';
import type { LiveFaultPlan } from '../../contract/plans.ts';
import { FAIL_OPEN_CONTAINER_NAME, PROXY_CONTAINER_NAME } from '../../contract/pod-layout.ts';
import { FAIL_OPEN_CHAIN } from '../../pod-setup/redirect/fail-open-gate.ts';
import { GATED_TABLE } from '../../pod-setup/redirect/capture-rules.ts';
import { appPod, injectedPod } from '../support/netns-fixtures.ts';
import { probeUntilDirect, proxyLog, until, watcherLog as watcherLogOf } from '../support/netns-fail-open.ts';
import { CLIENT_IP, isRoot, POD_IP, SimulatedPod } from '../support/netns-pod.ts';

const APP_UID = 1000;
const far = Date.now() + 3_600_000;
/** Death to an open gate, as new connections see it. Measured 5–40 ms (docs/security.md); the bound leaves room for a loaded CI machine. */
const BOUND_MS = 500;

const livePlan: LiveFaultPlan = {
  http: [
    { chaosId: 'shop/in', expiresAt: far, name: 'in', direction: 'inbound', match: { port: 8080, path: { prefix: '/faulted' } }, abort: { status: 418, percent: 100 } },
    { chaosId: 'shop/out', expiresAt: far, name: 'out', direction: 'outbound', match: { port: 7000, host: 'upstream.test', path: { prefix: '/faulted' } }, abort: { status: 419, percent: 100 } },
  ],
  tcp: [],
};

describe('netns: fail-open when the proxy dies', function () {
  this.timeout(90_000);
  let pod: SimulatedPod;

  before(async function () {
    if (!isRoot()) return this.skip(); // network namespaces and nftables need root
    pod = new SimulatedPod();
    const spec = injectedPod(appPod({ ports: [8080], runAsUser: APP_UID }));
    await pod.start(spec, { hosts: { 'upstream.test': CLIENT_IP }, livePlan });
    // The named upstream lives in the client namespace.
    await pod.startUpstream(7000);
  });

  after(async () => {
    if (!pod) return;
    await pod.teardown();
    assert.deepEqual(await pod.leftovers(), []);
  });

  const fmt = '\\n%{http_code}';
  const inbound = async () => (await pod.execClient(['curl', '-s', '-m', '5', '-w', fmt, `http://${POD_IP}:8080/faulted`])).stdout;
  const outbound = async () => (await pod.execPod(['curl', '-s', '-m', '5', '-w', fmt, 'http://upstream.test:7000/faulted'], { uid: APP_UID })).stdout;
  const gate = async () => (await pod.execPod(['nft', 'list', 'chain', ...GATED_TABLE.split(' '), FAIL_OPEN_CHAIN])).stdout;
  const watcherLog = () => watcherLogOf(pod);

  it('captures both directions while the proxy is up: the gate is empty and the faults apply', async () => {
    assert.doesNotMatch(await gate(), /accept/);
    assert.match(await inbound(), /\n418$/);
    assert.match(await outbound(), /\n419$/);
    assert.equal(watcherLog().at(-1)?.msg, 'proxy is up: traffic is captured');
  });

  it('fails open within the bound when the proxy is SIGKILLed: inbound reaches the app, outbound the upstream, directly', async () => {
    const probe = await probeUntilDirect(pod, 8080);
    await new Promise((r) => setTimeout(r, 50)); // a few captured requests first
    const killedAt = await pod.crash(PROXY_CONTAINER_NAME);
    const seen = await probe.result;
    const opened = await until('the gate opening', () => watcherLog().find((l) => l.msg.startsWith('proxy is down')));
    const reactionMs = seen.directAt - killedAt;
    console.log(`      death → traffic direct: ${reactionMs} ms (gate opened ${opened.time - killedAt} ms after the kill; ${seen.failed} refused, ${seen.captured} captured before)`);
    assert.ok(seen.captured > 0, 'the prober saw the proxy before the kill');
    assert.ok(reactionMs < BOUND_MS, `traffic direct ${reactionMs} ms after the kill`);
    assert.match(await gate(), /counter packets \d+ bytes \d+ accept/);
    assert.equal(await inbound(), 'app 8080 /faulted\n200');
    assert.equal(await outbound(), 'upstream /faulted\n200');
  });

  it('captures again once the proxy restarts, and the faults apply again', async () => {
    await pod.restartProxy();
    // The proxy takes its end right after its startup probe's endpoint answers.
    const held = await until('the proxy holding the FIFO', () => proxyLog(pod).find((l) => l.msg.startsWith('holding the liveness FIFO')));
    const deadline = Date.now() + BOUND_MS;
    while (/accept/.test(await gate()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const closed = watcherLog().at(-1)!;
    assert.equal(closed.msg, 'proxy is up: traffic is captured');
    console.log(`      proxy holding its end → gate closed: ${closed.time - held.time} ms`);
    assert.ok(closed.time - held.time < BOUND_MS);
    assert.match(await inbound(), /\n418$/);
    assert.match(await outbound(), /\n419$/);
  });

  it('a restarted watcher reads the proxy state on its own: up → stays captured; down → opens', async () => {
    await pod.crash(FAIL_OPEN_CONTAINER_NAME);
    await pod.startFailOpen();
    assert.equal(watcherLog().at(-1)?.msg, 'proxy is up: traffic is captured');
    assert.match(await inbound(), /\n418$/);

    await pod.crash(FAIL_OPEN_CONTAINER_NAME);
    await pod.crash(PROXY_CONTAINER_NAME);
    // Nobody opened the gate: today's behaviour, refused.
    assert.equal(await inbound(), '\n000');
    await pod.startFailOpen();
    assert.equal(watcherLog().at(-1)?.msg, 'proxy is not up: traffic bypasses it (fail-open)');
    assert.equal(await inbound(), 'app 8080 /faulted\n200');
    await pod.restartProxy();
    const deadline = Date.now() + BOUND_MS;
    while (!/\n418$/.test(await inbound()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.match(await inbound(), /\n418$/);
  });
});
