import { existsSync, readFileSync } from 'node:fs';
import { run, runOrThrow } from '../exec.ts';
import { assertCapabilities } from '../capabilities.ts';

export const DEV_FUSE = '/dev/fuse';

/**
 * Privileged containers normally see the host's /dev/fuse; minimal runtimes
 * and some sandboxes do not. The node is a fixed char device (10, 229).
 */
export async function ensureDevFuse(path = DEV_FUSE): Promise<'present' | 'created'> {
  if (existsSync(path)) return 'present';
  assertCapabilities(['MKNOD'], `creating ${path} (char 10:229)`);
  const r = await run(['mknod', '-m', '0666', path, 'c', '10', '229']);
  if (r.code !== 0) {
    throw new Error(
      `${path} is missing and mknod failed: ${r.stderr.trim()} ` +
        '(the device cgroup must allow c 10:229; run faultline-kernel privileged)',
    );
  }
  return 'created';
}

export async function bindMount(source: string, target: string): Promise<void> {
  await runOrThrow(['mount', '--bind', source, target]);
}

/**
 * Stops mount events crossing this mount point in either direction. Needed
 * because the volume is mounted rshared (Bidirectional) into faultline-kernel:
 * a bind of it would otherwise join its peer group and receive the FUSE
 * mount on top of itself, turning the passthrough into a loop.
 */
export async function makePrivate(target: string): Promise<void> {
  await runOrThrow(['mount', '--make-private', target]);
}

/** Lazy unmount: the app may still hold files open during shutdown. */
export async function unmount(target: string): Promise<void> {
  const r = await run(['umount', '--lazy', target]);
  if (r.code !== 0 && !/not mounted|no mount point/i.test(r.stderr)) {
    throw new Error(`umount ${target} failed: ${r.stderr.trim()}`);
  }
}

/** Filesystem type of the topmost mount at `path`, from /proc/self/mountinfo text. */
export function topMountType(mountinfo: string, path: string): string | undefined {
  let type: string | undefined;
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    // Later lines are mounted later: the last match is the one on top.
    if (sep > 4 && fields[4] === path) type = fields[sep + 1];
  }
  return type;
}

export const FUSE_TYPE = 'fuse.faultline';

/**
 * A faultline-kernel that was killed (OOM, SIGKILL) leaves its FUSE layer on
 * the volume with nobody serving it, and every app access fails with ENOTCONN.
 * The restarted server takes that dead layer off before adding its own.
 */
export async function removeStaleLayer(path: string): Promise<boolean> {
  if (topMountType(readFileSync('/proc/self/mountinfo', 'utf8'), path) !== FUSE_TYPE) return false;
  await unmount(path);
  return true;
}
