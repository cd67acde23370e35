// The fault kinds a policy uses, each with the field that asks for it: the
// allowlist checks them, the status shows them (`.status.faults`).

import { durationMs } from './duration.ts';
import type { DefaultedPolicySpec } from './defaults.ts';
import type { FaultKind } from './types.ts';
import { FAULT_KINDS, NETWORK_FAULTS } from './vocabulary.ts';

export interface FaultUse {
  kind: FaultKind;
  path: string;
}

export function faultsOf(spec: DefaultedPolicySpec): FaultUse[] {
  const uses: FaultUse[] = [];
  spec.http.forEach((f, i) => {
    if (f.delay) uses.push({ kind: 'http.delay', path: `spec.http[${i}].delay` });
    if (f.abort) uses.push({ kind: 'http.abort', path: `spec.http[${i}].abort` });
  });
  spec.grpc.forEach((f, i) => {
    if (f.delay) uses.push({ kind: 'grpc.delay', path: `spec.grpc[${i}].delay` });
    if (f.abort) uses.push({ kind: 'grpc.abort', path: `spec.grpc[${i}].abort` });
  });
  spec.tcp.forEach((f, i) => f.toxics.forEach((t, j) => uses.push({ kind: `tcp.${t.type}`, path: `spec.tcp[${i}].toxics[${j}]` })));
  for (const name of NETWORK_FAULTS) {
    if (spec.network?.[name] !== undefined) uses.push({ kind: `network.${name}`, path: `spec.network.${name}` });
  }
  spec.io.forEach((f, i) => {
    if (f.errno !== undefined) uses.push({ kind: 'io.error', path: `spec.io[${i}].errno` });
    if (durationMs(f.delay) > 0) uses.push({ kind: 'io.delay', path: `spec.io[${i}].delay` });
  });
  if (spec.time) uses.push({ kind: 'time.offset', path: 'spec.time.offset' });
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
