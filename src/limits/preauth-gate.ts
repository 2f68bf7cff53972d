/**
 * Bounds the work spent on datagrams that are not yet known to be genuine: every datagram that
 * may cost a key derivation (HKDF) or an AES-GCM open outside an established path (heartbeats
 * of peer sessions not adopted, DATA and CLOSE of heard but not adopted ones) passes here first.
 * Two budgets, both must admit it:
 * - per source group (an IPv4 address, or an IPv6 /64): a flood from one place spends its own
 *   budget, not everyone's;
 * - server-wide: however many addresses a flood comes from (a million spoofed sources each get a
 *   fresh per-source burst), the server never spends more than this on unauthenticated work.
 * Datagrams of an established path never pass through here. Time is handed in (ms, monotonic).
 */
import type { Family } from '../../machines/endpoint.js';
import { sourceGroup } from '../net/address.js';
import { TokenBucket } from './token-bucket.js';

/** Source groups tracked at most; the least recent is forgotten first. */
export const PREAUTH_MAX_SOURCES = 16_384;

export type PreauthVerdict = 'ok' | 'preauth_limited' | 'preauth_budget';

export interface PreauthLimits {
  /** Datagrams per second per source group (burst: twice that); 0 = no limit. */
  perSourcePerS: number;
  /** Datagrams per second for the whole server (burst: a quarter second's worth); 0 = no limit. */
  totalPerS: number;
}

/** The server-wide budget's burst, in seconds of its rate: a flood's first moments cost little more than the rest. */
export const PREAUTH_TOTAL_BURST_S = 0.25;

export class PreauthGate {
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #total: TokenBucket | null;
  readonly #perSource: number;
  /** Refusals by budget. */
  readonly refusedBy = { preauth_limited: 0, preauth_budget: 0 };

  constructor(limits: PreauthLimits, now = 0) {
    this.#perSource = limits.perSourcePerS;
    this.#total = limits.totalPerS > 0 ? new TokenBucket(limits.totalPerS, Math.max(1, limits.totalPerS * PREAUTH_TOTAL_BURST_S), now) : null;
  }

  /** May a datagram from `address` be worked on now? */
  admit(family: Family, address: string, now: number): PreauthVerdict {
    if (this.#perSource > 0) {
      const group = sourceGroup(family, address);
      let bucket = this.#buckets.get(group);
      if (bucket) {
        // Least recently used last out: refresh its place.
        this.#buckets.delete(group);
      } else {
        if (this.#buckets.size >= PREAUTH_MAX_SOURCES) this.#buckets.delete(this.#buckets.keys().next().value as string);
        bucket = new TokenBucket(this.#perSource, this.#perSource * 2, now);
      }
      this.#buckets.set(group, bucket);
      if (!bucket.take(1, now)) {
        this.refusedBy.preauth_limited++;
        return 'preauth_limited';
      }
    }
    if (this.#total && !this.#total.take(1, now)) {
      this.refusedBy.preauth_budget++;
      return 'preauth_budget';
    }
    return 'ok';
  }

  /** Refusals in all. */
  get refused(): number {
    return this.refusedBy.preauth_limited + this.refusedBy.preauth_budget;
  }

  get tracked(): number {
    return this.#buckets.size;
  }
}
