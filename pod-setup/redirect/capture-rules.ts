// The nftables table for transparent capture, as Istio's and Linkerd's init
// containers set up iptables: every inbound TCP connection to one inbound
// listener, every outbound TCP connection of the app (any UID but the
// proxy's) to one outbound listener; the proxy reads each connection's
// original destination and decides per connection. Pure: renders one
// `nft -f` transaction that converges on re-run.
//
// Ordering: both chains hook at priority dstnat - 10 (-110), ahead of the
// iptables-nft nat chains istio-init and linkerd-init write (-100); the first
// NAT a connection gets in a hook is the one that holds. Outbound that is the
// right order: Faultline faults the app's connection, then dials from its own
// UID and the mesh captures that as it would the app's. Inbound it is right
// only without an mTLS mesh (see docs/capture.md for the mesh-first rule
// meshed pods need). The proxy's UID must differ from the mesh proxy's
// (Istio 1337, Linkerd 2102).

import { isIPv4 } from 'node:net';

export const CAPTURE_TABLE = 'inet faultline_capture';
/** Below iptables-nft's nat chains (dstnat = -100): Faultline redirects first. */
export const CAPTURE_PRIORITY = -110;

export interface CaptureRulesInput {
  proxyUid: number;
  inboundPort: number;
  outboundPort: number;
  /** The proxy's own ports (admin, health, metrics, listeners): never captured. */
  proxyPorts: number[];
  /** Annotation-driven exclusions. Inbound CIDRs are sources, outbound CIDRs destinations. */
  excludeInboundPorts: number[];
  excludeInboundCidrs: string[];
  excludeOutboundPorts: number[];
  excludeOutboundCidrs: string[];
}

const set = (values: ReadonlyArray<string | number>): string => (values.length === 1 ? String(values[0]) : `{ ${values.join(', ')} }`);

function cidrReturns(field: 'saddr' | 'daddr', cidrs: readonly string[]): string[] {
  const v4 = cidrs.filter((c) => isIPv4(c.split('/')[0]!));
  const v6 = cidrs.filter((c) => !isIPv4(c.split('/')[0]!));
  return [...(v4.length > 0 ? [`\t\tip ${field} ${set(v4)} return`] : []), ...(v6.length > 0 ? [`\t\tip6 ${field} ${set(v6)} return`] : [])];
}

export function renderCaptureRules(input: CaptureRulesInput): string {
  const inboundSkip = [...new Set([...input.proxyPorts, input.inboundPort, input.outboundPort, ...input.excludeInboundPorts])].sort((a, b) => a - b);
  const outboundSkip = [...new Set(input.excludeOutboundPorts)].sort((a, b) => a - b);
  return [
    `table ${CAPTURE_TABLE} {}`,
    `delete table ${CAPTURE_TABLE}`,
    `table ${CAPTURE_TABLE} {`,
    '\tchain prerouting {',
    `\t\ttype nat hook prerouting priority ${CAPTURE_PRIORITY}; policy accept;`,
    '\t\tiifname "lo" return',
    `\t\ttcp dport ${set(inboundSkip)} return`,
    ...cidrReturns('saddr', input.excludeInboundCidrs),
    `\t\tmeta l4proto tcp redirect to :${input.inboundPort}`,
    '\t}',
    '\tchain output {',
    `\t\ttype nat hook output priority ${CAPTURE_PRIORITY}; policy accept;`,
    // The proxy dials the real destinations itself.
    `\t\tmeta skuid ${input.proxyUid} return`,
    // Loopback (the pod talking to itself, the proxy's own ports) is never captured.
    '\t\toifname "lo" return',
    '\t\tip daddr 127.0.0.0/8 return',
    '\t\tip6 daddr ::1 return',
    ...(outboundSkip.length > 0 ? [`\t\ttcp dport ${set(outboundSkip)} return`] : []),
    ...cidrReturns('daddr', input.excludeOutboundCidrs),
    `\t\tmeta l4proto tcp redirect to :${input.outboundPort}`,
    '\t}',
    '}',
    '',
  ].join('\n');
}
