import { lstat, rm } from 'node:fs/promises';
import { runOrThrow } from '../exec.ts';

/**
 * Creates the proxy-liveness FIFO (fail-open-gate.ts) in the run volume, or
 * keeps the one a previous run of init left. 0666: the proxy (its own UID)
 * opens it read-write, and init cannot chown without CAP_CHOWN; only
 * Faultline's containers mount the run volume. Node has no mkfifo, the init
 * image has coreutils'.
 */
export async function ensureAliveFifo(path: string): Promise<void> {
  const existing = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (existing?.isFIFO()) return;
  if (existing) await rm(path, { recursive: true, force: true });
  await runOrThrow(['mkfifo', '-m', '0666', path]);
}
