import { mkdir } from 'node:fs/promises';
import type { Logger } from '../../common/log.ts';
import { runAt } from '../../common/timer.ts';
import type { PlannedIoFault } from '../../contract/plans.ts';
import type { FaultFamily } from '../fault-family.ts';
import { bindMount, ensureDevFuse, makePrivate, removeStaleLayer, unmount } from './mounts.ts';
import { mountVolume, type MountedVolume } from './volume.ts';

/** The IO faults of one volume: FUSE layers a whole volume, so it is the unit of apply and recover. */
export interface VolumeFaults {
  volumePath: string;
  faults: PlannedIoFault[];
}

export interface IoRecovered {
  /** Faults this process served that went inert now. */
  lifted: PlannedIoFault[];
  /** A volume this process does not serve: whether a dead layer (a killed predecessor's) came off. */
  removedDeadLayer: boolean;
}

export interface IoFamily extends FaultFamily<VolumeFaults, MountedVolume, IoRecovered> {
  readonly volumes: readonly MountedVolume[];
  /** Unmounts every layer, leaving the volumes as they were (SIGTERM). */
  stop(): Promise<void>;
}

export function groupByVolume(faults: readonly PlannedIoFault[]): VolumeFaults[] {
  const groups = new Map<string, PlannedIoFault[]>();
  for (const f of faults) groups.set(f.volumePath, [...(groups.get(f.volumePath) ?? []), f]);
  return [...groups].map(([volumePath, fs]) => ({ volumePath, faults: fs }));
}

/**
 * IO faults as a fault-injecting passthrough FUSE layer per volume. Expiry
 * needs no action: the rules test each fault's expiresAt per call, so
 * recovering a served fault sets it to now and the volume passes through,
 * its mount still in place (the app may hold files open on it).
 */
export function ioFamily(opts: {
  /** Private working area for backing binds and FUSE mounts. */
  stateDir: string;
  /** volumePath (app view) → where this container sees that volume; unlisted = same path. */
  volumes?: ReadonlyMap<string, string>;
  log: Logger;
  now: () => number;
  /** At each fault's expiry, with what the layer injected meanwhile (`method:errno` → count): the chaos event's detail. */
  onExpired?: (fault: PlannedIoFault, injected: Record<string, number>) => void;
}): IoFamily {
  const { log, now } = opts;
  const localPathOf = (volumePath: string) => opts.volumes?.get(volumePath) ?? volumePath;
  const volumes: MountedVolume[] = [];
  const timers: Array<{ cancel(): void }> = [];
  let devFuse: Promise<'present' | 'created'> | undefined;
  let stateMounted = false;

  const prepareState = async (): Promise<'present' | 'created'> => {
    const fuse = await ensureDevFuse();
    await mkdir(opts.stateDir, { recursive: true });
    // A private self-bind: nothing Faultline mounts underneath leaks out to
    // the host or other containers except the one bind per volume we intend.
    await bindMount(opts.stateDir, opts.stateDir);
    stateMounted = true;
    await makePrivate(opts.stateDir);
    return fuse;
  };

  return {
    name: 'io',
    volumes,
    async apply({ volumePath, faults }) {
      devFuse ??= prepareState();
      const fuse = await devFuse;
      const counts = new Map<string, number>();
      const volume = await mountVolume(volumes.length, localPathOf(volumePath), opts.stateDir, faults, (method, _path, errno) => {
        const key = `${method}:${errno ?? 'delay'}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      });
      volumes.push(volume);
      log.info(
        { volumePath, localPath: volume.localPath, devFuse: fuse, rules: faults.map((f) => ({ chaosId: f.chaosId, path: f.path, methods: f.methods, errno: f.errno, delayMs: f.delayMs, percent: f.percent, expiresAt: f.expiresAt })) },
        'serving IO faults',
      );
      for (const f of faults)
        timers.push(
          runAt(f.expiresAt, () => {
            const injected = Object.fromEntries(counts);
            log.info({ chaosId: f.chaosId, volumePath: f.volumePath, injected }, 'IO fault expired; passing through');
            opts.onExpired?.(f, injected);
          }, now),
        );
      return volume;
    },
    async recover({ volumePath, faults }) {
      if (!volumes.some((v) => v.volumePath === volumePath)) {
        return { lifted: [], removedDeadLayer: await removeStaleLayer(localPathOf(volumePath)) };
      }
      const at = now();
      // The FUSE rules hold these very objects and test expiresAt per call.
      const lifted = faults.filter((f) => f.expiresAt > at);
      for (const f of lifted) f.expiresAt = at;
      return { lifted, removedDeadLayer: false };
    },
    async stop() {
      for (const t of timers.splice(0)) t.cancel();
      for (const v of volumes.splice(0).reverse()) {
        await v.unmount().catch((err: Error) => log.error({ volumePath: v.volumePath, err: err.message }, 'unmount failed'));
      }
      if (stateMounted) await unmount(opts.stateDir).catch(() => undefined);
      stateMounted = false;
      devFuse = undefined;
    },
  };
}
