import type { Logger } from '../../common/log.ts';
import type { PlannedNetworkFault } from '../../contract/plans.ts';
import type { FaultFamily } from '../fault-family.ts';
import { removeLossChain } from '../redirect/nftables.ts';
import { netemUnavailableMessage, planNetemFallback, type NetemFallback } from './netem-fallback.ts';
import { applyNetem, applyTbf, needsNetem, removeOwnRootQdisc } from './qdisc.ts';

export interface NetworkApplied {
  netem: 'applied' | 'unavailable' | 'not-needed';
  /**
   * What stands in for netem. `apply` has put the tbf in place; the loss rule
   * goes into the redirect table (one nft transaction) and the delay into the
   * proxy's hand-off, both written by init.
   */
  fallback: NetemFallback;
}

export interface NetworkRecovered {
  qdisc: boolean;
  lossRules: boolean;
}

/**
 * The pod's network fault: one netem root qdisc, or where the kernel lacks
 * sch_netem a tbf for the rate, an nft rule for the loss and a proxy-side
 * delay. Recovery removes the root qdisc (tc has no expiry of its own) and the
 * loss chain (its `meta time` already stops it matching at expiry; a lift
 * comes before that).
 */
export function networkFamily(log: Logger): FaultFamily<PlannedNetworkFault, NetworkApplied, NetworkRecovered> {
  return {
    name: 'network',
    async apply(fault) {
      let netem: NetworkApplied['netem'] = 'not-needed';
      let fallback: NetemFallback = { notApplied: [] };
      if (needsNetem(fault)) {
        const outcome = await applyNetem(fault);
        if (outcome.applied) {
          netem = 'applied';
        } else {
          netem = 'unavailable';
          fallback = planNetemFallback(fault);
          log.warn(netemUnavailableMessage(outcome.reason, fallback));
          if (fallback.notApplied.length > 0) log.warn({ notApplied: fallback.notApplied }, 'network faults NOT applied');
        }
      } else if (fault.rateBitsPerSec !== undefined) {
        fallback = { rateBitsPerSec: fault.rateBitsPerSec, notApplied: [] };
      }
      if (fallback.rateBitsPerSec !== undefined) await applyTbf(fault.device, fallback.rateBitsPerSec);
      return { netem, fallback };
    },
    async recover(fault) {
      const [qdisc, loss] = await Promise.allSettled([removeOwnRootQdisc(fault.device), removeLossChain()]);
      const failed = [qdisc, loss].filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed.length > 0) throw new Error(failed.map((r) => (r.reason as Error).message).join('; '));
      return { qdisc: qdisc.status === 'fulfilled' && qdisc.value, lossRules: loss.status === 'fulfilled' && loss.value };
    },
  };
}
