/** Longest timeout Node accepts (~24.8 days); setTimeout fires at once for anything longer. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Calls `fn` once `now()` has reached `epochMs`. Policies may run longer than
 * setTimeout's ceiling, so a far instant is waited for in steps; a timer that
 * fires early is re-armed too. Always asynchronous, even for an instant that
 * has already passed, so a caller may arm it from within `fn`'s own work.
 */
export function runAt(epochMs: number, fn: () => void, now: () => number = Date.now): { cancel(): void } {
  let timer: NodeJS.Timeout;
  const arm = (): void => {
    timer = setTimeout(() => (now() >= epochMs ? fn() : arm()), Math.min(Math.max(0, epochMs - now()), MAX_TIMER_MS));
  };
  arm();
  return { cancel: () => clearTimeout(timer) };
}
