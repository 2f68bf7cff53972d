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
import { SALT_BYTES } from './packet.js';

export const HEARTBEAT_BYTES = 8 + SALT_BYTES + 8 + 8; // 40
const ECHO_OFFSET = 8;
const ECHO_SENT_OFFSET = ECHO_OFFSET + SALT_BYTES;
const ECHO_DELAY_OFFSET = ECHO_SENT_OFFSET + 8;
const NO_ECHO = Buffer.alloc(SALT_BYTES);
const SALT_HEX = /^[0-9a-f]{32}$/;

export interface Heartbeat {
  sentAt: number;
  /** Hex salt (32 characters), or null when the sender has heard no one yet. */
  echoSalt: string | null;
  echoSentAt: number;
  echoDelayMs: number;
}

export function encodeHeartbeat(hb: Heartbeat): Buffer {
  if (hb.echoSalt !== null && !SALT_HEX.test(hb.echoSalt)) throw new TypeError(`echo salt must be ${SALT_BYTES} bytes in lowercase hex`);
  const out = Buffer.allocUnsafe(HEARTBEAT_BYTES);
  out.writeDoubleBE(hb.sentAt, 0);
  if (hb.echoSalt === null) NO_ECHO.copy(out, ECHO_OFFSET);
  else out.write(hb.echoSalt, ECHO_OFFSET, SALT_BYTES, 'hex');
  out.writeDoubleBE(hb.echoSentAt, ECHO_SENT_OFFSET);
  out.writeDoubleBE(hb.echoDelayMs, ECHO_DELAY_OFFSET);
  return out;
}

export function decodeHeartbeat(plaintext: Buffer): Heartbeat | 'malformed_heartbeat' {
  if (plaintext.length !== HEARTBEAT_BYTES) return 'malformed_heartbeat';
  const sentAt = plaintext.readDoubleBE(0);
  const echoSentAt = plaintext.readDoubleBE(ECHO_SENT_OFFSET);
  const echoDelayMs = plaintext.readDoubleBE(ECHO_DELAY_OFFSET);
  if (!Number.isFinite(sentAt) || !Number.isFinite(echoSentAt) || !Number.isFinite(echoDelayMs) || echoDelayMs < 0) {
    return 'malformed_heartbeat';
  }
  const salt = plaintext.subarray(ECHO_OFFSET, ECHO_SENT_OFFSET);
  return {
    sentAt,
    echoSalt: salt.equals(NO_ECHO) ? null : salt.toString('hex'),
    echoSentAt,
    echoDelayMs,
  };
}
