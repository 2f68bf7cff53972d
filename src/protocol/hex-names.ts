/**
 * One string per salt (or channel id) seen recently: the hex a datagram's bytes name, as the
 * same string object every time, for the codecs to hand out instead of a new one per datagram.
 *
 * Why: salts and channel ids are the Map keys that route every datagram (channel.ts). A string
 * made fresh from bytes has no hash yet and is not the key's object, so each Map lookup with it
 * hashes it and compares it character by character, a runtime call each: measured, about a
 * tenth of an established path's heartbeat work went to those lookups and to making the
 * strings. A name handed out here has its hash cached and is identical to the key it was
 * stored under, so a lookup or `===` with it is a pointer comparison.
 *
 * A cache, never a source of truth: a name is equal by value to what `toString('hex')` makes,
 * whatever is or is not cached. Bounded: at most `capacity` names; past it the oldest goes
 * first, so a flood of new salts costs each of them what no cache would, and nothing else.
 * Looked up by the first 6 bytes (an exact integer key, no string made); the rest is checked
 * byte for byte, so two byte strings that share a prefix (by chance, or forged) each get their
 * own correct name, the second one uncached.
 */

/** Names kept by default: the salts of 10,000 sessions and their peers, with room. */
export const HEX_NAMES_CAPACITY = 65_536;

interface Entry {
  bytes: Buffer;
  hex: string;
}

/** What the codecs ask of a name cache (packet.ts, heartbeat.ts). */
export interface HexNamer {
  /** The lowercase hex of `source[start, end)`. */
  name(source: Buffer, start: number, end: number): string;
}

export class HexNames implements HexNamer {
  readonly #entries = new Map<number, Entry>();
  readonly #capacity: number;

  constructor(capacity = HEX_NAMES_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a whole number above 0, not ${capacity}`);
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** For byte strings of 6 bytes or more (a salt, a channel id); shorter ones are not cached. */
  name(source: Buffer, start: number, end: number): string {
    const length = end - start;
    if (length < 6) return source.toString('hex', start, end);
    const key = source.readUIntBE(start, 6);
    const entry = this.#entries.get(key);
    if (entry !== undefined && entry.bytes.length === length && sameBytes(entry.bytes, source, start)) return entry.hex;
    const hex = source.toString('hex', start, end);
    if (entry !== undefined) return hex; // another byte string holds this prefix: uncached
    if (this.#entries.size >= this.#capacity) this.#entries.delete(this.#entries.keys().next().value as number);
    this.#entries.set(key, { bytes: Buffer.from(source.subarray(start, end)), hex });
    return hex;
  }
}

/** Byte-for-byte equality of `bytes` and `source` from `start` (in JS: no native call per check). */
function sameBytes(bytes: Buffer, source: Buffer, start: number): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== source[start + i]) return false;
  return true;
}

/** No cache: a new string each time (the codecs' default). */
export const freshHex: HexNamer = {
  name: (source, start, end) => source.toString('hex', start, end),
};
