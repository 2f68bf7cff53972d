/**
 * The plaintext of a HEARTBEAT packet (sealed like every packet). Pure codec.
 *
 * ```
 *  0          8              16          24             32
 *  | sentAt   | echoSalt (8) | echoSentAt | echoDelayMs  |
 * ```
 * - sentAt: the sender's monotonic clock in ms (float64), echoed back by the peer for RTT.
 * - echoSalt: the salt of the peer session whose heartbeat this one answers (zeros: none yet).
 *   A heartbeat that echoes our current salt proves the peer has heard this session: that is
 *   both the freshness proof for a new peer session and the "path works both ways" test.
 * - echoSentAt: that heartbeat's sentAt, in the receiver's own clock.
 * - echoDelayMs: how long the sender held it before answering, so RTT excludes the hold.
 */
import { SALT_BYTES } from './packet.js';

export const HEARTBEAT_BYTES = 32;
const NO_ECHO = Buffer.alloc(SALT_BYTES);

export interface Heartbeat {
  sentAt: number;
  /** latin1 string of SALT_BYTES, or null when the sender has heard no one yet. */
  echoSalt: string | null;
  echoSentAt: number;
  echoDelayMs: number;
}

export function encodeHeartbeat(hb: Heartbeat): Buffer {
  if (hb.echoSalt !== null && Buffer.byteLength(hb.echoSalt, 'latin1') !== SALT_BYTES) {
    throw new TypeError(`echo salt must be ${SALT_BYTES} latin1 characters`);
  }
  const out = Buffer.allocUnsafe(HEARTBEAT_BYTES);
  out.writeDoubleBE(hb.sentAt, 0);
  if (hb.echoSalt === null) NO_ECHO.copy(out, 8);
  else out.write(hb.echoSalt, 8, SALT_BYTES, 'latin1');
  out.writeDoubleBE(hb.echoSentAt, 16);
  out.writeDoubleBE(hb.echoDelayMs, 24);
  return out;
}

export function decodeHeartbeat(plaintext: Buffer): Heartbeat | 'malformed_heartbeat' {
  if (plaintext.length !== HEARTBEAT_BYTES) return 'malformed_heartbeat';
  const sentAt = plaintext.readDoubleBE(0);
  const echoSentAt = plaintext.readDoubleBE(16);
  const echoDelayMs = plaintext.readDoubleBE(24);
  if (!Number.isFinite(sentAt) || !Number.isFinite(echoSentAt) || !Number.isFinite(echoDelayMs) || echoDelayMs < 0) {
    return 'malformed_heartbeat';
  }
  const salt = plaintext.subarray(8, 16);
  return {
    sentAt,
    echoSalt: salt.equals(NO_ECHO) ? null : salt.toString('latin1'),
    echoSentAt,
    echoDelayMs,
  };
}
