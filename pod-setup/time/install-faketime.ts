import { access, chmod, constants, mkdir } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { copyFileAtomic, writeFileAtomic } from '../../common/files.ts';
import { formatOffset } from '../../contract/time-offset.ts';
import { FAKETIME_LIBRARY, FAKETIME_TIMESTAMP_FILE, TIME_MOUNT_PATH } from '../../contract/pod-layout.ts';

/** Debian's libfaketime; override with --faketime-lib on other distributions. */
export const DEFAULT_FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
/** The names the webhook points LD_PRELOAD and FAKETIME_TIMESTAMP_FILE at, inside the time volume. */
const FAKETIME_LIB_NAME = basename(FAKETIME_LIBRARY);
const FAKETIME_RC_PATH = relative(TIME_MOUNT_PATH, FAKETIME_TIMESTAMP_FILE);

/** Checked before anything is applied, so a missing library fails the pod up front. */
export async function assertFaketimeLib(libPath: string): Promise<void> {
  try {
    await access(libPath, constants.R_OK);
  } catch {
    throw new Error(`libfaketime not found at ${libPath} (install Debian's libfaketime or pass --faketime-lib)`);
  }
}

/**
 * Puts libfaketime and the offset file into the shared emptyDir. The volume's
 * root and the library become root-owned 0755 (init is UID 0 and owns the
 * emptyDir, so it may chmod it without CAP_FOWNER): nothing but root can
 * replace code every app process preloads. The offset file sits in a
 * directory of its own, world-writable because the proxy (UID 1337) replaces
 * the file live and init, with every capability but NET_ADMIN dropped, cannot
 * chown anything to it. The app mounts the volume read-only.
 */
export async function installFaketime(timeDir: string, libPath: string, offsetMs: number): Promise<{ lib: string; rc: string; offset: string }> {
  await mkdir(timeDir, { recursive: true });
  await chmod(timeDir, 0o755);
  const lib = join(timeDir, FAKETIME_LIB_NAME);
  await copyFileAtomic(libPath, lib, 0o755);
  const offset = formatOffset(offsetMs);
  const rc = join(timeDir, FAKETIME_RC_PATH);
  await mkdir(dirname(rc), { recursive: true });
  // chmod after mkdir: the umask would have narrowed the create mode.
  await chmod(dirname(rc), 0o777);
  // The offset directory outlives container restarts and the proxy can write
  // in it: writeFileAtomic creates its temporary file exclusively under a
  // random name (never through a planted symlink) and sets the mode on the
  // descriptor, not the path.
  await writeFileAtomic(rc, `${offset}\n`, 0o666);
  return { lib, rc, offset };
}
