import type { Logger } from '../common/log.ts';
import type { CaptureWiring, InitPlan } from '../contract/plans.ts';
import { PlanError } from '../contract/codec.ts';
import { DEFAULT_PROXY_PORTS } from '../contract/pod-layout.ts';
import { assertCapabilities } from './capabilities.ts';
import { assertFaketimeLib, installFaketime } from './time/install-faketime.ts';
import { writeHandoff, type Handoff } from '../contract/handoff.ts';
import { netemUnavailableMessage, planNetemFallback, type NetemFallback } from './network/netem-fallback.ts';
import { renderCaptureRules } from './redirect/capture-rules.ts';
import { applyRuleset, renderRuleset, type NftLoss } from './redirect/nftables.ts';
import { applyNetem, applyTbf, needsNetem } from './network/qdisc.ts';

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
  /** The capture the table was written for. */
  capture: CaptureWiring;
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
 * Applies an InitPlan: transparent capture, network faults (netem or
 * fallbacks), the proxy hand-off and the time offset. IO faults are served by
 * the long-running `faultline kernel` sidecar, not here: a FUSE server must
 * outlive this container. Capabilities and the plan's capture are checked
 * before the first change, so a pod fails before half a plan is live.
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

  // Pods are captured; fixed listeners are for a proxy run outside a pod (no init there).
  const capture = plan.wiring.capture;
  if (!capture) throw new PlanError('the plan has no wiring.capture: faultline init only sets up transparent capture (fixed listeners are for running the proxy outside a pod)');

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
  // The tables are always rewritten whole, so a re-run with a smaller plan leaves nothing stale behind.
  // Both tables in one `nft -f` transaction: all of it is live or none of it,
  // and init runs nft once (each run faults nft's binary into the container's
  // memory cgroup, which bench:init counts).
  await applyRuleset(
    renderCaptureRules({ proxyUid: plan.wiring.proxyUid, ...capture, ...(capture.mesh ? { mesh: { uid: capture.mesh.uid } } : {}) }) +
      renderRuleset({
        proxyUid: plan.wiring.proxyUid,
        proxyOnlyPorts: [plan.wiring.toxiproxyPort ?? DEFAULT_PROXY_PORTS.toxiproxy],
        ...(nftLoss ? { loss: nftLoss } : {}),
      }),
  );
  if (capture.mesh) log.info({ mesh: capture.mesh }, 'mesh sidecar present: inbound is captured after it (mesh first)');
  if (network && fallback.rateBitsPerSec !== undefined) await applyTbf(network.device, fallback.rateBitsPerSec);

  const handoff: Handoff = fallback.networkDelay ? { networkDelay: fallback.networkDelay } : {};
  const handoffPath = await writeHandoff(opts.runDir, handoff);

  const summary: InitSummary = {
    capture,
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
