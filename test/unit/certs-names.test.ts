// SAN computation and host parsing.
import assert from 'node:assert/strict';
import { BlockList } from 'node:net';
import fc from 'fast-check';
import { bytesToIp, parseHost, sameNames, servingNames } from '../../certs/names.ts';

describe('certs: names', function () {
  it('derives the four Service names, then the extra hosts, without duplicates', function () {
    const names = servingNames('faultline', 'faultline-system', ['faultline', 'Example.com', '127.0.0.1', '127.0.0.1']);
    assert.deepEqual(
      names.map((n) => (n.type === 'dns' ? n.name : `ip:${n.address}`)),
      [
        'faultline',
        'faultline.faultline-system',
        'faultline.faultline-system.svc',
        'faultline.faultline-system.svc.cluster.local',
        'example.com',
        'ip:127.0.0.1',
      ],
    );
  });

  it('parses IPv6 in its textual forms to the same 16 bytes', function () {
    const expected = Buffer.from('20010db8000000000000000000000001', 'hex');
    for (const text of ['2001:db8::1', '2001:DB8:0:0:0:0:0:1', '[2001:db8::1]', '2001:0db8:0000::0001']) {
      const san = parseHost(text);
      assert.equal(san.type, 'ip', text);
      assert.deepEqual(san.type === 'ip' && san.bytes, expected, text);
      assert.equal(san.type === 'ip' && san.address, '2001:db8::1');
    }
    const mapped = parseHost('::ffff:192.0.2.1');
    assert.deepEqual(mapped.type === 'ip' && mapped.bytes, Buffer.from('00000000000000000000ffffc0000201', 'hex'));
    const unspecified = parseHost('::');
    assert.deepEqual(unspecified.type === 'ip' && unspecified.bytes, Buffer.alloc(16));
  });

  it('agrees with the platform parser on every IPv6 address (property)', function () {
    fc.assert(
      fc.property(fc.ipV6(), (text) => {
        const san = parseHost(text);
        if (san.type !== 'ip') return false;
        // BlockList parses with the platform's inet_pton: an independent oracle.
        const list = new BlockList();
        list.addAddress(text, 'ipv6');
        return san.bytes.length === 16 && list.check(bytesToIp(san.bytes), 'ipv6');
      }),
      { numRuns: 500 },
    );
  });

  it('compares name sets regardless of order and case', function () {
    const a = servingNames('faultline', 'ns', ['10.0.0.1', 'a.example.com']);
    const b = servingNames('faultline', 'ns', ['A.EXAMPLE.COM', '10.0.0.1']);
    assert.equal(sameNames(a, b), true);
    assert.equal(sameNames(a, servingNames('faultline', 'ns', ['10.0.0.1'])), false);
  });

  it('accepts a leading wildcard label', function () {
    assert.deepEqual(parseHost('*.example.com'), { type: 'dns', name: '*.example.com' });
  });

  it('rejects bad names with messages that say what is allowed', function () {
    assert.throws(() => servingNames('1webhook', 'ns'), /invalid service name '1webhook'.*starting with a letter/);
    assert.throws(() => servingNames('webhook', 'Bad_NS'), /invalid namespace 'Bad_NS'/);
    assert.throws(() => servingNames('a'.repeat(64), 'ns'), /at most 63/);
    for (const host of ['', 'a..b', '-a.com', 'a_b.com', 'host name', '*.', 'a.*.com', 'fe80::1%eth0', '1.2.3.4.5:80']) {
      assert.throws(() => parseHost(host), /invalid host/, JSON.stringify(host));
    }
  });
});
