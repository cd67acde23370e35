// What the capturing proxy does with one accepted connection, decided from
// its original destination before any byte is read. Pure.
//
//   refuse  not really redirected (someone dialled the listener itself), or
//           an inbound connection whose destination is not this pod: the
//           proxy is never a relay past an upstream's NetworkPolicy;
//   raw     kubelet traffic from the node, or a destination with no HTTP or
//           gRPC fault: bytes pass without parsing or waiting (TCP toxics
//           still apply there);
//   sniff   a destination with HTTP/gRPC faults: read the first bytes and
//           pick the HTTP/1, HTTP/2 or raw path (capture/protocol.ts).

import type { Destination, OriginalDestination } from './original-destination.ts';
import { isFromNode } from './probes.ts';

export type Direction = 'inbound' | 'outbound';

export type Route =
  | { action: 'refuse'; reason: string }
  | { action: 'raw' | 'sniff'; direction: Direction; destination: Destination; probe: boolean };

export interface RouteContext {
  /** The pod's own addresses (status.podIPs). */
  podAddresses: ReadonlySet<string>;
  /** The node's addresses (status.hostIP/hostIPs). */
  nodeAddresses: ReadonlySet<string>;
  /** Whether HTTP or gRPC faults currently apply to this destination. */
  hasRequestFaults: (direction: Direction, destination: Destination) => boolean;
}

export function route(direction: Direction, original: OriginalDestination, remoteAddress: string | undefined, ctx: RouteContext): Route {
  if (!original.ok) return { action: 'refuse', reason: `no original destination (${original.error})` };
  if (!original.redirected) return { action: 'refuse', reason: 'not redirected: the listener was dialled directly' };
  const destination = original.destination;
  if (direction === 'inbound' && !ctx.podAddresses.has(destination.address.toLowerCase())) {
    return { action: 'refuse', reason: `inbound destination ${destination.address} is not this pod` };
  }
  const probe = direction === 'inbound' && isFromNode(remoteAddress, ctx.nodeAddresses);
  if (probe) return { action: 'raw', direction, destination, probe };
  return { action: ctx.hasRequestFaults(direction, destination) ? 'sniff' : 'raw', direction, destination, probe };
}
