/**
 * The relay protocol's proofs (README, "The relay protocol"). Pure but for the random cookie
 * secrets it draws; time is handed in (ms, monotonic).
 *
 * - Admission: every message but BIND_REQUEST carries HMAC-SHA256(admission key)[:16], the key
 *   derived from the relay secret that the relay's tenants share. It says "a tenant sent this",
 *   never which one.
 * - Return routability: a cookie, HMAC-SHA256(cookie secret, channel || source)[:16], under a
 *   secret only the relay holds and replaces every COOKIE_ROTATE_MS (the previous one is still
 *   accepted): a BIND or APPROVE is taken only from the source its cookie was sent to, and a
 *   recording is worthless after at most two rotations. The relay keeps no state for it.
 * - PSK: a bind proof, HMAC-SHA256(relay bind key, label || channel || source || end nonce)[:16],
 *   the key derived from the pre-shared key. The relay cannot check it; the other end of the
 *   channel does, and approves only ends whose proof is right for the source the relay saw. A
 *   proof recorded and sent from another address is wrong for that address.
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { COOKIE_BYTES, endpointBytes, macCovered, macOf, PROOF_BYTES, RELAY_MAC_BYTES, type Endpoint } from './relay-packet.js';

export const ADMISSION_KEY_INFO = 'autoprox v1 relay admission';
const BIND_PROOF_LABEL = Buffer.from('autoprox v1 relay bind proof');
const KEY_BYTES = 32;
/** The cookie secret is replaced this often (ms); a cookie lives one to two of these. */
export const COOKIE_ROTATE_MS = 60_000;
const COOKIE_SECRET_BYTES = 32;

/** The admission key of a relay secret (HKDF-SHA256, empty salt). */
export function admissionKey(relaySecret: string): Buffer {
  if (relaySecret.length === 0) throw new TypeError('the relay secret must not be empty');
  return Buffer.from(hkdfSync('sha256', Buffer.from(relaySecret, 'utf8'), Buffer.alloc(0), ADMISSION_KEY_INFO, KEY_BYTES));
}

/** Writes the MAC into the message's last RELAY_MAC_BYTES; returns the message. */
export function sign(key: Buffer, message: Buffer): Buffer {
  const mac = createHmac('sha256', key).update(macCovered(message)).digest();
  mac.copy(message, message.length - RELAY_MAC_BYTES, 0, RELAY_MAC_BYTES);
  return message;
}

export function verifyMac(key: Buffer, message: Buffer): boolean {
  if (message.length <= RELAY_MAC_BYTES) return false;
  const mac = createHmac('sha256', key).update(macCovered(message)).digest().subarray(0, RELAY_MAC_BYTES);
  return timingSafeEqual(mac, macOf(message));
}

export function bindProof(bindKey: Buffer, channel: Buffer, source: Endpoint, nonce: Buffer): Buffer {
  return createHmac('sha256', bindKey).update(BIND_PROOF_LABEL).update(channel).update(endpointBytes(source)).update(nonce).digest().subarray(0, PROOF_BYTES);
}

export function checkBindProof(bindKey: Buffer, channel: Buffer, source: Endpoint, nonce: Buffer, proof: Buffer): boolean {
  return proof.length === PROOF_BYTES && timingSafeEqual(bindProof(bindKey, channel, source, nonce), proof);
}

/** The relay's stateless cookies: two secrets (current, previous), replaced as time goes. */
export class CookieJar {
  #current: Buffer;
  #previous: Buffer;
  #rotatedAt: number;

  constructor(
    now: number,
    private readonly random: (bytes: number) => Buffer = randomBytes,
    private readonly rotateMs = COOKIE_ROTATE_MS,
  ) {
    this.#current = random(COOKIE_SECRET_BYTES);
    this.#previous = random(COOKIE_SECRET_BYTES);
    this.#rotatedAt = now;
  }

  #rotate(now: number): void {
    const elapsed = now - this.#rotatedAt;
    if (elapsed < this.rotateMs) return;
    // Two or more periods without a cookie asked: both secrets are stale.
    this.#previous = elapsed >= 2 * this.rotateMs ? this.random(COOKIE_SECRET_BYTES) : this.#current;
    this.#current = this.random(COOKIE_SECRET_BYTES);
    this.#rotatedAt = now;
  }

  cookie(channel: Buffer, source: Endpoint, now: number): Buffer {
    this.#rotate(now);
    return cookieOf(this.#current, channel, source);
  }

  check(cookie: Buffer, channel: Buffer, source: Endpoint, now: number): boolean {
    this.#rotate(now);
    if (cookie.length !== COOKIE_BYTES) return false;
    return timingSafeEqual(cookieOf(this.#current, channel, source), cookie) || timingSafeEqual(cookieOf(this.#previous, channel, source), cookie);
  }
}

function cookieOf(secret: Buffer, channel: Buffer, source: Endpoint): Buffer {
  return createHmac('sha256', secret).update(channel).update(endpointBytes(source)).digest().subarray(0, COOKIE_BYTES);
}
