import type { Logger } from '../../common/log.ts';
import type { CaptureWiring, TrafficWiring } from '../../contract/plans.ts';
import { DEFAULT_PROXY_PORTS } from '../../contract/pod-layout.ts';
import type { FaultFamily } from '../fault-family.ts';
import { renderCaptureRules } from './capture-rules.ts';
import { applyRuleset, renderRuleset, type NftLoss } from './nftables.ts';

export interface RedirectSpec {
  wiring: TrafficWiring;
  /** The plan's capture (init refuses a plan without one before any change). */
  capture: CaptureWiring;
  /** The network family's loss fallback, carried in the guard table (same transaction). */
  loss?: NftLoss;
}

export interface RedirectApplied {
  /** The capture the table was written for. */
  capture: CaptureWiring;
}

/**
 * Transparent capture (capture-rules.ts) and the guard table (the Toxiproxy
 * API guard, netem's loss fallback: nftables.ts), both rewritten whole in one
 * `nft -f` transaction: all of it is live or none of it, and a re-run with a
 * smaller plan leaves nothing stale. One nft run, too: each run faults nft's
 * binary into the container's memory cgroup, which bench:init counts.
 */
export function redirectFamily(opts: { log: Logger }): FaultFamily<RedirectSpec, RedirectApplied> {
  const { log } = opts;
  return {
    name: 'redirect',
    async apply({ wiring, capture, loss }) {
      await applyRuleset(
        renderCaptureRules({ proxyUid: wiring.proxyUid, ...capture, ...(capture.mesh ? { mesh: { uid: capture.mesh.uid } } : {}) }) +
          renderRuleset({
            proxyUid: wiring.proxyUid,
            proxyOnlyPorts: [wiring.toxiproxyPort ?? DEFAULT_PROXY_PORTS.toxiproxy],
            ...(loss ? { loss } : {}),
          }),
      );
      if (capture.mesh) log.info({ mesh: capture.mesh }, 'mesh sidecar present: inbound is captured after it (mesh first)');
      return { capture };
    },
    // The tables are the pod's wiring, not a fault: they live and die with the
    // pod's network namespace, and with no fault live the proxy passes every
    // connection through unchanged. (The loss chain is the network family's.)
    async recover() {},
  };
}
