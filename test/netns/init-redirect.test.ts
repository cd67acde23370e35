// faultline-init's nftables redirection, in real namespaces, with the real
// faultline-proxy behind it and the webhook's real injection as the pod spec.
import assert from 'node:assert/strict';
import type { LiveFaultPlan } from '../../contract/plans.ts';
import { appPod, injectedPod, NODE } from '../support/netns-fixtures.ts';
import { CLIENT_IP, isRoot, POD_IP, SimulatedPod } from '../support/netns-pod.ts';
import type { Proc } from '../support/netns-exec.ts';

const APP_UID = 1000;
const far = Date.now() + 3_600_000;

const livePlan: LiveFaultPlan = {
  http: [
    { chaosId: 'shop/in', expiresAt: far, name: 'in', direction: 'inbound', match: { port: 8080, path: { prefix: '/faulted' } }, abort: { status: 418, percent: 100 } },
    { chaosId: 'shop/out', expiresAt: far, name: 'out', direction: 'outbound', match: { port: 7000, host: 'upstream.test', path: { prefix: '/faulted' } }, abort: { status: 419, percent: 100 } },
  ],
  tcp: [],
};

describe('netns: faultline init redirection', function () {
  this.timeout(90_000);
  let pod: SimulatedPod;
  let upstream: Proc;

  before(async function () {
    if (!isRoot()) return this.skip(); // network namespaces and nftables need root
    pod = new SimulatedPod();
    const spec = injectedPod(appPod({ ports: [8080, 9090], probePort: 8081, outbound: ['upstream.test:7000', 'nowhere.invalid:7001'], runAsUser: APP_UID }));
    await pod.start(spec, { hosts: { 'upstream.test': CLIENT_IP }, livePlan });
    // The named upstream lives in the client namespace.
    upstream = await pod.startUpstream(7000);
  });

  after(async () => {
    await pod?.teardown();
    if (pod) assert.deepEqual(await pod.leftovers(), []);
  });

  const curl = (url: string, uid?: number) =>
    pod.execPod(['curl', '-s', '-m', '5', '-o', '-', '-w', '\\n%{http_code} %header{x-faultline-fault}', url], uid === undefined ? {} : { uid });
  const clientCurl = (url: string) => pod.execClient(['curl', '-s', '-m', '5', '-o', '-', '-w', '\\n%{http_code} %header{x-faultline-fault}', url]);

  it('sends inbound HTTP from outside the pod through the proxy (its fault applies)', async () => {
    const faulted = await clientCurl(`http://${POD_IP}:8080/faulted`);
    assert.match(faulted.stdout, /\n418 abort=418$/, faulted.stdout);
    const plain = await clientCurl(`http://${POD_IP}:8080/ok`);
    assert.equal(plain.stdout, 'app 8080 /ok\n200 ');
    // The second app port has its own listener and reaches its own port.
    assert.equal((await clientCurl(`http://${POD_IP}:9090/faulted`)).stdout, 'app 9090 /faulted\n200 ');
  });

  it('leaves the kubelet probe port alone', async () => {
    assert.equal((await clientCurl(`http://${POD_IP}:8081/faulted`)).stdout, 'app 8081 /faulted\n200 ');
  });

  it('redirects the app\'s outbound TCP to the named upstream into the proxy', async () => {
    const faulted = await curl('http://upstream.test:7000/faulted', APP_UID);
    assert.match(faulted.stdout, /\n419 abort=419$/, faulted.stdout);
    // Unfaulted requests go through the proxy and on to the real upstream: no loop.
    assert.equal((await curl('http://upstream.test:7000/ok', APP_UID)).stdout, 'upstream /ok\n200 ');
  });

  it('excludes the proxy UID, so the proxy reaches upstreams directly', async () => {
    assert.equal((await curl('http://upstream.test:7000/faulted', 1337)).stdout, 'upstream /faulted\n200 ');
  });

  it('matches unresolvable upstreams by port, except on loopback, and says so', async () => {
    assert.match(pod.init!.stdout, /"host":"nowhere\.invalid".*upstream did not resolve/);
    const table = (await pod.execPod(['nft', 'list', 'table', 'inet', 'faultline'])).stdout;
    assert.match(table, /oifname "lo" return\n\s+tcp dport 7001 redirect to :15201/);
  });

  it('converges on re-run: the table is identical, no duplicate rules', async () => {
    const list = async () => (await pod.execPod(['nft', 'list', 'table', 'inet', 'faultline'])).stdout;
    const before = await list();
    for (let i = 0; i < 2; i++) {
      const again = await pod.runInit();
      assert.equal(again.code, 0, again.stdout + again.stderr);
    }
    assert.equal(await list(), before);
    assert.equal((before.match(/redirect to :15100/g) ?? []).length, 1);
    assert.equal((await pod.execPod(['nft', 'list', 'tables'])).stdout.match(/faultline/g)?.length, 1);
  });
});
