import type { Logger } from '../common/log.ts';
import type { InitPlan } from '../contract/plans.ts';
import { join } from 'node:path';
import { DEFAULT_PROXY_PORTS, PROXY_ALIVE_FILE } from '../contract/pod-layout.ts';
import { assertCapabilities } from './capabilities.ts';
import { assertFaketimeLib, installFaketime } from './time/install-faketime.ts';
import { writeHandoff, type Handoff } from '../contract/handoff.ts';
import { netemUnavailableMessage, planNetemFallback, type NetemFallback } from './network/netem-fallback.ts';
import { applyRuleset, renderRuleset, type NftLoss } from './redirect/nftables.ts';
import { applyNetem, applyTbf, needsNetem } from './network/qdisc.ts';
import { resolveUpstreams, systemLookup, type Lookup } from './redirect/resolve.ts';
import { ensureAliveFifo } from './redirect/alive-fifo.ts';

export interface InitOptions {
  /** faultline-run emptyDir (handoff.json). */
  runDir: string;
  /** faultline-time emptyDir (libfaketime + faketime.rc). */
  timeDir: string;
  faketimeLib: string;
  lookup?: Lookup;
  now?: () => number;
}

/** What was applied, logged as one structured object and returned for tests. */
export interface InitSummary {
  redirect: {
    inbound: Array<{ port: number; listenPort: number }>;
    outbound: Array<{ host: string; port: number; listenPort: number; match: string[] | 'port-only' }>;
    excludedInbound: number[];
  };
  network?: {
    netem: 'applied' | 'unavailable' | 'not-needed';
    nftLoss?: number;
    tbfRateBitsPerSec?: number;
    proxyDelayMs?: number;
    notApplied: string[];
  };
  time?: { offset: string; lib: string; rc: string };
  io: Array<{ volumePath: string; path: string }>;
  skippedExpired: string[];
  handoff: string;
  durationMs: number;
}

function isUnexpired(f: { expiresAt: number }, now: number): boolean {
  return f.expiresAt > now;
}

/**
 * Applies an InitPlan: redirection, network faults (netem or fallbacks), the
 * proxy hand-off and the time offset. IO faults are served by the long-running
 * `faultline kernel` sidecar, not here: a FUSE server must outlive this
 * container. Capabilities are checked and names resolved before the first
 * change, so a pod fails before half a plan is live.
 */
export async function runInit(plan: InitPlan, opts: InitOptions, log: Logger): Promise<InitSummary> {
  const started = performance.now();
  const now = (opts.now ?? Date.now)();
  const skippedExpired: string[] = [];
  const live = <T extends { expiresAt: number; chaosId: string }>(what: string, f: T | undefined): T | undefined => {
    if (f && !isUnexpired(f, now)) skippedExpired.push(`${what} from ${f.chaosId}`);
    return f && isUnexpired(f, now) ? f : undefined;
  };
  const network = live('network', plan.kernel.network);
  const time = live('time', plan.kernel.time);
  const io = plan.kernel.io.filter((f) => live(`io ${f.volumePath}`, f));

  // NET_ADMIN always: even a pod with nothing to redirect gets the rule closing
  // Toxiproxy's API. nft speaks netlink only, so no NET_RAW; init mounts
  // nothing, so no SYS_ADMIN either (FUSE is faultline-kernel's job).
  assertCapabilities(['NET_ADMIN'], 'nftables redirection and tc');
  if (time) await assertFaketimeLib(opts.faketimeLib);

  const excluded = new Set(plan.wiring.excludeInboundPorts);
  const inbound = plan.wiring.inbound.filter((e) => !excluded.has(e.port));
  for (const e of plan.wiring.inbound) {
    if (excluded.has(e.port)) log.warn({ port: e.port }, 'inbound port is both wired and excluded; exclusion wins, port not redirected');
  }
  const resolution = await resolveUpstreams(plan.wiring.outbound, opts.lookup ?? systemLookup);
  for (const u of resolution.unresolved) {
    log.warn({ host: u.host, reason: u.reason }, 'upstream did not resolve; redirecting its port for every non-loopback destination');
  }

  // netem first: whether it exists decides which fallbacks the ruleset carries.
  let netem: NonNullable<InitSummary['network']>['netem'] = 'not-needed';
  let fallback: NetemFallback = { notApplied: [] };
  if (network && needsNetem(network)) {
    const outcome = await applyNetem(network);
    if (outcome.applied) {
      netem = 'applied';
    } else {
      netem = 'unavailable';
      fallback = planNetemFallback(network);
      log.warn(netemUnavailableMessage(outcome.reason, fallback));
      if (fallback.notApplied.length > 0) log.warn({ notApplied: fallback.notApplied }, 'network faults NOT applied');
    }
  } else if (network?.rateBitsPerSec !== undefined) {
    fallback = { rateBitsPerSec: network.rateBitsPerSec, notApplied: [] };
  }

  const nftLoss: NftLoss | undefined = fallback.loss;
  // The table is always rewritten whole, so a re-run with a smaller plan leaves nothing stale behind.
  await applyRuleset(
    renderRuleset({
      proxyUid: plan.wiring.proxyUid,
      inbound,
      outbound: resolution.upstreams,
      proxyOnlyPorts: [plan.wiring.toxiproxyPort ?? DEFAULT_PROXY_PORTS.toxiproxy],
      ...(nftLoss ? { loss: nftLoss } : {}),
    }),
  );
  if (network && fallback.rateBitsPerSec !== undefined) await applyTbf(network.device, fallback.rateBitsPerSec);

  const handoff: Handoff = fallback.networkDelay ? { networkDelay: fallback.networkDelay } : {};
  const handoffPath = await writeHandoff(opts.runDir, handoff);
  // The proxy holds it, faultline-failopen reads it: the fail-open gate's signal.
  await ensureAliveFifo(join(opts.runDir, PROXY_ALIVE_FILE));

  const summary: InitSummary = {
    redirect: {
      inbound,
      outbound: resolution.upstreams.map((u) => ({
        host: u.host,
        port: u.port,
        listenPort: u.listenPort,
        match: u.addresses.length > 0 ? u.addresses : 'port-only',
      })),
      excludedInbound: [...excluded],
    },
    io: io.map((f) => ({ volumePath: f.volumePath, path: f.path })),
    skippedExpired,
    handoff: handoffPath,
    durationMs: 0,
  };
  if (network) summary.network = networkSummary(netem, fallback);
  if (time) summary.time = await installFaketime(opts.timeDir, opts.faketimeLib, time.offsetMs);
  summary.durationMs = Math.round(performance.now() - started);
  log.info({ summary }, 'faultline init applied the plan');
  return summary;
}

function networkSummary(netem: NonNullable<InitSummary['network']>['netem'], fb: NetemFallback): InitSummary['network'] {
  const s: NonNullable<InitSummary['network']> = { netem, notApplied: fb.notApplied };
  if (fb.loss) s.nftLoss = fb.loss.percent;
  if (fb.rateBitsPerSec !== undefined) s.tbfRateBitsPerSec = fb.rateBitsPerSec;
  if (fb.networkDelay) s.proxyDelayMs = fb.networkDelay.latencyMs;
  return s;
}
