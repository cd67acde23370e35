import assert from 'node:assert/strict';
import type { PlannedNetworkFault } from '../../contract/plans.ts';
import { isQdiscKindUnknown, needsNetem, netemArgv, tbfArgv, tbfBurstBytes, tcTime } from '../../pod-setup/network/qdisc.ts';
import { netemUnavailableMessage, planNetemFallback } from '../../pod-setup/network/netem-fallback.ts';

const base = { chaosId: 'shop/net', expiresAt: 1_900_000_000_000, device: 'eth0' };

describe('init: tc argv', () => {
  it('renders every netem field with correlations, in tc order', () => {
    const f: PlannedNetworkFault = {
      ...base,
      delay: { latencyMs: 100, jitterMs: 10, correlation: 25 },
      loss: { percent: 5, correlation: 25 },
      duplicate: { percent: 1, correlation: 0 },
      corrupt: { percent: 0.1, correlation: 0 },
      reorder: { percent: 10, correlation: 50, gap: 5 },
      rateBitsPerSec: 1_000_000,
    };
    assert.deepEqual(netemArgv(f), [
      'tc', 'qdisc', 'replace', 'dev', 'eth0', 'root', 'netem',
      'delay', '100ms', '10ms', '25%',
      'loss', '5%', '25%',
      'duplicate', '1%',
      'corrupt', '0.1%',
      'reorder', '10%', '50%', 'gap', '5',
      'rate', '1000000bit',
    ]);
  });

  it('spells a 0ms jitter when only a delay correlation is set (tc reads positions)', () => {
    assert.deepEqual(netemArgv({ ...base, device: 'net1', delay: { latencyMs: 2.5, jitterMs: 0, correlation: 10 } }), [
      'tc', 'qdisc', 'replace', 'dev', 'net1', 'root', 'netem', 'delay', '2500us', '0ms', '10%',
    ]);
    assert.deepEqual(netemArgv({ ...base, delay: { latencyMs: 50, jitterMs: 0, correlation: 0 } }).slice(7), ['delay', '50ms']);
  });

  it('renders tbf with a burst of one HZ=100 tick of traffic, never below two full frames', () => {
    assert.deepEqual(tbfArgv('eth0', 8_000_000), ['tc', 'qdisc', 'replace', 'dev', 'eth0', 'root', 'tbf', 'rate', '8000000bit', 'burst', '10000', 'latency', '50ms']);
    assert.equal(tbfBurstBytes(1_000_000), 3028);
    assert.equal(tbfBurstBytes(1_000_000_000), 1_250_000);
    assert.equal(tcTime(0.25), '250us');
  });

  it('recognises the kernel saying sch_netem does not exist, and nothing else', () => {
    assert.ok(isQdiscKindUnknown('Error: Specified qdisc kind is unknown.\n'));
    assert.ok(isQdiscKindUnknown('RTNETLINK answers: No such file or directory\n'));
    assert.ok(!isQdiscKindUnknown('Cannot find device "eth9"\n'));
    assert.ok(!isQdiscKindUnknown('Error: Illegal "loss"\n'));
  });

  it('needs netem only for packet faults; rate alone goes to tbf', () => {
    assert.equal(needsNetem({ ...base, rateBitsPerSec: 1000 }), false);
    assert.equal(needsNetem({ ...base, loss: { percent: 1, correlation: 0 } }), true);
  });
});

describe('init: netem fallback plan', () => {
  it('maps loss to nft, rate to tbf, delay to the proxy and reports what has no fallback', () => {
    const fb = planNetemFallback({
      ...base,
      delay: { latencyMs: 100, jitterMs: 10, correlation: 0 },
      loss: { percent: 20, correlation: 30 },
      duplicate: { percent: 1, correlation: 0 },
      corrupt: { percent: 2, correlation: 0 },
      reorder: { percent: 3, correlation: 0, gap: 0 },
      rateBitsPerSec: 8_000_000,
    });
    assert.deepEqual(fb.loss, { device: 'eth0', percent: 20, expiresAtSec: 1_900_000_000 });
    assert.equal(fb.rateBitsPerSec, 8_000_000);
    assert.deepEqual(fb.networkDelay, { latencyMs: 100, jitterMs: 10, correlation: 0, chaosId: 'shop/net', expiresAt: 1_900_000_000_000 });
    assert.deepEqual(fb.notApplied, [
      'loss correlation 30% (nft draws every packet independently)',
      'duplicate 1% (needs sch_netem; no fallback)',
      'corrupt 2% (needs sch_netem; no fallback)',
      'reorder 3% (needs sch_netem; no fallback)',
    ]);
    assert.equal(
      netemUnavailableMessage('kernel lacks sch_netem', fb),
      'netem unavailable: kernel lacks sch_netem; falling back to nft loss, tbf rate, proxy-side delay',
    );
  });
});
