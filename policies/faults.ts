// The fault kinds a policy uses, each with the field that asks for it: the
// allowlist checks them, the status shows them (`.status.faults`).

import { durationMs } from './duration.ts';
import { child, index } from './field-error.ts';
import type { DefaultedPolicySpec } from './defaults.ts';
import type { FaultKind } from './types.ts';
import { FAULT_KINDS, NETWORK_FAULTS } from './vocabulary.ts';

export interface FaultUse {
  kind: FaultKind;
  /** The field that asks for it, e.g. spec.http[0].delay. */
  path: string;
  /** The spec field holding it, e.g. spec.http: where a whole family is refused. */
  section: string;
}

export function faultsOf(spec: DefaultedPolicySpec): FaultUse[] {
  const uses: FaultUse[] = [];
  const use = (kind: FaultKind, section: string, path: string): void => void uses.push({ kind, path, section });
  const http = child('spec', 'http');
  const grpc = child('spec', 'grpc');
  const tcp = child('spec', 'tcp');
  const network = child('spec', 'network');
  const io = child('spec', 'io');
  const time = child('spec', 'time');
  spec.http.forEach((f, i) => {
    if (f.delay) use('http.delay', http, child(index(http, i), 'delay'));
    if (f.abort) use('http.abort', http, child(index(http, i), 'abort'));
  });
  spec.grpc.forEach((f, i) => {
    if (f.delay) use('grpc.delay', grpc, child(index(grpc, i), 'delay'));
    if (f.abort) use('grpc.abort', grpc, child(index(grpc, i), 'abort'));
  });
  spec.tcp.forEach((f, i) => f.toxics.forEach((t, j) => use(`tcp.${t.type}`, tcp, index(child(index(tcp, i), 'toxics'), j))));
  for (const name of NETWORK_FAULTS) {
    if (spec.network?.[name] !== undefined) use(`network.${name}`, network, child(network, name));
  }
  spec.io.forEach((f, i) => {
    if (f.errno !== undefined) use('io.error', io, child(index(io, i), 'errno'));
    if (durationMs(f.delay) > 0) use('io.delay', io, child(index(io, i), 'delay'));
  });
  if (spec.time) use('time.offset', time, child(time, 'offset'));
  return uses;
}

/** Distinct kinds in the allowlist's canonical order, e.g. "http.delay,tcp.latency". */
export function faultSummary(spec: DefaultedPolicySpec): string {
  const used = new Set(faultsOf(spec).map((u) => u.kind));
  return FAULT_KINDS.filter((k) => used.has(k)).join(',');
}

/**
 * Network, io or time faults: fixed at pod start, so they reach running pods
 * only on restart. Takes a raw spec or a defaulted one (same fields).
 */
export function hasKernelFaults(spec: { network?: unknown; io?: readonly unknown[]; time?: unknown }): boolean {
  return spec.network !== undefined || (spec.io?.length ?? 0) > 0 || spec.time !== undefined;
}
