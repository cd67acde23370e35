// Limits hold per pod, not per policy (issue 13 L1). Most fault families
// never add up on one pod (HTTP: the first matching delay and abort only;
// network and time: the oldest policy owns them; IO: the first matching rule
// decides), but Toxiproxy chains every toxic on a proxy: latency toxics on one
// upstream and stream add up, and so do slow_close and slicer delays. These
// sums, over every policy that can reach the same pod, must stay within the
// tenant's maxDelay.
import type { DefaultedPolicySpec, DefaultedToxic } from './defaults.ts';
import { durationMs } from './duration.ts';
import { selectorsMayOverlap } from './selection.ts';
import type { ChaosId, LabelSelector } from './types.ts';
import { TOXIC_ATTRIBUTES } from './vocabulary.ts';

/** A toxic time attribute in ms (numbers are in Toxiproxy's unit for the type: µs for slicer's delay). */
export function toxicMs(toxic: DefaultedToxic, attr: 'latency' | 'jitter' | 'delay' | 'timeout'): number {
  const v = toxic[attr];
  if (v === undefined) return 0;
  return typeof v === 'number' ? v * TOXIC_ATTRIBUTES[toxic.type].timeUnitMs : durationMs(v);
}

/** What one toxic adds to a connection's delay, by the kind of delay that adds up. */
function additions(t: DefaultedToxic): Array<{ what: string; ms: number }> {
  switch (t.type) {
    case 'latency':
      return [{ what: 'latency + jitter', ms: toxicMs(t, 'latency') + toxicMs(t, 'jitter') }];
    case 'slow_close':
      return [{ what: 'slow_close delay', ms: toxicMs(t, 'delay') }];
    case 'slicer':
      return [{ what: 'slicer delay', ms: toxicMs(t, 'delay') }];
    default:
      return [];
  }
}

export interface StackSource {
  chaosId: ChaosId;
  spec: Pick<DefaultedPolicySpec, 'tcp'>;
}

export interface StackedDelay {
  /** "6379" or "redis:6379", and the stream: what Toxiproxy chains the toxics on. */
  upstream: string;
  stream: string;
  what: string;
  totalMs: number;
  /** How many toxics add up here. */
  toxics: number;
  /** The policies contributing, in order. */
  chaosIds: ChaosId[];
  /** Index in the candidate's spec.tcp, when the candidate contributes. */
  candidateIndex?: number;
}

/** Every delay sum over `sources` (the candidate last) that exceeds `maxMs`. */
export function stackedDelaysOver(sources: readonly StackSource[], maxMs: number): StackedDelay[] {
  const sums = new Map<string, StackedDelay>();
  const last = sources.length - 1;
  sources.forEach((source, s) =>
    source.spec.tcp.forEach((fault, i) => {
      const upstream = fault.host === undefined ? String(fault.port) : `${fault.host}:${fault.port}`;
      for (const toxic of fault.toxics)
        for (const { what, ms } of additions(toxic)) {
          const key = `${upstream}/${toxic.stream}/${what}`;
          const sum = sums.get(key) ?? { upstream, stream: toxic.stream, what, totalMs: 0, toxics: 0, chaosIds: [] };
          sum.totalMs += ms;
          sum.toxics++;
          if (!sum.chaosIds.includes(source.chaosId)) sum.chaosIds.push(source.chaosId);
          if (s === last) sum.candidateIndex ??= i;
          sums.set(key, sum);
        }
    }),
  );
  return [...sums.values()].filter((s) => s.totalMs > maxMs);
}

/** The other policies whose faults can land on the same pods as a policy with `selector`. */
export function maySharePods<T extends { spec: { selector: LabelSelector } }>(selector: LabelSelector, others: readonly T[]): T[] {
  return others.filter((o) => selectorsMayOverlap(selector, o.spec.selector));
}
