/**
 * The plaintext of a HEARTBEAT packet (sealed under the sender's heartbeat key). Pure codec.
 *
 * ```
 *  0          8                   24           32             40
 *  | sentAt   | echoSalt (16)     | echoSentAt | echoDelayMs  |
 * ```
 * - sentAt: the sender's monotonic clock in ms (float64, big-endian), echoed back by the peer for RTT.
 * - echoSalt: the salt of the peer session whose heartbeat this one answers (zeros: none yet).
 *   A heartbeat that echoes our current salt, freshly, proves the peer has heard this session:
 *   the freshness proof for a new peer session and the "path works both ways" test.
 * - echoSentAt: that heartbeat's sentAt, in the receiver's own clock.
 * - echoDelayMs: how long the sender held it before answering, so RTT excludes the hold.
 */
import { freshHex, type HexNamer } from './hex-names.js';
import { SALT_BYTES } from './packet.js';

export const HEARTBEAT_BYTES = 8 + SALT_BYTES + 8 + 8; // 40
const ECHO_OFFSET = 8;
const ECHO_SENT_OFFSET = ECHO_OFFSET + SALT_BYTES;
const ECHO_DELAY_OFFSET = ECHO_SENT_OFFSET + 8;
const NO_ECHO = Buffer.alloc(SALT_BYTES);
const SALT_HEX_CHARS = SALT_BYTES * 2;

export interface Heartbeat {
  sentAt: number;
  /** Hex salt (32 characters), or null when the sender has heard no one yet. */
  echoSalt: string | null;
  echoSentAt: number;
  echoDelayMs: number;
}

export function encodeHeartbeat(hb: Heartbeat): Buffer {
  if (hb.echoSalt !== null && !isSaltHex(hb.echoSalt)) throw new TypeError(`echo salt must be ${SALT_BYTES} bytes in lowercase hex`);
  const out = writeFixed(hb.sentAt, hb.echoSentAt, hb.echoDelayMs);
  if (hb.echoSalt === null) NO_ECHO.copy(out, ECHO_OFFSET);
  else out.write(hb.echoSalt, ECHO_OFFSET, SALT_BYTES, 'hex');
  return out;
}

/** As encodeHeartbeat, with the echo salt as its bytes (a server's heartbeats: no hex to parse). */
export function encodeHeartbeatEcho(sentAt: number, echoSalt: Buffer | null, echoSentAt: number, echoDelayMs: number): Buffer {
  if (echoSalt !== null && echoSalt.length !== SALT_BYTES) throw new TypeError(`echo salt must be ${SALT_BYTES} bytes`);
  const out = writeFixed(sentAt, echoSentAt, echoDelayMs);
  (echoSalt ?? NO_ECHO).copy(out, ECHO_OFFSET);
  return out;
}

function writeFixed(sentAt: number, echoSentAt: number, echoDelayMs: number): Buffer {
  const out = Buffer.allocUnsafe(HEARTBEAT_BYTES);
  out.writeDoubleBE(sentAt, 0);
  out.writeDoubleBE(echoSentAt, ECHO_SENT_OFFSET);
  out.writeDoubleBE(echoDelayMs, ECHO_DELAY_OFFSET);
  return out;
}

/** `names` makes the echo salt's hex (a server passes its cache, hex-names.ts). */
export function decodeHeartbeat(plaintext: Buffer, names: HexNamer = freshHex): Heartbeat | 'malformed_heartbeat' {
  if (plaintext.length !== HEARTBEAT_BYTES) return 'malformed_heartbeat';
  const sentAt = plaintext.readDoubleBE(0);
  const echoSentAt = plaintext.readDoubleBE(ECHO_SENT_OFFSET);
  const echoDelayMs = plaintext.readDoubleBE(ECHO_DELAY_OFFSET);
  if (!Number.isFinite(sentAt) || !Number.isFinite(echoSentAt) || !Number.isFinite(echoDelayMs) || echoDelayMs < 0) {
    return 'malformed_heartbeat';
  }
  return {
    sentAt,
    echoSalt: isNoEcho(plaintext) ? null : names.name(plaintext, ECHO_OFFSET, ECHO_SENT_OFFSET),
    echoSentAt,
    echoDelayMs,
  };
}

/** All zeros where the echo salt goes: no echo (in JS, no subarray and no native call). */
function isNoEcho(plaintext: Buffer): boolean {
  for (let i = ECHO_OFFSET; i < ECHO_SENT_OFFSET; i++) if (plaintext[i] !== 0) return false;
  return true;
}

/** 32 characters of 0-9 and a-f (a loop, not a regular expression: this runs per heartbeat). */
function isSaltHex(text: string): boolean {
  if (text.length !== SALT_HEX_CHARS) return false;
  for (let i = 0; i < SALT_HEX_CHARS; i++) {
    const c = text.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}
