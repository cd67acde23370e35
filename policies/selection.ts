// Pod selection: Kubernetes label-selector semantics, and the blast radius
// (which of the selected pods a policy targets), kept stable across reconciles.

import type { DefaultedMode } from './defaults.ts';
import type { LabelSelector, LabelSelectorRequirement } from './types.ts';

export type Labels = Readonly<Record<string, string>>;

/**
 * metav1.LabelSelector semantics: every matchLabels pair and every requirement
 * must hold; an empty selector matches everything; NotIn and DoesNotExist hold
 * when the key is absent. (An absent selector is defaulted to {} beforehand.)
 */
export function matchesSelector(selector: LabelSelector, labels: Labels): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (!Object.hasOwn(labels, key) || labels[key] !== value) return false;
  }
  return (selector.matchExpressions ?? []).every((req) => matchesRequirement(req, labels));
}

function matchesRequirement(req: LabelSelectorRequirement, labels: Labels): boolean {
  const has = Object.hasOwn(labels, req.key);
  const values = req.values ?? [];
  switch (req.operator) {
    case 'In':
      return has && values.includes(labels[req.key]!);
    case 'NotIn':
      return !has || !values.includes(labels[req.key]!);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
  }
}

/**
 * How many of n selected pods a mode targets. fixed-percent is floor(n·p/100)
 * but at least 1 when n > 0 (a percent policy on a small workload still does
 * something). A tenant's maxPodPercent is a hard ceiling, floor(n·max/100),
 * with no such minimum: it is the tenant's promise to everyone else.
 */
export function targetCount(mode: DefaultedMode, n: number, maxPodPercent?: number): number {
  let count: number;
  switch (mode.type) {
    case 'all':
      count = n;
      break;
    case 'one':
      count = Math.min(1, n);
      break;
    case 'fixed':
      count = Math.min(mode.value, n);
      break;
    case 'fixed-percent':
      count = n === 0 ? 0 : Math.max(1, Math.floor((n * mode.value) / 100));
      break;
  }
  return maxPodPercent === undefined ? count : Math.min(count, Math.floor((n * maxPodPercent) / 100));
}

export interface CandidatePod {
  name: string;
  labels?: Labels;
}

export interface TargetingPolicy {
  /** The policy's uid seeds the order, so two policies pick independently. */
  uid: string;
  selector: LabelSelector;
  mode: DefaultedMode;
  /** status.targets from the last reconcile. */
  previousTargets?: readonly string[];
}

/**
 * The pods a policy targets, sorted by name. Stable: previous targets that
 * still match are kept (up to the count), and the rest are filled in the
 * order of a hash of uid + pod name, so reconciles don't churn targets and a
 * pod that comes and goes doesn't reshuffle the others.
 */
export function pickTargets(policy: TargetingPolicy, candidates: readonly CandidatePod[], opts: { maxPodPercent?: number } = {}): string[] {
  const matching = [...new Set(candidates.filter((p) => matchesSelector(policy.selector, p.labels ?? {})).map((p) => p.name))];
  const count = targetCount(policy.mode, matching.length, opts.maxPodPercent);
  // Hashed once per pod, not in the comparator (n log n hashes).
  const ranks = new Map(matching.map((name) => [name, fnv1a(`${policy.uid}/${name}`)]));
  const byRank = (a: string, b: string): number => ranks.get(a)! - ranks.get(b)! || (a < b ? -1 : a > b ? 1 : 0);
  const previous = new Set(policy.previousTargets ?? []);
  const kept = matching.filter((n) => previous.has(n)).sort(byRank);
  const fresh = matching.filter((n) => !previous.has(n)).sort(byRank);
  return [...kept, ...fresh].slice(0, count).sort();
}

/** 32-bit FNV-1a: tiny, well-spread, identical in every process. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * Whether some label set could match both selectors. Conservative: only a
 * key required with different values (matchLabels, or In sets that do not
 * intersect), or required by one and forbidden by the other, proves them
 * disjoint; anything else may overlap.
 */
export function selectorsMayOverlap(a: LabelSelector, b: LabelSelector): boolean {
  const allowed = (s: LabelSelector): Map<string, Set<string> | 'absent'> => {
    const out = new Map<string, Set<string> | 'absent'>();
    const narrow = (key: string, values: Set<string>): void => {
      const prev = out.get(key);
      out.set(key, prev === undefined ? values : prev === 'absent' ? new Set() : new Set([...prev].filter((v) => values.has(v))));
    };
    for (const [k, v] of Object.entries(s.matchLabels ?? {})) narrow(k, new Set([v]));
    for (const r of s.matchExpressions ?? []) {
      if (r.operator === 'In') narrow(r.key, new Set(r.values ?? []));
      if (r.operator === 'DoesNotExist') out.set(r.key, out.has(r.key) ? new Set() : 'absent');
    }
    return out;
  };
  const left = allowed(a);
  const right = allowed(b);
  for (const [key, l] of left) {
    const r = right.get(key);
    if (r === undefined) continue;
    if (l === 'absent' || r === 'absent') {
      if (l !== r) return false;
      continue;
    }
    if (![...l].some((v) => r.has(v))) return false;
  }
  return true;
}
