import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { logChaosEvent, type ChaosEventStatus } from '../common/chaos-event.ts';
import type { Logger } from '../common/log.ts';
import { runAt } from '../common/timer.ts';
import type { InitPlan, PlannedIoFault, PlannedNetworkFault } from '../contract/plans.ts';
import { KERNEL_READY_FILE, POD_NAME_ENV } from '../contract/pod-layout.ts';
import { assertCapabilities, type CapabilityName } from './capabilities.ts';
import { groupByVolume, ioFamily } from './io/io.ts';
import type { MountedVolume } from './io/volume.ts';
import { networkFamily } from './network/network.ts';

export interface FaultKeeperOptions {
  /** Private working area for backing binds and FUSE mounts. */
  stateDir: string;
  /** faultline-run emptyDir: `kernel-ready` appears here once every volume is served (startup probe). */
  runDir: string;
  /** volumePath (app view) → where this container sees that volume; unlisted = same path. */
  volumes?: ReadonlyMap<string, string>;
  now?: () => number;
}

export interface FaultKeeper {
  volumes: MountedVolume[];
  /**
   * Ends the kernel faults of these policies now (a pause switch, or the
   * policy paused or deleted): IO rules go inert as at their expiry, and the
   * pod's root qdisc and nft loss rules are removed when its network fault is
   * among them (each family's recover, as at expiry). One way
   * only: kernel faults are fixed at pod start and never come back live.
   */
  lift(chaosIds: ReadonlySet<string>, reason: string): Promise<void>;
  stop(): Promise<void>;
}

/** The policies whose kernel faults this plan holds. */
export function kernelChaosIdsOf(plan: InitPlan): Set<string> {
  const k = plan.kernel;
  return new Set([...k.io.map((f) => f.chaosId), ...(k.network ? [k.network.chaosId] : []), ...(k.time ? [k.time.chaosId] : [])]);
}

const pod = (): string => process.env[POD_NAME_ENV] ?? '';
const where = (target: string): string => (pod() ? `${pod()} ${target}` : target);

type Extra = Record<string, unknown>;

/** One chaos event (common/chaos-event.ts) per fault kind `f` carries, on `target`. */
function kindEvents(log: Logger, f: { chaosId: string; experiment?: string }, kinds: readonly string[], target: string, status: ChaosEventStatus, durationMs: number, extra: Extra): void {
  for (const fault of kinds) logChaosEvent(log, { chaos_id: f.experiment ?? f.chaosId, policy: f.chaosId, target: where(target), fault, status, duration_ms: durationMs, ...extra });
}

/** An IO fault's kinds: an errno, a delay, or both. */
function ioEvents(log: Logger, f: PlannedIoFault, status: ChaosEventStatus, durationMs: number, extra: Extra = {}): void {
  const kinds = [...(f.errno !== undefined ? ['io.error'] : []), ...(f.delayMs > 0 ? ['io.delay'] : [])];
  kindEvents(log, f, kinds, `${f.volumePath} ${f.path}`, status, durationMs, extra);
}

/** A network fault's kinds: each netem parameter, and the rate. */
function networkEvents(log: Logger, f: PlannedNetworkFault, status: ChaosEventStatus, durationMs: number, extra: Extra = {}): void {
  const kinds = (['delay', 'loss', 'duplicate', 'corrupt', 'reorder'] as const).filter((k) => f[k] !== undefined).map((k) => `network.${k}`);
  if (f.rateBitsPerSec !== undefined) kinds.push('network.rate');
  kindEvents(log, f, kinds, f.device, status, durationMs, extra);
}

/**
 * The long-running half of the kernel-level plan (`faultline-kernel` native
 * sidecar): serves FUSE IO faults for the pod's lifetime and removes the
 * pod's tc qdisc and nft loss rules when the network fault expires — tc,
 * unlike nftables' `meta time`, has no expiry of its own.
 *
 * A start after expiry (the kubelet restarting the sidecar) cleans up instead
 * of serving: an expired network fault's qdisc and rules are removed, and a
 * volume whose faults all expired gets back its own filesystem, without the
 * dead FUSE layer a killed predecessor left on it. The sidecar then just
 * stays up with the pod, its startup probe passing.
 */
