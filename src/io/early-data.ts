/**
 * DATA from a peer session that has been heard (an authenticated heartbeat) but not adopted yet
 * is opened at once and held, at most EARLY_DATA_MAX_DATAGRAMS, until the session adopts that
 * peer: the two sides establish a moment apart, and the first may send before the other is
 * ready. Only datagrams that authenticated are held, so nobody without the key can displace them.
 * Nothing leaves silently: an overflow counts `early_overflow`, a discard `unknown_peer`.
 */
import type { LinkStats } from './link-stats.js';

export const EARLY_DATA_MAX_DATAGRAMS = 32;

export class EarlyData {
  #held: Array<{ salt: string; payload: Buffer }> = [];

  constructor(private readonly stats: LinkStats) {}

  get size(): number {
    return this.#held.length;
  }

  /** Holds one opened payload of peer session `salt` (the oldest goes when full). */
  hold(salt: string, payload: Buffer): void {
    if (this.#held.length >= EARLY_DATA_MAX_DATAGRAMS) {
      this.#held.shift();
      this.stats.drops.early_overflow++;
    }
    this.#held.push({ salt, payload });
  }

  /** The session adopted `salt`: its payloads in order to `deliver`, the others dropped. */
  adopt(salt: string, deliver: (payload: Buffer) => void): void {
    const held = this.#held;
    this.#held = [];
    for (const { salt: from, payload } of held) {
      if (from === salt) deliver(payload);
      else this.stats.drops.unknown_peer++;
    }
  }

  /** Drops all held payloads (the salt changed, or the session ended). */
  discard(): void {
    this.stats.drops.unknown_peer += this.#held.length;
    this.#held = [];
  }
}
