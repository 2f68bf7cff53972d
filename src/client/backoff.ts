/** Reconnect timing: exponential backoff with jitter. Pure. */

export interface ReconnectOptions {
  /** Attempts after one close before giving up (default: no limit). */
  attempts?: number;
  /** The first attempt's delay, before jitter (ms, default 250). */
  minDelayMs?: number;
  /** The longest delay (ms, default 30 s). */
  maxDelayMs?: number;
}

export const RECONNECT_DEFAULTS: Required<ReconnectOptions> = { attempts: Number.POSITIVE_INFINITY, minDelayMs: 250, maxDelayMs: 30_000 };

/**
 * The delay before attempt `attempt` (1, 2, ...): min(max, min * 2^(attempt-1)), then a random
 * point in its upper half ("equal jitter": clients that lost one server together do not come
 * back together, and none retries at once).
 */
export function backoffDelayMs(attempt: number, options: Required<ReconnectOptions>, random: () => number): number {
  const ceiling = Math.min(options.maxDelayMs, options.minDelayMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
