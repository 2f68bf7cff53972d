/**
 * Bounded polling, for state that sends no event (kernel counters, conntrack tables).
 * Anything a process reports is awaited through its Waiter instead.
 */
import { setTimeout as delay } from 'node:timers/promises';

/** How often kernel state is re-read while polling (ms). */
export const POLL_INTERVAL_MS = 10;

export async function pollUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(POLL_INTERVAL_MS);
  }
}
