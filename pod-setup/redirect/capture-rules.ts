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
// UID and the mesh captures that as it would the app's. Inbound, a pod with a
// mesh sidecar goes mesh first: prerouting leaves every connection to the
// mesh (which terminates mTLS), and the mesh proxy's own hop to the app over
// `lo` is captured in output instead (chain mesh_inbound), so Faultline sees
// plaintext. The proxy's UID must differ from the mesh proxy's (Istio 1337,
// Linkerd 2102). docs/capture.md has the whole walk.
//
// The base chains' names (prerouting, output) and this table's are a contract
// with the fail-open gate, which goes first in each base chain.

import { isIPv4 } from 'node:net';
import type { CaptureWiring } from '../../contract/plans.ts';
import { FAIL_OPEN_JUMP, gateChainLines, renderWatcherScript } from './fail-open-gate.ts';

export const CAPTURE_TABLE = 'inet faultline_capture';
/** Below iptables-nft's nat chains (dstnat = -100): Faultline redirects first. */
export const CAPTURE_PRIORITY = -110;

/** The pod's capture wiring (contract/plans.ts), for the proxy's UID; only the mesh proxy's UID matters here. */
export type CaptureRulesInput = Omit<CaptureWiring, 'mesh'> & { proxyUid: number; mesh?: { uid: number } };

/** Istio's (15000–15090) and Linkerd's (4140–4191) own ports: never taken from the mesh proxy. */
export const MESH_PORT_RANGES = ['4140-4191', '15000-15090'] as const;

const set = (values: ReadonlyArray<string | number>): string => (values.length === 1 ? String(values[0]) : `{ ${values.join(', ')} }`);

function cidrReturns(field: 'saddr' | 'daddr', cidrs: readonly string[]): string[] {
  const v4 = cidrs.filter((c) => isIPv4(c.split('/')[0]!));
  const v6 = cidrs.filter((c) => !isIPv4(c.split('/')[0]!));
  return [...(v4.length > 0 ? [`\t\tip ${field} ${set(v4)} return`] : []), ...(v6.length > 0 ? [`\t\tip6 ${field} ${set(v6)} return`] : [])];
}

export function renderCaptureRules(input: CaptureRulesInput): string {
  const inboundSkip = [...new Set([...input.proxyPorts, input.inboundPort, input.outboundPort, ...input.excludeInboundPorts])].sort((a, b) => a - b);
  const outboundSkip = [...new Set(input.excludeOutboundPorts)].sort((a, b) => a - b);
  const { mesh } = input;
  return [
    `table ${CAPTURE_TABLE} {}`,
    `delete table ${CAPTURE_TABLE}`,
    `table ${CAPTURE_TABLE} {`,
    // The fail-open gate (fail-open-gate.ts), closed; faultline-failopen opens it while the proxy is dead.
    ...gateChainLines(),
    '\tchain prerouting {',
    `\t\ttype nat hook prerouting priority ${CAPTURE_PRIORITY}; policy accept;`,
    `\t\t${FAIL_OPEN_JUMP}`,
    '\t\tiifname "lo" return',
    `\t\ttcp dport ${set(inboundSkip)} return`,
    ...cidrReturns('saddr', input.excludeInboundCidrs),
    // Mesh first: the mesh's own prerouting takes the connection (mTLS); its hop to the app is captured in output.
    ...(mesh ? [] : [`\t\tmeta l4proto tcp redirect to :${input.inboundPort}`]),
    '\t}',
    '\tchain output {',
    `\t\ttype nat hook output priority ${CAPTURE_PRIORITY}; policy accept;`,
    `\t\t${FAIL_OPEN_JUMP}`,
    // The proxy dials the real destinations itself.
    `\t\tmeta skuid ${input.proxyUid} return`,
    ...(mesh
      ? [
          `\t\tmeta skuid ${mesh.uid} oifname "lo" jump mesh_inbound`,
          // The mesh proxy's own outbound (mTLS to other pods) carries traffic Faultline already faulted.
          `\t\tmeta skuid ${mesh.uid} return`,
        ]
      : []),
    // Loopback (the pod talking to itself, the proxy's own ports) is never captured.
    '\t\toifname "lo" return',
    '\t\tip daddr 127.0.0.0/8 return',
    '\t\tip6 daddr ::1 return',
    ...(outboundSkip.length > 0 ? [`\t\ttcp dport ${set(outboundSkip)} return`] : []),
    ...cidrReturns('daddr', input.excludeOutboundCidrs),
    `\t\tmeta l4proto tcp redirect to :${input.outboundPort}`,
    '\t}',
    ...(mesh
      ? [
          // The mesh proxy handing a decrypted inbound connection to the app (pod IP or 127.0.0.1, over lo).
          '\tchain mesh_inbound {',
          `\t\ttcp dport ${set(inboundSkip)} return`,
          `\t\ttcp dport ${set([...MESH_PORT_RANGES])} return`,
          `\t\tmeta l4proto tcp redirect to :${input.inboundPort}`,
          '\t}',
        ]
      : []),
    '}',
    '',
  ].join('\n');
}

/** The table whose `failopen` gate faultline-failopen flips. */
export const GATED_TABLE = CAPTURE_TABLE;

/** faultline-failopen's script for that gate (images/build.ts ships it in the init image). */
export function renderFailOpenWatcher(): string {
  return renderWatcherScript(GATED_TABLE);
}
