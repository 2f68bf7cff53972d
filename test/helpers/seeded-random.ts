/**
 * A seeded pseudo-random generator for tests whose inputs are random (fuzzing): the seed is
 * printed, and the same seed replays the same inputs (set it through the test's env variable).
 * Not for keys: crypto.randomBytes is.
 */

/** splitmix32: small, fast, good enough to pick test inputs. */
export class SeededRandom {
  #state: number;

  constructor(readonly seed: number) {
    this.#state = seed >>> 0;
  }

  /** A seed from the environment variable `name` (decimal), or a fresh one. */
  static fromEnv(name: string): SeededRandom {
    const given = process.env[name];
    const seed = given !== undefined && /^\d+$/.test(given) ? Number(given) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
    return new SeededRandom(seed);
  }

  /** The next 32-bit value. */
  next(): number {
    this.#state = (this.#state + 0x9e3779b9) >>> 0;
    let z = this.#state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** An integer in [min, max) (or [0, min) with one argument), like crypto.randomInt. */
  int(min: number, max?: number): number {
    const [lo, hi] = max === undefined ? [0, min] : [min, max];
    return lo + (this.next() % (hi - lo));
  }

  bytes(length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    for (let i = 0; i < length; i++) out[i] = this.next() & 0xff;
    return out;
  }
}
