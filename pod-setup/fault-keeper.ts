import { logChaosEvent, type ChaosEventStatus } from '../common/chaos-event.ts';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../common/log.ts';
import { runAt } from '../common/timer.ts';
import type { InitPlan, PlannedIoFault, PlannedNetworkFault } from '../contract/plans.ts';
import { KERNEL_READY_FILE } from '../contract/pod-layout.ts';
import { assertCapabilities, type CapabilityName } from './capabilities.ts';
import { bindMount, ensureDevFuse, makePrivate, removeStaleLayer, unmount } from './io/mounts.ts';
import { mountVolume, type MountedVolume } from './io/volume.ts';
import { removeOwnRootQdisc } from './network/qdisc.ts';
import { removeLossChain } from './redirect/nftables.ts';


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
   * pod's root qdisc is removed when its network fault is among them. One way
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

function byVolume(faults: readonly PlannedIoFault[]): PlannedIoFault[][] {
  const groups = new Map<string, PlannedIoFault[]>();
  for (const f of faults) groups.set(f.volumePath, [...(groups.get(f.volumePath) ?? []), f]);
  return [...groups.values()];
}

/** Removes what init applied for an ended network fault: the root qdisc (tc has no expiry) and the nft loss chain. */
async function endNetworkFault(fault: PlannedNetworkFault, log: Logger, startedAt: number): Promise<void> {
  const [qdisc, loss] = await Promise.allSettled([removeOwnRootQdisc(fault.device), removeLossChain()]);
  const failed = [qdisc, loss].filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length > 0) {
    log.error({ chaosId: fault.chaosId, device: fault.device, errors: failed.map((r) => (r.reason as Error).message) }, 'could not remove an expired network fault');
    return;
  }
  const removed = { qdisc: qdisc.status === 'fulfilled' && qdisc.value, lossRules: loss.status === 'fulfilled' && loss.value };
  log.info({ chaosId: fault.chaosId, device: fault.device, removed }, 'network fault expired; its qdisc and nft rules are gone');
  networkEvents(log, fault, 'expired', Date.now() - startedAt);
}

const pod = (): string => process.env.POD_NAME ?? '';
const where = (target: string): string => (pod() ? `${pod()} ${target}` : target);

function ioEvents(log: Logger, f: PlannedIoFault, status: ChaosEventStatus, durationMs: number, extra: Record<string, unknown> = {}): void {
  const kinds = [...(f.errno !== undefined ? ['io.error'] : []), ...(f.delayMs > 0 ? ['io.delay'] : [])];
  for (const fault of kinds) logChaosEvent(log, { chaos_id: f.experiment ?? f.chaosId, policy: f.chaosId, target: where(`${f.volumePath} ${f.path}`), fault, status, duration_ms: durationMs, ...extra });
}

