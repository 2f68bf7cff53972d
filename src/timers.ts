/**
 * Timers longer than `setTimeout` allows. Node clamps any delay over 2^31 - 1 ms (about 24.8
 * days) to 1 ms, so a token valid for a month would expire at once: longer delays are waited
 * out in steps.
 */

/** setTimeout's longest delay (ms). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface LongTimer {
  clear(): void;
}

/**
 * Calls `fn` once after `delayMs` (0 or less: on the next turn), however long that is.
 * The timer does not keep the process alive (unref), like the session timers it serves.
 */
export function setLongTimeout(fn: () => void, delayMs: number, now: () => number = Date.now): LongTimer {
  const due = now() + Math.max(0, delayMs);
  let timer: NodeJS.Timeout;
  const arm = () => {
    const remaining = due - now();
    if (remaining <= 0) {
      timer = setTimeout(fn, 0);
    } else {
      timer = setTimeout(remaining > MAX_TIMER_MS ? arm : fn, Math.min(remaining, MAX_TIMER_MS));
    }
    timer.unref();
  };
  arm();
  return { clear: () => clearTimeout(timer) };
}
