import assert from 'node:assert/strict';
import { lossThreshold, renderRuleset } from '../../pod-setup/redirect/nftables.ts';

describe('init: nftables ruleset rendering', () => {
  it('renders inbound, resolved and port-only outbound redirects and the loss fallback, exactly', () => {
    const text = renderRuleset({
      proxyUid: 1337,
      inbound: [
        { port: 8080, listenPort: 15100 },
        { port: 9090, listenPort: 15101 },
      ],
      outbound: [
        { host: 'redis', port: 6379, listenPort: 15200, addresses: ['10.96.0.10'] },
        { host: 'db', port: 5432, listenPort: 15201, addresses: ['10.96.0.11', '10.96.0.12', 'fd00::11'] },
        { host: 'gone.example', port: 443, listenPort: 15202, addresses: [] },
      ],
      proxyOnlyPorts: [15474],
      loss: { device: 'eth0', percent: 20, expiresAtSec: 1_900_000_000 },
    });
    assert.equal(
      text,
      `table inet faultline {}
delete table inet faultline
table inet faultline {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		tcp dport 8080 redirect to :15100
		tcp dport 9090 redirect to :15101
	}
	chain output {
		type nat hook output priority -100; policy accept;
		meta skuid 1337 return
		ip daddr 10.96.0.10 tcp dport 6379 redirect to :15200
		ip daddr { 10.96.0.11, 10.96.0.12 } tcp dport 5432 redirect to :15201
		ip6 daddr fd00::11 tcp dport 5432 redirect to :15201
		oifname "lo" return
		tcp dport 443 redirect to :15202
	}
	chain proxy_only {
		type filter hook output priority filter; policy accept;
		oifname "lo" tcp dport 15474 meta skuid != 1337 reject with tcp reset
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
    assert.equal(
      renderRuleset({ proxyUid: 1337, inbound: [], outbound: [] }),
      'table inet faultline {}\ndelete table inet faultline\ntable inet faultline {\n}\n',
    );
  });

  it('has no loopback exemption when every upstream resolved (their address sets already decide)', () => {
    const text = renderRuleset({ proxyUid: 7, inbound: [], outbound: [{ host: 'a', port: 1, listenPort: 2, addresses: ['10.0.0.1'] }] });
    assert.ok(!text.includes('oifname "lo"'));
    assert.ok(text.includes('meta skuid 7 return'));
  });

  it('drops unconditionally at 100% and renders no loss chain at 0%', () => {
    const at = (percent: number) => renderRuleset({ proxyUid: 1, inbound: [], outbound: [], loss: { device: 'eth0', percent, expiresAtSec: 5 } });
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
