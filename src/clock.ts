/**
 * The clock, handed in at the IO edge (as a logger is): every part that reads the time or waits
 * takes one, so each can be tested with a fake clock and no real waiting. The server passes the
 * real one. (The statecharts keep XState's own clock, which tests simulate in the same way.)
 */

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Monotonic milliseconds: for intervals, rates, round trips. */
  now(): number;
  /** Wall-clock milliseconds since the epoch: for token expiry and times people read. */
  wallMs(): number;
  /** Calls `fn` once after `ms` (however long: see afterLong); never keeps the process alive. */
  after(ms: number, fn: () => void): Timer;
  /** Calls `fn` every `ms`; never keeps the process alive. */
  every(ms: number, fn: () => void): Timer;
}

/** setTimeout's longest delay (ms): Node clamps any longer one to 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * setTimeout for any delay: longer ones than MAX_TIMER_MS (about 24.8 days: a token valid for a
 * month) are waited out in steps against the monotonic clock `now`, so none fires early.
 */
export function afterLong(ms: number, fn: () => void, now: () => number = () => performance.now()): Timer {
  const due = now() + Math.max(0, ms);
  let timer: NodeJS.Timeout;
  const arm = () => {
    const left = Math.max(0, due - now());
    timer = setTimeout(left > MAX_TIMER_MS ? arm : fn, Math.min(left, MAX_TIMER_MS));
    timer.unref();
  };
  arm();
  return { cancel: () => clearTimeout(timer) };
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallMs: () => Date.now(),
  after: (ms, fn) => afterLong(ms, fn),
  every(ms, fn) {
    const timer = setInterval(fn, ms);
    timer.unref();
    return { cancel: () => clearInterval(timer) };
  },
};
