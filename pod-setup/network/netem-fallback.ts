import type { LiveFaultPlan, PlannedNetworkFault } from '../../contract/plans.ts';
import type { NftLoss } from '../redirect/nftables.ts';

/** What replaces netem when the kernel has no sch_netem. */
export interface NetemFallback {
  /** Egress loss as an nft rule (kernel-side expiry via `meta time`). */
  loss?: NftLoss;
  /** Rate as a tbf root qdisc. */
  rateBitsPerSec?: number;
  /** Delay/jitter applied by the proxy, per connection, via handoff.json. */
  networkDelay?: LiveFaultPlan['networkDelay'];
  /** Human-readable reasons for every part of the fault left unapplied or approximated. */
  notApplied: string[];
}

/**
 * Decides, without I/O, how each netem field is served without netem.
 * Duplicate, corrupt and reorder act on single packets inside the qdisc; no
 * other kernel facility reachable from a pod reproduces them, so they are
 * reported rather than approximated.
 */
export function planNetemFallback(f: PlannedNetworkFault): NetemFallback {
  const out: NetemFallback = { notApplied: [] };
  if (f.loss) {
    out.loss = { device: f.device, percent: f.loss.percent, expiresAtSec: Math.floor(f.expiresAt / 1000) };
    if (f.loss.correlation > 0) out.notApplied.push(`loss correlation ${f.loss.correlation}% (nft draws every packet independently)`);
  }
  if (f.rateBitsPerSec !== undefined) out.rateBitsPerSec = f.rateBitsPerSec;
  if (f.delay) out.networkDelay = { ...f.delay, chaosId: f.chaosId, expiresAt: f.expiresAt };
  if (f.duplicate) out.notApplied.push(`duplicate ${f.duplicate.percent}% (needs sch_netem; no fallback)`);
  if (f.corrupt) out.notApplied.push(`corrupt ${f.corrupt.percent}% (needs sch_netem; no fallback)`);
  if (f.reorder) out.notApplied.push(`reorder ${f.reorder.percent}% (needs sch_netem; no fallback)`);
  return out;
}

/** The single line operators grep for: what is missing and what stands in for it. */
export function netemUnavailableMessage(reason: string, fb: NetemFallback): string {
  const used = [fb.loss && 'nft loss', fb.rateBitsPerSec !== undefined && 'tbf rate', fb.networkDelay && 'proxy-side delay'].filter(Boolean);
  return `netem unavailable: ${reason}; ${used.length > 0 ? `falling back to ${used.join(', ')}` : 'no fallback applies'}`;
}
