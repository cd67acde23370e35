// faultline init refuses to start a pod with half a plan: missing capabilities
// and malformed plans fail before anything is applied, with a message that
// names the problem.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { appPod, injectedPod, NODE } from '../support/netns-fixtures.ts';
import { repoRoot } from '../support/netns-paths.ts';
import { isRoot, SimulatedPod } from '../support/netns-pod.ts';

describe('netns: faultline init failures', function () {
  this.timeout(60_000);
  const pods: SimulatedPod[] = [];
  before(function () {
    if (!isRoot()) this.skip(); // dropping capabilities from root needs root
  });
  after(async () => {
    for (const p of pods) await p.teardown();
  });

  it('without CAP_NET_ADMIN: exits non-zero naming it, and applies nothing', async () => {
    const pod = new SimulatedPod();
    pods.push(pod);
    const spec = injectedPod(appPod({ ports: [8080] }), { io: [], network: { chaosId: 'a/b', expiresAt: Date.now() + 60_000, device: 'eth0', loss: { percent: 10, correlation: 0 } } });
    await pod.start(spec, { initOnly: true, allowInitFailure: true, initWrapper: ['setpriv', '--inh-caps=-all', '--bounding-set=-net_admin'] });
    assert.equal(pod.init!.code, 1);
    assert.match(pod.init!.stdout, /missing capability CAP_NET_ADMIN \(needed for nftables redirection and tc\)/);
    assert.notEqual((await pod.execPod(['nft', 'list', 'table', 'inet', 'faultline'])).code, 0, 'a faultline table exists');
    assert.equal(existsSync(`${pod.runDir}/handoff.json`), false);
    // And with the capability back, the same pod initialises.
    assert.equal((await pod.runInit([])).code, 0);
  });

  it('a missing libfaketime fails before any rule is applied', async () => {
    const pod = new SimulatedPod();
    pods.push(pod);
    const time = { chaosId: 'a/t', expiresAt: Date.now() + 60_000, offsetMs: 1_000, containers: [] };
    await pod.start(injectedPod(appPod({ ports: [8080] }), { io: [], time }), {
      initOnly: true,
      allowInitFailure: true,
      initArgs: ['--faketime-lib', '/nonexistent/libfaketime.so.1'],
    });
    assert.equal(pod.init!.code, 1);
    assert.match(pod.init!.stdout, /libfaketime not found at \/nonexistent\/libfaketime\.so\.1/);
    assert.notEqual((await pod.execPod(['nft', 'list', 'table', 'inet', 'faultline'])).code, 0, 'a faultline table exists');
  });

  it('a malformed plan fails with the field and the value', async () => {
    const pod = new SimulatedPod();
    pods.push(pod);
    await pod.start(injectedPod(appPod({ ports: [8080] })), { initOnly: true });
    const run = (plan: string) =>
      pod.execPod([NODE, `${repoRoot}/bin/faultline.js`, 'init', '--run-dir', pod.runDir, '--time-dir', pod.timeDir], { env: { PATH: process.env.PATH, FAULTLINE_PLAN: plan } });
    const notJson = await run('{"version":');
    assert.equal(notJson.code, 1);
    assert.match(notJson.stdout, /faultline init failed: FAULTLINE_PLAN is not valid JSON/);
    const before = (await pod.execPod(['nft', 'list', 'table', 'inet', 'faultline_capture'])).stdout;
    const badPort = await run(JSON.stringify({ version: '1', wiring: { proxyUid: 16337, capture: { inboundPort: 70000, outboundPort: 16001 } } }));
    assert.equal(badPort.code, 1);
    assert.match(badPort.stdout, /invalid plan in FAULTLINE_PLAN: wiring\.capture\.inboundPort: Invalid value: 70000: must be at most 65535/);
    // Init only ever sets up capture: a plan without it changes nothing.
    const uncaptured = await run(JSON.stringify({ version: '1', wiring: { proxyUid: 16337 } }));
    assert.equal(uncaptured.code, 1);
    assert.match(uncaptured.stdout, /invalid plan in FAULTLINE_PLAN: wiring\.capture: Required value/);
    assert.equal((await pod.execPod(['nft', 'list', 'table', 'inet', 'faultline_capture'])).stdout, before, 'nothing changed');
    const none = await run('');
    assert.equal(none.code, 1);
    assert.match(none.stdout, /no plan: set FAULTLINE_PLAN or pass --plan-file/);
  });
});
