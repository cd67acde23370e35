import { join } from 'node:path';
import type { Logger } from '../common/log.ts';
import type { InitPlan } from '../contract/plans.ts';
import { writeHandoff, type Handoff } from '../contract/handoff.ts';
import { PROXY_ALIVE_FILE } from '../contract/pod-layout.ts';
import { assertCapabilities } from './capabilities.ts';
import type { NetemFallback } from './network/netem-fallback.ts';
import { networkFamily, type NetworkApplied } from './network/network.ts';
import { redirectFamily, type RedirectApplied } from './redirect/redirect.ts';
import { ensureAliveFifo } from './redirect/alive-fifo.ts';
import { assertFaketimeLib } from './time/install-faketime.ts';
import { timeFamily, type TimeApplied } from './time/time.ts';

export interface InitOptions {
  /** faultline-run emptyDir (handoff.json). */
  runDir: string;
  /** faultline-time emptyDir (libfaketime + faketime.rc). */
  timeDir: string;
  faketimeLib: string;
  now?: () => number;
}

/** What was applied, logged as one structured object and returned for tests. */
export interface InitSummary {
  redirect: RedirectApplied;
  network?: {
    netem: NetworkApplied['netem'];
    nftLoss?: number;
    tbfRateBitsPerSec?: number;
    proxyDelayMs?: number;
    notApplied: string[];
  };
  time?: TimeApplied;
  io: Array<{ volumePath: string; path: string }>;
  skippedExpired: string[];
  handoff: string;
  durationMs: number;
}

function isUnexpired(f: { expiresAt: number }, now: number): boolean {
  return f.expiresAt > now;
}

/**
 * Applies an InitPlan through the fault families' applies: network faults
 * (netem or fallbacks), redirection (whose table carries the loss fallback),
 * the proxy hand-off and the time offset. IO faults are served by the
 * long-running `faultline kernel` sidecar, not here: a FUSE server must
 * outlive this container. Capabilities and libfaketime are checked before the
 * first change (the codec already required the plan's capture), so a pod
 * fails before half a plan is live.
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

  const capture = plan.wiring.capture;

  // netem first: whether it exists decides which fallbacks the ruleset carries.
  const net = network ? await networkFamily(log).apply(network) : undefined;
  const fallback: NetemFallback = net?.fallback ?? { notApplied: [] };
  const redirect = await redirectFamily({ log }).apply({
    wiring: plan.wiring,
    capture,
    ...(fallback.loss ? { loss: fallback.loss } : {}),
  });

  const handoff: Handoff = fallback.networkDelay ? { networkDelay: fallback.networkDelay } : {};
  const handoffPath = await writeHandoff(opts.runDir, handoff);
  // The proxy holds it, faultline-failopen reads it: the fail-open gate's signal.
  await ensureAliveFifo(join(opts.runDir, PROXY_ALIVE_FILE));

  const summary: InitSummary = {
    redirect,
    io: io.map((f) => ({ volumePath: f.volumePath, path: f.path })),
    skippedExpired,
    handoff: handoffPath,
    durationMs: 0,
  };
  if (net) summary.network = networkSummary(net);
  if (time) summary.time = await timeFamily({ timeDir: opts.timeDir, faketimeLib: opts.faketimeLib }).apply(time);
  summary.durationMs = Math.round(performance.now() - started);
  log.info({ summary }, 'faultline init applied the plan');
  return summary;
}

function networkSummary({ netem, fallback: fb }: NetworkApplied): InitSummary['network'] {
  const s: NonNullable<InitSummary['network']> = { netem, notApplied: fb.notApplied };
  if (fb.loss) s.nftLoss = fb.loss.percent;
  if (fb.rateBitsPerSec !== undefined) s.tbfRateBitsPerSec = fb.rateBitsPerSec;
  if (fb.networkDelay) s.proxyDelayMs = fb.networkDelay.latencyMs;
  return s;
}
