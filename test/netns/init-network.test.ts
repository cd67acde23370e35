// Network faults in real namespaces. This kernel has no sch_netem, so these
// tests exercise the fallbacks (nft loss, tbf rate, proxy-side delay); on a
// kernel with netem they check that netem took everything instead.
import assert from 'node:assert/strict';
import type { PlannedNetworkFault } from '../../contract/plans.ts';
import { appPod, injectedPod } from '../support/netns-fixtures.ts';
import { isRoot, POD_IP, SimulatedPod } from '../support/netns-pod.ts';
import { BLAST_PORT, tcpGoodput, udpDelivered } from '../support/netns-probes.ts';

const inAnHour = () => Date.now() + 3_600_000;
const network = (f: Partial<PlannedNetworkFault>): PlannedNetworkFault => ({ chaosId: 'shop/net', expiresAt: inAnHour(), device: 'eth0', ...f });

async function podWith(net: PlannedNetworkFault, initOnly = true): Promise<SimulatedPod> {
  const pod = new SimulatedPod();
  try {
    // The goodput measured is the kernel's (tbf), not the proxy's, and an
    // init-only pod runs no proxy: its blast port stays out of capture.
    const annotations = { 'faultline.dev/exclude-outbound-ports': String(BLAST_PORT) };
    await pod.start(injectedPod(appPod({ ports: [8080], annotations }), { network: net, io: [] }), { initOnly });
  } catch (err) {
    await pod.teardown();
    throw err;
  }
  return pod;
}

async function netemAvailable(pod: SimulatedPod): Promise<boolean> {
  return /netem/.test((await pod.execPod(['tc', 'qdisc', 'show', 'dev', 'eth0', 'root'])).stdout);
}

describe('netns: faultline init network faults', function () {
  this.timeout(120_000);
  const pods: SimulatedPod[] = [];
  before(function () {
    if (!isRoot()) this.skip(); // network namespaces, nftables and tc need root
  });
  after(async () => {
    for (const p of pods) await p.teardown();
  });

  describe('without sch_netem', () => {
    let pod: SimulatedPod;
    before(async () => {
      pod = await podWith(
        network({
          delay: { latencyMs: 100, jitterMs: 0, correlation: 0 },
          loss: { percent: 20, correlation: 0 },
          duplicate: { percent: 1, correlation: 0 },
          rateBitsPerSec: 100_000_000,
        }),
        false,
      );
      pods.push(pod);
    });

    it('detects the missing qdisc, says so in one line, and lists what it could not apply', async function () {
      if (await netemAvailable(pod)) return this.skip(); // this kernel has netem: nothing falls back
      const lines = pod.init!.stdout.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; notApplied?: string[] });
      const unavailable = lines.filter((l) => l.msg.startsWith('netem unavailable'));
      assert.deepEqual(unavailable.map((l) => l.msg), ['netem unavailable: kernel lacks sch_netem; falling back to nft loss, tbf rate, proxy-side delay']);
      assert.deepEqual(lines.find((l) => l.msg === 'network faults NOT applied')?.notApplied, ['duplicate 1% (needs sch_netem; no fallback)']);
    });

    it('engages every fallback: nft loss rule, tbf qdisc, handoff.json for the proxy', async function () {
      if (await netemAvailable(pod)) return this.skip();
      const table = (await pod.execPod(['nft', 'list', 'chain', 'inet', 'faultline', 'loss'])).stdout;
      assert.match(table, /oifname "eth0" numgen random mod 10000 < 2000 counter packets \d+ bytes \d+ drop/);
      assert.match((await pod.execPod(['tc', 'qdisc', 'show', 'dev', 'eth0', 'root'])).stdout, /^qdisc tbf .* rate 100Mbit burst 125000b/);
      const handoff = JSON.parse(await pod.readRunFile('handoff.json')) as { networkDelay: { latencyMs: number; chaosId: string } };
      assert.equal(handoff.networkDelay.latencyMs, 100);
      assert.equal(handoff.networkDelay.chaosId, 'shop/net');
    });

    it('the proxy picks up the handed-off delay (inbound HTTP takes >= 100 ms)', async function () {
      if (await netemAvailable(pod)) return this.skip();
      // Loss is on too: retry a few times and take the fastest, which loss can only make slower.
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await pod.execClient(['curl', '-s', '-m', '10', '-o', '/dev/null', '-w', '%{time_total}', `http://${POD_IP}:8080/`]);
        if (r.code === 0) times.push(Number(r.stdout) * 1000);
      }
      assert.ok(times.length > 0, 'no request got through');
      assert.ok(Math.min(...times) >= 95, `fastest request took ${Math.min(...times).toFixed(1)} ms`);
    });
  });

  it('nft loss at 20% drops 20 ± 5 points of 2,000 datagrams', async function () {
    const pod = await podWith(network({ loss: { percent: 20, correlation: 0 } }));
    pods.push(pod);
    if (await netemAvailable(pod)) return this.skip();
    const sent = 2000;
    const received = await udpDelivered(pod, sent);
    const lost = (100 * (sent - received)) / sent;
    console.log(`      measured loss: ${lost.toFixed(1)}% of ${sent}`);
    assert.ok(lost >= 15 && lost <= 25, `loss ${lost}%`);
  });

  it('a loss rule past its expiry drops nothing (kernel-side `meta time`)', async function () {
    // Certain loss, ending in a few seconds: everything drops first, nothing after.
    const expiresAt = Date.now() + 6_000;
    const pod = await podWith(network({ loss: { percent: 100, correlation: 0 }, expiresAt }));
    pods.push(pod);
    if (await netemAvailable(pod)) return this.skip();
    assert.ok(Date.now() < expiresAt - 1_000, 'pod start took too long to observe the live rule');
    assert.equal(await udpDelivered(pod, 50), 0);
    // The rule compares whole seconds: wait past the next second boundary.
    await new Promise((r) => setTimeout(r, expiresAt - Date.now() + 1_100));
    assert.equal(await udpDelivered(pod, 200, 9998), 200);
  });

  it('tbf holds TCP goodput within ±15% of 8 mbit', async function () {
    const pod = await podWith(network({ rateBitsPerSec: 8_000_000 }));
    pods.push(pod);
    const bps = await tcpGoodput(pod, 3);
    console.log(`      measured goodput: ${(bps / 1e6).toFixed(2)} Mbit/s (limit 8)`);
    // Goodput excludes TCP/IP headers (~3-5% at full frames), so expect a bit below the limit.
    assert.ok(bps >= 8e6 * 0.85 && bps <= 8e6 * 1.15, `goodput ${bps}`);
  });
});
