/**
 * Bounds, per peer source address, the datagrams that need authenticating before anything is
 * known about them (heartbeats of peer sessions not yet adopted, CLOSE, DATA of unknown peers):
 * a flood from one address spends its own budget, not everyone's. Datagrams of an established
 * path never pass through here.
 */
import { TokenBucket } from './token-bucket.js';

/** Source addresses tracked at most; the oldest is forgotten first. */
export const PREAUTH_MAX_SOURCES = 16_384;

export class PreauthGate {
  readonly #buckets = new Map<string, TokenBucket>();
  refused = 0;

  /** @param ratePerS datagrams per second per source address; 0 = no limit */
  constructor(private readonly ratePerS: number) {}

  /** True when a datagram from `address` may be looked at now (ms, monotonic). */
  admit(address: string, now: number): boolean {
    if (this.ratePerS <= 0) return true;
    let bucket = this.#buckets.get(address);
    if (!bucket) {
      if (this.#buckets.size >= PREAUTH_MAX_SOURCES) {
        const oldest = this.#buckets.keys().next().value as string;
        this.#buckets.delete(oldest);
      }
      bucket = new TokenBucket(this.ratePerS, this.ratePerS * 2, now);
      this.#buckets.set(address, bucket);
    }
    if (bucket.take(1, now)) return true;
    this.refused++;
    return false;
  }

  get tracked(): number {
    return this.#buckets.size;
  }
}
