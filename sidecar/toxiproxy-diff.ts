// What the Toxiproxy reconciler must write, as a pure function of what
// Toxiproxy has, what the plan wants and which proxies still carry
// connections (the split leader.ts and certs/secret-plan.ts make too): the
// executor in toxiproxy-reconciler.ts only performs these actions in order.

import type { PlannedToxic } from '../contract/plans.ts';

export interface DesiredProxy {
  upstream: string;
  toxics: PlannedToxic[];
}

/** Toxiproxy's JSON for a proxy (GET /proxies), toxics included. */
export interface ActualProxy {
  name: string;
  listen: string;
  upstream: string;
  enabled: boolean;
  toxics: Array<{ name: string; type: string; stream: string; toxicity: number; attributes: Record<string, number> }>;
}

export type ToxiproxyAction =
  /** Re-point or re-enable an existing proxy, keeping its listen address (and its connections). */
  | { op: 'updateProxy'; proxy: ActualProxy; upstream: string }
  | { op: 'createProxy'; name: string; upstream: string }
  | { op: 'deleteProxy'; proxy: ActualProxy }
  | { op: 'addToxic'; proxy: string; toxic: PlannedToxic }
  | { op: 'updateToxic'; proxy: string; toxic: PlannedToxic }
  | { op: 'removeToxic'; proxy: string; name: string };

function compareToxic(want: PlannedToxic, got: ActualProxy['toxics'][number]): 'same' | 'update' | 'replace' {
  // Toxiproxy cannot change a toxic's type or stream in place.
  if (want.type !== got.type || want.stream !== got.stream) return 'replace';
  if (want.toxicity !== got.toxicity) return 'update';
  // Toxiproxy echoes every attribute of the type, defaults included; an
  // attribute the plan leaves out means Toxiproxy's default, 0.
  const keys = new Set([...Object.keys(want.attributes), ...Object.keys(got.attributes)]);
  for (const k of keys) if ((want.attributes[k] ?? 0) !== (got.attributes[k] ?? 0)) return 'update';
  return 'same';
}

function toxicActions(proxy: string, have: ActualProxy['toxics'], want: readonly PlannedToxic[]): ToxiproxyAction[] {
  const out: ToxiproxyAction[] = [];
  const left = new Map(have.map((t) => [t.name, t]));
  for (const toxic of want) {
    const got = left.get(toxic.name);
    left.delete(toxic.name);
    const verdict = got ? compareToxic(toxic, got) : 'add';
    if (verdict === 'same') continue;
    if (verdict === 'update') {
      out.push({ op: 'updateToxic', proxy, toxic });
      continue;
    }
    if (verdict === 'replace') out.push({ op: 'removeToxic', proxy, name: toxic.name });
    out.push({ op: 'addToxic', proxy, toxic });
  }
  for (const stale of left.values()) out.push({ op: 'removeToxic', proxy, name: stale.name });
  return out;
}

/**
 * The writes that take `actual` to `desired`. An unchanged proxy gets no
 * action, so connections flowing through it survive; a proxy nobody wants is
 * deleted, unless `inUse` says connections still flow through it: then it
 * only loses its toxics, and a later run deletes it.
 */
export function diff(actual: Readonly<Record<string, ActualProxy>>, desired: ReadonlyMap<string, DesiredProxy>, inUse: (name: string) => boolean): ToxiproxyAction[] {
  const out: ToxiproxyAction[] = [];
  for (const [name, want] of desired) {
    const got = actual[name];
    if (!got) {
      out.push({ op: 'createProxy', name, upstream: want.upstream }, ...toxicActions(name, [], want.toxics));
      continue;
    }
    if (got.upstream !== want.upstream || !got.enabled) out.push({ op: 'updateProxy', proxy: got, upstream: want.upstream });
    out.push(...toxicActions(name, got.toxics, want.toxics));
  }
  for (const [name, got] of Object.entries(actual)) {
    if (desired.has(name)) continue;
    if (inUse(name)) out.push(...toxicActions(name, got.toxics, []));
    else out.push({ op: 'deleteProxy', proxy: got });
  }
  return out;
}