export async function startFaultKeeper(plan: InitPlan, opts: FaultKeeperOptions, log: Logger): Promise<FaultKeeper> {
  const now = opts.now ?? Date.now;
  const startedAt = now();
  const net = networkFamily(log);
  const ioFaults = ioFamily({
    stateDir: opts.stateDir,
    ...(opts.volumes ? { volumes: opts.volumes } : {}),
    log,
    now,
    onExpired: (f, injected) => ioEvents(log, f, 'expired', f.expiresAt - startedAt, { injected }),
  });
  /** Recovers at expiry, which nobody awaits: failures are logged. */
  const endNetworkFault = async (fault: PlannedNetworkFault): Promise<void> => {
    try {
      const removed = await net.recover(fault);
      log.info({ chaosId: fault.chaosId, device: fault.device, removed }, 'network fault expired; its qdisc and nft rules are gone');
      networkEvents(log, fault, 'expired', now() - startedAt);
    } catch (err) {
      log.error({ chaosId: fault.chaosId, device: fault.device, errors: (err as Error).message }, 'could not remove an expired network fault');
    }
  };

  const io = plan.kernel.io.filter((f) => f.expiresAt > now());
  const network = plan.kernel.network && plan.kernel.network.expiresAt > now() ? plan.kernel.network : undefined;
  if (plan.kernel.network && !network) await endNetworkFault(plan.kernel.network);
  const liveVolumes = new Set(io.map((f) => f.volumePath));
  for (const volume of groupByVolume(plan.kernel.io)) {
    if (liveVolumes.has(volume.volumePath)) continue;
    await ioFaults.recover(volume).then(
      (r) => log.info({ volumePath: volume.volumePath, removedDeadLayer: r.removedDeadLayer }, 'IO faults on this volume expired; passing through'),
      (err: Error) => log.error({ volumePath: volume.volumePath, err: err.message }, 'could not remove the dead FUSE layer of an expired IO fault'),
    );
  }
  const caps: CapabilityName[] = [];
  if (io.length > 0) caps.push('SYS_ADMIN');
  if (network) caps.push('NET_ADMIN');
  if (caps.length > 0) assertCapabilities(caps, 'FUSE mounts and tc');

  let networkTimer: { cancel(): void } | undefined;
  let networkLive = network !== undefined;
  const lift = async (chaosIds: ReadonlySet<string>, reason: string): Promise<void> => {
    for (const volume of groupByVolume(io.filter((f) => chaosIds.has(f.chaosId)))) {
      const { lifted } = await ioFaults.recover(volume);
      for (const f of lifted) ioEvents(log, f, 'lifted', now() - startedAt, { reason });
    }
    if (network && networkLive && chaosIds.has(network.chaosId) && network.expiresAt > now()) {
      networkLive = false;
      networkTimer?.cancel();
      const removed = await net.recover(network);
      log.info({ chaosId: network.chaosId, device: network.device, reason, removed }, 'network fault lifted; root qdisc and nft loss rules removed');
      networkEvents(log, network, 'lifted', now() - startedAt, { reason });
    }
  };
  const stop = async () => {
    networkTimer?.cancel();
    await rm(join(opts.runDir, KERNEL_READY_FILE), { force: true });
    await ioFaults.stop();
  };

  try {
    for (const volume of groupByVolume(io)) {
      await ioFaults.apply(volume);
      for (const f of volume.faults) ioEvents(log, f, 'started', f.expiresAt - now());
    }
    if (network) {
      // Init applied it; from here this process owns its end.
      networkEvents(log, network, 'started', network.expiresAt - now());
      networkTimer = runAt(network.expiresAt, () => {
        networkLive = false;
        void endNetworkFault(network);
      }, now);
    }
    await mkdir(opts.runDir, { recursive: true });
    await writeFile(join(opts.runDir, KERNEL_READY_FILE), `${new Date(now()).toISOString()}\n`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { volumes: ioFaults.volumes as MountedVolume[], lift, stop };
}
