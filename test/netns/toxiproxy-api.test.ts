// Issue 13 L5: Toxiproxy's API has no authentication, so any process in the
// pod could create a proxy on 0.0.0.0 relaying to a loopback-only service.
// faultline-init closes the API port to every UID but the proxy's; the proxy
// still reconciles its toxics through it.
import assert from 'node:assert/strict';
import { chmod, copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { LiveFaultPlan } from '../../contract/plans.ts';
import { DEFAULT_PROXY_PORTS, DEFAULT_PROXY_UID } from '../../contract/pod-layout.ts';
import { appPod, injectedPod } from '../support/netns-fixtures.ts';
import { isRoot, POD_IP, SimulatedPod } from '../support/netns-pod.ts';
import { tcpFault } from '../support/sidecar-plans.ts';
import { toxiproxyBin } from '../support/sidecar-harness.ts';

const APP_UID = 1000;
const API = `http://127.0.0.1:${DEFAULT_PROXY_PORTS.toxiproxy}`;
const EVIL = JSON.stringify({ name: 'evil', listen: '0.0.0.0:17000', upstream: '127.0.0.1:8080', enabled: true });

describe('netns: Toxiproxy API closed to the app (issue 13 L5)', function () {
  this.timeout(120_000);
  let pod: SimulatedPod;
  const path = process.env.PATH;

  before(async function () {
    if (!isRoot()) return this.skip(); // network namespaces and nftables need root
    pod = new SimulatedPod();
    // The proxy (its UID) finds toxiproxy-server on PATH, as in its image; the
    // build cache under /root is not readable to it, so the pod gets a copy.
    const bin = join(pod.root, 'bin');
    await mkdir(bin, { mode: 0o755 });
    await copyFile(await toxiproxyBin(), join(bin, 'toxiproxy-server'));
    await chmod(join(bin, 'toxiproxy-server'), 0o755);
    process.env.PATH = `${bin}:${path}`;
    const livePlan: LiveFaultPlan = { http: [], tcp: [tcpFault(8080, [{ type: 'latency', attributes: { latency: 250, jitter: 0 } }])] };
    await pod.start(injectedPod(appPod({ ports: [8080], runAsUser: APP_UID })), { livePlan });
  });

  after(async () => {
    process.env.PATH = path;
    await pod?.teardown();
    if (pod) assert.deepEqual(await pod.leftovers(), []);
  });

  const curl = (uid: number, ...args: string[]) => pod.execPod(['curl', '-s', '-m', '5', ...args], { uid });

  it('refuses the app UID: it cannot list or create proxies', async () => {
    const list = await curl(APP_UID, `${API}/proxies`);
    assert.equal(list.code, 7, `curl as ${APP_UID} reached the API (exit ${list.code}): ${list.stdout}`);
    const create = await curl(APP_UID, '-X', 'POST', '-d', EVIL, `${API}/proxies`);
    assert.equal(create.code, 7, `curl as ${APP_UID} reached the API (exit ${create.code}): ${create.stdout}`);
    // Nothing listens where the attacker asked.
    assert.notEqual((await pod.execPod(['bash', '-c', 'echo > /dev/tcp/127.0.0.1/17000'])).code, 0);
  });

  it('refuses any other UID too, root included', async () => {
    for (const uid of [0, 65534]) assert.equal((await curl(uid, `${API}/version`)).code, 7, `UID ${uid} reached the API`);
  });

  it('the proxy UID still reaches it, and the toxics are reconciled', async () => {
    const r = await curl(DEFAULT_PROXY_UID, `${API}/proxies`);
    assert.equal(r.code, 0, r.stderr);
    const proxies = JSON.parse(r.stdout) as Record<string, { toxics: Array<{ type: string; attributes: { latency: number } }> }>;
    const inbound = proxies['inbound-8080'];
    assert.ok(inbound, `no inbound-8080 proxy in ${r.stdout}`);
    assert.deepEqual(
      inbound.toxics.map((t) => [t.type, t.attributes.latency]),
      [['latency', 250]],
    );
    assert.equal(proxies.evil, undefined);
  });

  it('a captured connection to the app port goes through that Toxiproxy proxy (its latency applies)', async () => {
    const r = await pod.execClient(['curl', '-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code} %{time_total}', `http://${POD_IP}:8080/x`]);
    const [status, seconds] = r.stdout.split(' ');
    assert.equal(status, '200');
    assert.ok(Number(seconds) >= 0.25, `answered in ${seconds} s, under the 250 ms latency toxic`);
  });
});
