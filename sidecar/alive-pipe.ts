import { closeSync, constants, openSync } from 'node:fs';
import type { Logger } from '../common/log.ts';

export interface AlivePipe {
  /** Gives up our end: faultline-failopen opens the gate. Idempotent. */
  release(): void;
}

/**
 * Holds the proxy's end of the liveness FIFO (pod-setup/redirect/fail-open-gate.ts)
 * for the life of this process. Call it only once every traffic listener is
 * bound: the watcher closes the fail-open gate (traffic captured again) the
 * moment this end opens. Nothing is ever written; the kernel closing the
 * descriptor when this process dies, however it dies, is the whole signal.
 *
 * Read-write, so the open never blocks (a write-only open waits for a reader,
 * or fails with ENXIO when non-blocking and the watcher is restarting); close
 * on exec (libuv's default), so the Toxiproxy child never holds it. A missing
 * FIFO (a pod set up by an older init, a local run) is logged, not fatal:
 * there is then no fail-open, as before.
 */
export function holdAlivePipe(path: string, log: Logger): AlivePipe {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
    log.info({ path }, 'holding the liveness FIFO: the fail-open gate closes, traffic is captured');
  } catch (err) {
    log.warn({ path, err: (err as Error).message }, 'no liveness FIFO: traffic will not fail open if this proxy dies');
  }
  return {
    release() {
      if (fd === undefined) return;
      closeSync(fd);
      fd = undefined;
    },
  };
}
