import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalIPv6, decodeSockaddr, unmapped } from '../../sidecar/capture/original-destination.ts';

function sockaddrIn(ip: number[], port: number): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt16LE(2, 0); // AF_INET, host order (x86-64/arm64: little-endian)
  b.writeUInt16BE(port, 2);
  Buffer.from(ip).copy(b, 4);
  return b;
}

function sockaddrIn6(groups: number[], port: number): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt16LE(10, 0); // AF_INET6
  b.writeUInt16BE(port, 2);
  groups.forEach((g, i) => b.writeUInt16BE(g, 8 + i * 2));
  return b;
}

describe('capture: sockaddr decoding', () => {
  it('decodes sockaddr_in with the port in network order', () => {
    assert.deepEqual(decodeSockaddr(sockaddrIn([10, 1, 2, 3], 8080), 16), { family: 'IPv4', address: '10.1.2.3', port: 8080 });
    assert.deepEqual(decodeSockaddr(sockaddrIn([255, 255, 255, 255], 65535), 16), { family: 'IPv4', address: '255.255.255.255', port: 65535 });
  });

  it('decodes sockaddr_in6 into the canonical compressed form Node reports', () => {
    assert.deepEqual(decodeSockaddr(sockaddrIn6([0xfd99, 0, 0, 0, 0, 0, 0, 2], 7001), 28), { family: 'IPv6', address: 'fd99::2', port: 7001 });
    assert.deepEqual(decodeSockaddr(sockaddrIn6([0x2001, 0xdb8, 0, 1, 0, 0, 0, 1], 443), 28), { family: 'IPv6', address: '2001:db8:0:1::1', port: 443 });
    assert.deepEqual(decodeSockaddr(sockaddrIn6([0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001], 80), 28), { family: 'IPv6', address: '::ffff:a00:1', port: 80 });
  });

  it('writes every IPv6 address as the WHATWG URL serializer does (RFC 5952 compression)', () => {
    const viaUrl = (groups: number[]): string => new URL(`http://[${groups.map((g) => g.toString(16)).join(':')}]/`).hostname.slice(1, -1);
    // Zero groups drawn often, so runs of every length and position (ties included) come up.
    const group = fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
    fc.assert(fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), (groups) => canonicalIPv6(groups) === viaUrl(groups)), { numRuns: 20_000 });
    for (const groups of [[0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0, 0, 0], [1, 0, 1, 0, 1, 0, 1, 0], [1, 0, 0, 1, 0, 0, 1, 1]])
      assert.equal(canonicalIPv6(groups), viaUrl(groups), groups.join(','));
  });

  it('names a short or foreign sockaddr instead of reading past it', () => {
    assert.throws(() => decodeSockaddr(sockaddrIn([1, 2, 3, 4], 1), 4), /sockaddr_in of 4 bytes/);
    assert.throws(() => decodeSockaddr(sockaddrIn6([1, 0, 0, 0, 0, 0, 0, 0], 1), 16), /sockaddr_in6 of 16 bytes/);
    const unix = Buffer.alloc(28);
    unix.writeUInt16LE(1, 0);
    assert.throws(() => decodeSockaddr(unix, 28), /address family 1/);
  });

  it('unmaps IPv4-mapped IPv6 addresses and leaves the rest alone', () => {
    assert.equal(unmapped('::ffff:10.0.0.1'), '10.0.0.1');
    assert.equal(unmapped('::FFFF:10.0.0.1'), '10.0.0.1');
    assert.equal(unmapped('fd00::1'), 'fd00::1');
    assert.equal(unmapped('::ffff:zz'), '::ffff:zz');
    assert.equal(unmapped('10.0.0.1'), '10.0.0.1');
  });
});
