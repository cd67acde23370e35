import { access, constants, mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { copyFileAtomic, writeFileAtomic } from '../../common/files.ts';
import { formatOffset } from '../../contract/time-offset.ts';
import { FAKETIME_LIBRARY, FAKETIME_TIMESTAMP_FILE } from '../../contract/pod-layout.ts';

/** Debian's libfaketime; override with --faketime-lib on other distributions. */
export const DEFAULT_FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
/** The names the webhook points LD_PRELOAD and FAKETIME_TIMESTAMP_FILE at, inside the time volume. */
const FAKETIME_LIB_NAME = basename(FAKETIME_LIBRARY);
const FAKETIME_RC_NAME = basename(FAKETIME_TIMESTAMP_FILE);

/** Checked before anything is applied, so a missing library fails the pod up front. */
export async function assertFaketimeLib(libPath: string): Promise<void> {
  try {
    await access(libPath, constants.R_OK);
  } catch {
    throw new Error(`libfaketime not found at ${libPath} (install Debian's libfaketime or pass --faketime-lib)`);
  }
}

/**
 * Puts libfaketime and the offset file into the shared emptyDir. The app runs
 * as an arbitrary UID, so both are world-readable. The offset file is also
 * world-writable: the proxy (UID 1337) rewrites it live, and init runs with
 * every capability but NET_ADMIN dropped, so it cannot chown it to the
 * proxy. The app mounts the volume read-only and so still cannot change it.
 * The directory's own mode is left as the emptyDir made it (0777).
 */
export async function installFaketime(timeDir: string, libPath: string, offsetMs: number): Promise<{ lib: string; rc: string; offset: string }> {
  await mkdir(timeDir, { recursive: true });
  const lib = join(timeDir, FAKETIME_LIB_NAME);
  await copyFileAtomic(libPath, lib, 0o755);
  const offset = formatOffset(offsetMs);
  const rc = join(timeDir, FAKETIME_RC_NAME);
  await writeFileAtomic(rc, `${offset}\n`, 0o666);
  return { lib, rc, offset };
}