function networkEvents(log: Logger, f: PlannedNetworkFault, status: ChaosEventStatus, durationMs: number, extra: Record<string, unknown> = {}): void {
  const kinds = (['delay', 'loss', 'duplicate', 'corrupt', 'reorder'] as const).filter((k) => f[k] !== undefined).map((k) => `network.${k}`);
  if (f.rateBitsPerSec !== undefined) kinds.push('network.rate');
  for (const fault of kinds) logChaosEvent(log, { chaos_id: f.experiment ?? f.chaosId, policy: f.chaosId, target: where(f.device), fault, status, duration_ms: durationMs, ...extra });
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
  const io = plan.kernel.io.filter((f) => f.expiresAt > now());
  const network = plan.kernel.network && plan.kernel.network.expiresAt > now() ? plan.kernel.network : undefined;
  if (plan.kernel.network && !network) await endNetworkFault(plan.kernel.network, log, now());
  const startedAt = now();
  const liveVolumes = new Set(io.map((f) => f.volumePath));
  for (const volumePath of new Set(plan.kernel.io.map((f) => f.volumePath))) {
    if (liveVolumes.has(volumePath)) continue;
    const localPath = opts.volumes?.get(volumePath) ?? volumePath;
    await removeStaleLayer(localPath).then(
      (removed) => log.info({ volumePath, removedDeadLayer: removed }, 'IO faults on this volume expired; passing through'),
      (err: Error) => log.error({ volumePath, err: err.message }, 'could not remove the dead FUSE layer of an expired IO fault'),
    );
  }
  const caps: CapabilityName[] = [];
  if (io.length > 0) caps.push('SYS_ADMIN');
  if (network) caps.push('NET_ADMIN');
  if (caps.length > 0) assertCapabilities(caps, 'FUSE mounts and tc');

  const volumes: MountedVolume[] = [];
  const timers: Array<{ cancel(): void }> = [];
  let networkTimer: { cancel(): void } | undefined;
  let networkLive = network !== undefined;
  const lift = async (chaosIds: ReadonlySet<string>, reason: string): Promise<void> => {
    const at = now();
    // The FUSE rules hold these very objects and test expiresAt per call.
    const ended = io.filter((f) => chaosIds.has(f.chaosId) && f.expiresAt > at);
    for (const f of ended) f.expiresAt = at;
    for (const f of ended) ioEvents(log, f, 'lifted', at - startedAt, { reason });
    if (network && networkLive && chaosIds.has(network.chaosId) && network.expiresAt > at) {
      networkLive = false;
      networkTimer?.cancel();
      const removed = await removeOwnRootQdisc(network.device);
      log.info({ chaosId: network.chaosId, device: network.device, reason, removed }, 'network fault lifted; root qdisc removed');
      networkEvents(log, network, 'lifted', at - startedAt, { reason });
    }
  };
  let stateMounted = false;
  const stop = async () => {
    for (const t of timers) t.cancel();
    await rm(join(opts.runDir, KERNEL_READY_FILE), { force: true });
    for (const v of volumes.splice(0).reverse()) {
      await v.unmount().catch((err: Error) => log.error({ volumePath: v.volumePath, err: err.message }, 'unmount failed'));
    }
    if (stateMounted) await unmount(opts.stateDir).catch(() => undefined);
    stateMounted = false;
  };

  try {
    if (io.length > 0) {
      const devFuse = await ensureDevFuse();
      await mkdir(opts.stateDir, { recursive: true });
      // A private self-bind: nothing Faultline mounts underneath leaks out to
      // the host or other containers except the one bind per volume we intend.
      await bindMount(opts.stateDir, opts.stateDir);
      stateMounted = true;
      await makePrivate(opts.stateDir);
      const groups = byVolume(io);
      for (const [i, faults] of groups.entries()) {
        const counts = new Map<string, number>();
        const volumePath = faults[0]!.volumePath;
        const volume = await mountVolume(i, opts.volumes?.get(volumePath) ?? volumePath, opts.stateDir, faults, (method, _path, errno) => {
          const key = `${method}:${errno ?? 'delay'}`;
          counts.set(key, (counts.get(key) ?? 0) + 1);
        });
        volumes.push(volume);
        log.info(
          { volumePath, localPath: volume.localPath, devFuse, rules: faults.map((f) => ({ chaosId: f.chaosId, path: f.path, methods: f.methods, errno: f.errno, delayMs: f.delayMs, percent: f.percent, expiresAt: f.expiresAt })) },
          'serving IO faults',
        );
        for (const f of faults) {
          ioEvents(log, f, 'started', f.expiresAt - now());
          timers.push(runAt(f.expiresAt, () => ioEvents(log, f, 'expired', f.expiresAt - startedAt, { injected: Object.fromEntries(counts) }), now));
        }
      }
    }
    if (network) {
      // Init applied it; from here this process owns its end.
      networkEvents(log, network, 'started', network.expiresAt - now());
      networkTimer = runAt(network.expiresAt, () => {
        networkLive = false;
        void endNetworkFault(network, log, startedAt);
      }, now);
      timers.push(networkTimer);
    }
    await mkdir(opts.runDir, { recursive: true });
    await writeFile(join(opts.runDir, KERNEL_READY_FILE), `${new Date(now()).toISOString()}\n`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { volumes, lift, stop };
}
