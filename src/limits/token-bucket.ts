/**
 * A token bucket for the hot path: synchronous, allocation-free, time handed in (ms).
 * rate-limiter-flexible answers with a Promise per call, which a per-message check cannot
 * afford; it guards the per-request limits instead (see request-limits.ts).
 */
export class TokenBucket {
  #tokens: number;
  #last: number;

  /**
   * @param ratePerS tokens added per second
   * @param burst bucket size (defaults to one second's worth)
   */
  constructor(
    readonly ratePerS: number,
    readonly burst: number = ratePerS,
    now = 0,
  ) {
    this.#tokens = burst;
    this.#last = now;
  }

  /** Takes `n` tokens if there are that many; false (taking none) otherwise. */
  take(n: number, now: number): boolean {
    const elapsed = now - this.#last;
    if (elapsed > 0) {
      this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.ratePerS) / 1000);
      this.#last = now;
    }
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }
}

/** A limit that is either a bucket or off (rate 0 in the configuration). */
export function bucketOrNull(ratePerS: number, now: number, burst?: number): TokenBucket | null {
  return ratePerS > 0 ? new TokenBucket(ratePerS, burst ?? ratePerS, now) : null;
}
