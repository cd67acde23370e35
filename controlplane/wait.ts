import { setTimeout as sleep } from 'node:timers/promises';
import { ManagedProcess, type ProcessSpec } from './process.ts';

export interface WaitOptions {
  /** What we wait for, in messages: "kube-apiserver /readyz". */
  what: string;
  timeoutMs: number;
  intervalMs?: number;
  /** Fail at once (with its log) if this process exits while we wait. */
  process?: ManagedProcess;
  /** Called about every 5 s while still waiting, with the elapsed time and the last probe result. */
  progress?: (line: string) => void;
}

/**
 * Polls `probe` until it returns true. A probe returns false or a short reason
 * string ("HTTP 500: [-]poststarthook/rbac failed") while not ready; the last
 * reason goes into progress lines and the timeout error.
 */
export async function waitUntil(probe: (signal: AbortSignal) => Promise<true | false | string>, opts: WaitOptions): Promise<number> {
  const start = performance.now();
  const interval = opts.intervalMs ?? 100;
  let lastReport = start;
  let last = 'not ready';
  for (;;) {
    const proc = opts.process;
    // A process that dies mid-probe (say, a port clash) must not wait out
    // the probe's timeout, nor leave the abandoned probe holding the event loop.
    const abort = new AbortController();
    const result = await Promise.race([
      probe(abort.signal).catch((err: unknown) => errorText(err)),
      ...(proc ? [proc.exited.then(() => false as const)] : []),
    ]);
    abort.abort();
    if (result === true) return performance.now() - start;
    if (result !== false) last = result;
    if (proc && !proc.running) {
      throw new Error(`${proc.name} ${proc.describeStatus()} while waiting for ${opts.what}; last lines of ${proc.logFile}:\n${await proc.logTail()}`);
    }
    const now = performance.now();
    if (now - start > opts.timeoutMs) {
      const tail = proc ? `\nlast lines of ${proc.logFile}:\n${await proc.logTail()}` : '';
      throw new Error(`timed out after ${Math.round(opts.timeoutMs / 1000)} s waiting for ${opts.what} (last: ${last})${tail}`);
    }
    if (opts.progress && now - lastReport >= 5000) {
      lastReport = now;
      opts.progress(`waiting for ${opts.what}: ${((now - start) / 1000).toFixed(0)} s (${last})`);
    }
    await sleep(interval);
  }
}

/** A one-line description of a failed probe (connection refused, TLS error…). */
export function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as Error & { cause?: unknown }).cause;
  const code = (cause as NodeJS.ErrnoException | undefined)?.code ?? (err as NodeJS.ErrnoException).code;
  return code ? `${err.message} (${code})` : err.message;
}

/**
 * Starts a process and waits for `probe`; if it never gets ready, the
 * process is stopped before the error propagates, so a failed start leaves
 * nothing running for the caller to track.
 */
export async function startReady(
  spec: ProcessSpec,
  probe: (signal: AbortSignal) => Promise<true | false | string>,
  opts: Omit<WaitOptions, 'process'>,
): Promise<ManagedProcess> {
  const proc = await ManagedProcess.start(spec);
  try {
    await waitUntil(probe, { ...opts, process: proc });
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return proc;
}
