import { mkdir, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { IoMethod } from '../../policies/types.ts';
import type { PlannedIoFault } from '../../contract/plans.ts';
import { loadFuse, type FuseInstance } from './fuse-native.ts';
import { bindMount, makePrivate, removeStaleLayer, unmount } from './mounts.ts';
import { passthroughOps } from './passthrough.ts';
import { compileRules } from './io-rules.ts';

export interface MountedVolume {
  /** The volume's mount path in the app container (the policy's volumePath). */
  volumePath: string;
  /** Where this container sees the volume (the mount point FUSE is layered on). */
  localPath: string;
  /** Detaches the FUSE layer: the app sees the original directory again. */
  unmount(): Promise<void>;
}

function promisify(fn: (cb: (err: Error | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));
}

/**
 * Layers a fault-injecting passthrough over one volume:
 *
 *   <state>/backing/<i>  bind of the original volume (private) — where data really lives
 *   <state>/fuse/<i>     the FUSE mount, passing through to backing/<i>
 *   localPath            bind of fuse/<i> — propagates to the app container
 *
 * localPath is where this container mounts the volume (the webhook mounts it
 * rshared under /var/run/faultline-io/<volume>); it equals volumePath when
 * the server runs in the app's own mount view, as in tests.
 *
 * FUSE is mounted on a private staging directory and then bound over the
 * volume, rather than mounted on the volume directly, because the volume is
 * itself a mount point (fuse-native refuses those) and because the staging
 * mount must not propagate anywhere but through that one bind.
 */
export async function mountVolume(
  index: number,
  localPath: string,
  stateDir: string,
  faults: readonly PlannedIoFault[],
  onFault?: (method: IoMethod, path: string, errno: number | undefined, delayMs: number) => void,
): Promise<MountedVolume> {
  const volumePath = faults[0]!.volumePath;
  await removeStaleLayer(localPath);
  const st = await stat(localPath).catch((err: NodeJS.ErrnoException) => err);
  if (st instanceof Error || !st.isDirectory()) {
    const why = st instanceof Error ? (st.code ?? st.message) : 'not a directory';
    throw new Error(`volume ${volumePath}: cannot use ${localPath} in this container (${why}); is the volume mounted into faultline-kernel?`);
  }
  const Fuse = loadFuse();
  const backing = join(stateDir, 'backing', String(index));
  const fuseDir = join(stateDir, 'fuse', String(index));
  await mkdir(backing, { recursive: true });
  await mkdir(fuseDir, { recursive: true });

  const undo: Array<() => Promise<void>> = [];
  const rollback = async () => {
    for (const step of undo.reverse()) await step().catch(() => undefined);
  };
  try {
    await bindMount(localPath, backing);
    undo.push(() => unmount(backing));
    await makePrivate(backing);

    const rules = compileRules(faults);
    const touchesAttrs = faults.some((f) => f.methods.includes('getattr') || f.methods.includes('open'));
    const touchesData = faults.some((f) => f.methods.includes('read') || f.methods.includes('write'));
    const fuse: FuseInstance = new Fuse(fuseDir, passthroughOps(backing, { rules, ...(onFault ? { onFault } : {}) }), {
      // The app runs as another UID; the kernel checks permissions against the
      // backing files' modes, as it would without Faultline in the way.
      allowOther: true,
      defaultPermissions: true,
      fsname: `faultline:${volumePath}`,
      subtype: 'faultline', // mount type fuse.faultline: how a restart recognises its own stale layer
      // Delays are the point; fuse-native's 15 s watchdog would turn long ones into ETIMEDOUT.
      timeout: false,
      // The kernel caches lookups and attributes for 1 s by default, which
      // would hide most getattr/open faults; keep them nearly uncached then.
      ...(touchesAttrs ? { attrTimeout: 0.001, entryTimeout: 0.001 } : {}),
      // Through the page cache one read(2) is not one FUSE read: readahead
      // batches calls, cached pages skip us entirely, and a failed readahead is
      // retried once synchronously, so a 30% EIO rule would fail only ~9% of
      // reads. direct_io makes every read/write call one request we decide on.
      // The cost: no page cache, and mmap of these files needs kernel >= 6.6.
      ...(touchesData ? { extraOptions: ['direct_io'] } : {}),
    });
    await promisify((cb) => fuse.mount(cb));
    undo.push(() => promisify((cb) => fuse.unmount(cb)));

    await bindMount(fuseDir, localPath);
    undo.push(() => unmount(localPath));
  } catch (err) {
    await rollback();
    throw err;
  }
  let unmounted = false;
  return {
    volumePath,
    localPath,
    async unmount() {
      if (unmounted) return;
      unmounted = true;
      await rollback();
      await rmdir(fuseDir).catch(() => undefined);
      await rmdir(backing).catch(() => undefined);
    },
  };
}
