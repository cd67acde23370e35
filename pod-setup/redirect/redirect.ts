import type { Logger } from '../../common/log.ts';
import type { CaptureWiring, TrafficWiring } from '../../contract/plans.ts';
import { DEFAULT_PROXY_PORTS } from '../../contract/pod-layout.ts';
import type { FaultFamily } from '../fault-family.ts';
import { renderCaptureRules } from './capture-rules.ts';
import { applyRuleset, renderRuleset, type NftLoss } from './nftables.ts';
import { resolveUpstreams, systemLookup, type Lookup } from './resolve.ts';

export interface RedirectSpec {
  wiring: TrafficWiring;
  /** The network family's loss fallback, carried in the same table (one transaction). */
  loss?: NftLoss;
}

export interface RedirectApplied {
  /** Transparent capture (every injected pod); the fixed-listener fields are then empty. */
  capture?: CaptureWiring;
  inbound: Array<{ port: number; listenPort: number }>;
  outbound: Array<{ host: string; port: number; listenPort: number; match: string[] | 'port-only' }>;
  excludedInbound: number[];
}

/**
 * Unresolvable names are resolved before anything is written, so `apply` is
 * one `nft -f` transaction: the whole table or none of it.
 */
export function redirectFamily(opts: { lookup?: Lookup; log: Logger }): FaultFamily<RedirectSpec, RedirectApplied> {
  const { log } = opts;
  return {
    name: 'redirect',
    async apply({ wiring, loss }) {
      const excluded = new Set(wiring.excludeInboundPorts);
      const inbound = wiring.inbound.filter((e) => !excluded.has(e.port));
      for (const e of wiring.inbound) {
        if (excluded.has(e.port)) log.warn({ port: e.port }, 'inbound port is both wired and excluded; exclusion wins, port not redirected');
      }
      const resolution = await resolveUpstreams(wiring.outbound, opts.lookup ?? systemLookup);
      for (const u of resolution.unresolved) {
        log.warn({ host: u.host, reason: u.reason }, 'upstream did not resolve; redirecting its port for every non-loopback destination');
      }
      // Capture first: with its table in place, the app's first connection is already the proxy's.
      const capture = wiring.capture;
      if (capture) {
        await applyRuleset(
          renderCaptureRules({
            proxyUid: wiring.proxyUid,
            ...capture,
            ...(capture.mesh ? { mesh: { uid: capture.mesh.uid } } : {}),
          }),
        );
        if (capture.mesh) log.info({ mesh: capture.mesh }, 'mesh sidecar present: inbound is captured after it (mesh first)');
      }
      // The table is always rewritten whole, so a re-run with a smaller plan leaves nothing stale behind.
      await applyRuleset(
        renderRuleset({
          proxyUid: wiring.proxyUid,
          inbound,
          outbound: resolution.upstreams,
          proxyOnlyPorts: [wiring.toxiproxyPort ?? DEFAULT_PROXY_PORTS.toxiproxy],
          ...(loss ? { loss } : {}),
        }),
      );
      return {
        ...(capture ? { capture } : {}),
        inbound,
        outbound: resolution.upstreams.map((u) => ({
          host: u.host,
          port: u.port,
          listenPort: u.listenPort,
          match: u.addresses.length > 0 ? u.addresses : 'port-only',
        })),
        excludedInbound: [...excluded],
      };
    },
    // The table is the pod's wiring, not a fault: it lives and dies with the
    // pod's network namespace, and with no fault live the proxy passes every
    // connection through unchanged. (Its loss chain is the network family's.)
    async recover() {},
  };
}
