// What the capture datapath has learnt about each inbound port of the pod, for
// status reporting (#12 item 8 / #14): which protocols clients spoke on it
// and whether the app served it at all. Pure bookkeeping: the capture proxy
// records, status reads. Only sniffed connections (ports with HTTP or gRPC
// faults) tell a protocol; a port never sniffed has seen none.
//
// API (small on purpose):
//   record(port, protocol)         a sniffed connection's verdict
//   recordRefused(port)            the app refused the proxy's connection (nothing listens)
//   recordServed(port)             the app accepted one
//   of(port)                       { protocols, notServed } for one port
//   snapshot()                     every port seen, sorted
//   whyFaultCannotApply(fault, port, observation)
//                                  why a planned HTTP/gRPC fault cannot act on that port, or undefined

import type { DatapathObservations, NotAppliedReason } from '../../contract/applied.ts';
import type { PlannedHttpFault } from '../../contract/plans.ts';
import type { Protocol } from './protocol.ts';

/** Protocol names as status reports them: h2c is HTTP/2 without TLS (prior knowledge). */
export type ObservedProtocol = 'http1' | 'h2c' | 'tls' | 'raw';

export interface PortObservation {
  port: number;
  /** Protocols seen on sniffed connections, sorted. */
  protocols: ObservedProtocol[];
  /** The app refused the latest connection the proxy opened to this port (nothing listens there). */
  notServed: boolean;
}

export interface CannotApply {
  reason: Extract<NotAppliedReason, 'PortNotServed' | 'Tls' | 'Protocol'>;
  message: string;
}

const NAMES: Record<Protocol, ObservedProtocol> = { http1: 'http1', h2: 'h2c', tls: 'tls', raw: 'raw' };

/** Ports kept; past this the oldest is forgotten (an inbound port set is small; this only bounds a port scan). */
const MAX_PORTS = 1024;

export class PortObservations {
  private readonly ports = new Map<number, { protocols: Set<ObservedProtocol>; notServed: boolean }>();

  record(port: number, protocol: Protocol): void {
    this.entry(port).protocols.add(NAMES[protocol]);
  }

  recordRefused(port: number): void {
    this.entry(port).notServed = true;
  }

  recordServed(port: number): void {
    const e = this.ports.get(port);
    if (e) e.notServed = false;
  }

  of(port: number): PortObservation {
    const e = this.ports.get(port);
    return { port, protocols: e ? [...e.protocols].sort() : [], notServed: e?.notServed ?? false };
  }

  snapshot(): PortObservation[] {
    return [...this.ports.keys()].sort((a, b) => a - b).map((p) => this.of(p));
  }

  private entry(port: number): { protocols: Set<ObservedProtocol>; notServed: boolean } {
    let e = this.ports.get(port);
    if (!e) {
      e = { protocols: new Set(), notServed: false };
      this.ports.set(port, e);
      if (this.ports.size > MAX_PORTS) this.ports.delete(this.ports.keys().next().value!);
    }
    return e;
  }
}

/**
 * Why an inbound HTTP or gRPC fault cannot act on `port`, from what was
 * observed there, or undefined when nothing says it can't (including when
 * nothing was observed yet). A port that carries HTTP as well as TLS or raw
 * bytes can still be faulted for its HTTP clients: only a port that never
 * showed HTTP is reported.
 */
export function whyFaultCannotApply(fault: Pick<PlannedHttpFault, 'protocol'>, observation: PortObservation): CannotApply | undefined {
  const { port, protocols } = observation;
  if (observation.notServed) return { reason: 'PortNotServed', message: `nothing serves port ${port} in the pod; the fault has no traffic to act on` };
  const http = fault.protocol === 'grpc' ? protocols.includes('h2c') : protocols.includes('http1') || protocols.includes('h2c');
  if (protocols.length === 0 || http) return undefined;
  const kind = fault.protocol === 'grpc' ? 'gRPC' : 'HTTP';
  if (protocols.includes('tls')) return { reason: 'Tls', message: `port ${port} carries TLS; ${kind} faults cannot apply, TCP faults do` };
  const seen = protocols.join(', ');
  return { reason: 'Protocol', message: `port ${port} carries ${seen === 'raw' ? 'a protocol other than HTTP' : seen}; ${kind} faults cannot apply, TCP faults do` };
}

/** The status report's view (contract/applied.ts) of what the capture path observed: inbound faults on a known port only. */
export function observationsForReport(observations: PortObservations): DatapathObservations {
  return {
    notApplicable: (fault) => (fault.direction === 'inbound' && fault.match.port !== undefined ? whyFaultCannotApply(fault, observations.of(fault.match.port)) : undefined),
  };
}
