import assert from 'node:assert/strict';
import { DEFAULT_PROXY_PORTS } from '../../contract/pod-layout.ts';
import { renderCaptureRules } from '../../pod-setup/redirect/capture-rules.ts';
import type { OriginalDestination } from '../../sidecar/capture/original-destination.ts';
import { route, type RouteContext } from '../../sidecar/capture/route.ts';

const ctx = (faulted: string[] = []): RouteContext => ({
  podAddresses: new Set(['10.1.0.5', 'fd00::5']),
  nodeAddresses: new Set(['10.0.0.1']),
  hasRequestFaults: (dir, d) => faulted.includes(`${dir} ${d.address}:${d.port}`),
});
const to = (address: string, port: number, redirected = true): OriginalDestination => ({ ok: true, redirected, destination: { address, port, family: address.includes(':') ? 'IPv6' : 'IPv4' } });

describe('capture: per-connection route', () => {
  it('refuses what was not redirected, what has no original destination, and inbound traffic for another address', () => {
    assert.deepEqual(route('outbound', to('10.1.0.5', DEFAULT_PROXY_PORTS.outbound, false), '10.9.9.9', ctx()), { action: 'refuse', reason: 'not redirected: the listener was dialled directly' });
    assert.deepEqual(route('inbound', { ok: false, error: 'getsockopt(SO_ORIGINAL_DST): ENOENT' }, '10.9.9.9', ctx()), { action: 'refuse', reason: 'no original destination (getsockopt(SO_ORIGINAL_DST): ENOENT)' });
    assert.equal(route('inbound', to('10.1.0.99', 80), '10.9.9.9', ctx()).action, 'refuse');
  });

  it('sniffs only destinations with request faults; the rest go raw without waiting', () => {
    assert.equal(route('inbound', to('10.1.0.5', 8080), '10.9.9.9', ctx(['inbound 10.1.0.5:8080'])).action, 'sniff');
    assert.equal(route('inbound', to('10.1.0.5', 9090), '10.9.9.9', ctx(['inbound 10.1.0.5:8080'])).action, 'raw');
    assert.equal(route('outbound', to('10.2.0.7', 443), '10.1.0.5', ctx(['outbound 10.2.0.7:443'])).action, 'sniff');
    assert.equal(route('inbound', to('fd00::5', 8080), 'fd00::9', ctx(['inbound fd00::5:8080'])).action, 'sniff');
  });

  it('passes connections from the node raw and marks them as probes, faults or not', () => {
    assert.deepEqual(route('inbound', to('10.1.0.5', 8080), '::ffff:10.0.0.1', ctx(['inbound 10.1.0.5:8080'])), {
      action: 'raw', direction: 'inbound', destination: { address: '10.1.0.5', port: 8080, family: 'IPv4' }, probe: true,
    });
  });
});

describe('capture: nft rules', () => {
  const rules = renderCaptureRules({
    proxyUid: 1337, inboundPort: 16006, outboundPort: 16001, proxyPorts: [16000, 16021],
    excludeInboundPorts: [22], excludeInboundCidrs: ['10.0.0.0/8', 'fd00::/8'], excludeOutboundPorts: [5432], excludeOutboundCidrs: ['169.254.169.254/32'],
  });

  it('recreates one table atomically (converges on re-run), ahead of iptables-nft nat chains', () => {
    assert.match(rules, /^table inet faultline_capture \{\}\ndelete table inet faultline_capture\ntable inet faultline_capture \{/);
    assert.equal(rules.match(/priority -110;/g)?.length, 2);
  });

  it('captures all inbound TCP but the proxy\'s ports, exclusions and loopback', () => {
    const pre = rules.slice(rules.indexOf('chain prerouting'), rules.indexOf('chain output'));
    assert.match(pre, /iifname "lo" return\n\t\ttcp dport \{ 22, 16000, 16001, 16006, 16021 \} return\n\t\tip saddr 10\.0\.0\.0\/8 return\n\t\tip6 saddr fd00::\/8 return\n\t\tmeta l4proto tcp redirect to :16006/);
  });

  it('captures all outbound TCP but the proxy UID\'s, loopback and exclusions', () => {
    const out = rules.slice(rules.indexOf('chain output'));
    assert.match(out, /meta skuid 1337 return\n\t\toifname "lo" return\n\t\tip daddr 127\.0\.0\.0\/8 return\n\t\tip6 daddr ::1 return\n\t\ttcp dport 5432 return\n\t\tip daddr 169\.254\.169\.254\/32 return\n\t\tmeta l4proto tcp redirect to :16001/);
  });

  it('keeps its ports out of Istio\'s 15000–15090 and Linkerd\'s 4140–4191', () => {
    for (const port of Object.values(DEFAULT_PROXY_PORTS)) {
      assert.ok(!(port >= 15000 && port <= 15090) && !(port >= 4140 && port <= 4191), String(port));
    }
  });
});
