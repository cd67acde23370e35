import assert from 'node:assert/strict';
import { lossThreshold, renderRuleset } from '../../pod-setup/redirect/nftables.ts';

describe('init: nftables ruleset rendering', () => {
  it('renders the Toxiproxy API guard and the loss fallback, exactly, and no redirection (the capture table does that)', () => {
    const text = renderRuleset({ proxyUid: 16337, proxyOnlyPorts: [16474], loss: { device: 'eth0', percent: 20, expiresAtSec: 1_900_000_000 } });
    assert.equal(
      text,
      `table inet faultline {}
delete table inet faultline
table inet faultline {
	chain proxy_only {
		type filter hook output priority filter; policy accept;
		oifname "lo" tcp dport 16474 meta skuid != 16337 reject with tcp reset
	}
	chain loss {
		type filter hook postrouting priority filter; policy accept;
		meta time < 1900000000 oifname "eth0" numgen random mod 10000 < 2000 counter drop
	}
}
`,
    );
  });

  it('leaves out chains with nothing to do, but always resets the table', () => {
    assert.equal(renderRuleset({ proxyUid: 16337 }), 'table inet faultline {}\ndelete table inet faultline\ntable inet faultline {\n}\n');
  });

  it('drops unconditionally at 100% and renders no loss chain at 0%', () => {
    const at = (percent: number) => renderRuleset({ proxyUid: 1, loss: { device: 'eth0', percent, expiresAtSec: 5 } });
    assert.match(at(100), /\t\tmeta time < 5 oifname "eth0" counter drop\n/);
    assert.ok(!at(0).includes('chain loss'));
    assert.ok(!at(0.004).includes('chain loss'));
  });

  it('turns percents into thresholds in hundredths of a point (not raw meta random values)', () => {
    assert.equal(lossThreshold(20), 2000);
    assert.equal(lossThreshold(0.5), 50);
    assert.equal(lossThreshold(33.333), 3333);
    assert.equal(lossThreshold(100), 10000);
    assert.equal(lossThreshold(0), 0);
  });
});
