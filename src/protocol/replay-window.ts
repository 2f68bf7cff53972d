/**
 * Sliding anti-replay window over packet counters (RFC 6479 style, as WireGuard does).
 * `check` before decrypting (cheap rejection), `accept` only after the tag verified, so a
 * forged packet can never move the window.
 */

const WORD_BITS = 32;
/** The words of a DATA window (the default). */
export const DATA_WINDOW_WORDS = 64;
/** How far behind the highest counter a DATA packet may arrive and still be accepted. */
export const REPLAY_WINDOW_PACKETS = (DATA_WINDOW_WORDS - 1) * WORD_BITS; // 2016
/**
 * The words of a HEARTBEAT window: heartbeats come a second apart, so one that arrives after a
 * later one was late by a second or more; a window of 32 counters behind the highest heartbeat
 * is room enough, in 8 bytes instead of 256 (a session keeps one per peer session it heard).
 */
export const HEARTBEAT_WINDOW_WORDS = 2;

export class ReplayWindow {
  #top = -1;
  readonly #words: number;
  readonly #bits: Uint32Array;
  /** How far behind the highest counter a packet may arrive and still be accepted. */
  readonly span: number;

  constructor(words = DATA_WINDOW_WORDS) {
    if (!Number.isInteger(words) || words < 2) throw new RangeError(`a replay window needs at least 2 words, not ${words}`);
    this.#words = words;
    this.#bits = new Uint32Array(words);
    this.span = (words - 1) * WORD_BITS;
  }

  /** True when `counter` is new and inside the window. Changes nothing. */
  check(counter: number): boolean {
    if (counter > this.#top) return true;
    if (this.#top - counter >= this.span) return false;
    return (this.#bits[this.#wordOf(counter)]! & bitOf(counter)) === 0;
  }

  /** Marks `counter` as seen. Returns false (and changes nothing) for a replay or a too-old counter. */
  accept(counter: number): boolean {
    if (!this.check(counter)) return false;
    this.mark(counter);
    return true;
  }

  /**
   * Marks `counter` as seen, once `check(counter)` said it is new (and nothing was marked since):
   * the data path checks before opening and marks after, one window lookup each.
   */
  mark(counter: number): void {
    if (counter > this.#top) {
      const oldWord = this.#top < 0 ? -1 : Math.floor(this.#top / WORD_BITS);
      const newWord = Math.floor(counter / WORD_BITS);
      // Clear the words the window slides over (at most all of them).
      const steps = Math.min(newWord - oldWord, this.#words);
      for (let i = 1; i <= steps; i++) this.#bits[(oldWord + i) % this.#words] = 0;
      this.#top = counter;
    }
    this.#bits[this.#wordOf(counter)]! |= bitOf(counter);
  }

  /** The highest counter accepted so far, -1 before the first. */
  get highest(): number {
    return this.#top;
  }

  #wordOf(counter: number): number {
    return Math.floor(counter / WORD_BITS) % this.#words;
  }
}

function bitOf(counter: number): number {
  return (1 << (counter % WORD_BITS)) >>> 0;
}
