/**
 * Key derivation and AES-256-GCM sealing for protocol v1. Pure functions over Buffers: no
 * sockets, no clocks.
 *
 * The pre-shared key (PSK) is never used as an AES key. Everything is derived with
 * HKDF-SHA256 (RFC 5869), salt empty, each under its own `info` label followed by the salts
 * it binds:
 * - channel id    = HKDF(psk, info = "autoprox v1 channel id")[0..8]
 * - heartbeat key = HKDF(psk, info = "autoprox v1 heartbeat key" ‖ sender salt)[0..32]
 * - data key      = HKDF(psk, info = "autoprox v1 data key" ‖ sender salt ‖ receiver salt)[0..32]
 *
 * HEARTBEATs are sealed under the sender's heartbeat key (a receiver must open them before it
 * knows anything of the sender); DATA and CLOSE under the data key of the (sender, receiver)
 * pair, so a packet sealed for one receiver session can never be opened by any other.
 * Salts are 16 random bytes per session: see README ("Wire protocol") for the nonce argument.
 *
 * With the salts in `info`, HKDF's extract step depends on the PSK alone: a KeySchedule does it
 * once per PSK, and each key costs one HMAC (the expand step), not two plus set-up: a third of
 * hkdfSync's cost here, which matters when a flood of made-up salts must be refused.
 */
import { createCipheriv, createDecipheriv, createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { CHANNEL_ID_BYTES, COUNTER_OFFSET, HEADER_BYTES, PACKET_OVERHEAD_BYTES, SALT_BYTES, TAG_BYTES } from './packet.js';

export const PSK_BYTES = 32;
const AEAD = 'aes-256-gcm';
const NONCE_BYTES = 12;
const KEY_BYTES = 32;
const HASH_BYTES = 32;
export const CHANNEL_INFO = 'autoprox v1 channel id';
export const HEARTBEAT_KEY_INFO = 'autoprox v1 heartbeat key';
export const DATA_KEY_INFO = 'autoprox v1 data key';
export const RELAY_BIND_KEY_INFO = 'autoprox v1 relay bind key';
/** RFC 5869 section 2.2: no salt means HashLen zero bytes. */
const NO_SALT = Buffer.alloc(HASH_BYTES);
/** The counter byte of HKDF-Expand's first (and, for 32 bytes or less, only) block. */
const FIRST_BLOCK = Buffer.from([1]);
const CHANNEL_INFO_BYTES = Buffer.from(CHANNEL_INFO);
const HEARTBEAT_INFO_BYTES = Buffer.from(HEARTBEAT_KEY_INFO);
const DATA_INFO_BYTES = Buffer.from(DATA_KEY_INFO);
const RELAY_BIND_INFO_BYTES = Buffer.from(RELAY_BIND_KEY_INFO);

function checkPsk(psk: Buffer): void {
  if (psk.length !== PSK_BYTES) throw new TypeError(`pre-shared key must be ${PSK_BYTES} bytes`);
}

function checkSalt(salt: Buffer, what: string): void {
  if (salt.length !== SALT_BYTES) throw new TypeError(`${what} must be ${SALT_BYTES} bytes`);
}

/** The keys of one pre-shared key: HKDF's extract step done once, each key one expand step. */
export class KeySchedule {
  readonly #prk: Buffer;

  constructor(psk: Buffer) {
    checkPsk(psk);
    this.#prk = createHmac('sha256', NO_SALT).update(psk).digest();
  }

  /** HKDF-Expand(prk, info parts, length) for length <= 32: T(1) = HMAC(prk, info || 0x01). */
  #expand(length: number, ...info: Buffer[]): Buffer {
    const hmac = createHmac('sha256', this.#prk);
    for (const part of info) hmac.update(part);
    const block = hmac.update(FIRST_BLOCK).digest();
    return length === HASH_BYTES ? block : block.subarray(0, length);
  }

  channelId(): Buffer {
    return Buffer.from(this.#expand(CHANNEL_ID_BYTES, CHANNEL_INFO_BYTES));
  }

  /** The key the session with `senderSalt` seals its heartbeats with; anyone with the PSK opens them. */
  heartbeatKey(senderSalt: Buffer): KeyObject {
    checkSalt(senderSalt, 'sender salt');
    return createSecretKey(this.#expand(KEY_BYTES, HEARTBEAT_INFO_BYTES, senderSalt));
  }

  /**
   * The key a server proves with, to the other end of its channel at a relay, that it holds the
   * PSK (relay-auth.ts): the relay never sees it, and cannot check it; the other end does.
   */
  relayBindKey(): Buffer {
    return Buffer.from(this.#expand(KEY_BYTES, RELAY_BIND_INFO_BYTES));
  }

  /** The key of DATA and CLOSE from the session `senderSalt` to the session `receiverSalt`. */
  dataKey(senderSalt: Buffer, receiverSalt: Buffer): KeyObject {
    checkSalt(senderSalt, 'sender salt');
    checkSalt(receiverSalt, 'receiver salt');
    return createSecretKey(this.#expand(KEY_BYTES, DATA_INFO_BYTES, senderSalt, receiverSalt));
  }
}

export function deriveChannelId(psk: Buffer): Buffer {
  return new KeySchedule(psk).channelId();
}

export function deriveHeartbeatKey(psk: Buffer, senderSalt: Buffer): KeyObject {
  return new KeySchedule(psk).heartbeatKey(senderSalt);
}

export function deriveDataKey(psk: Buffer, senderSalt: Buffer, receiverSalt: Buffer): KeyObject {
  return new KeySchedule(psk).dataKey(senderSalt, receiverSalt);
}

/**
 * The nonce is the header's 8-byte counter, left-padded with 4 zero bytes. Written into one
 * scratch buffer, not a new one per packet: createCipheriv/createDecipheriv copy the IV, and
 * nothing else keeps it. Its first 4 bytes stay zero.
 */
const nonceScratch = Buffer.alloc(NONCE_BYTES);
function nonceOf(header: Buffer): Buffer {
  header.copy(nonceScratch, NONCE_BYTES - 8, COUNTER_OFFSET, HEADER_BYTES);
  return nonceScratch;
}
const EMPTY = Buffer.alloc(0);

/**
 * Seals `plaintext` under `key` with `header` as additional data.
 * Returns the datagram as the pieces [header, ciphertext, tag] so the socket can send them
 * with one `sendmsg` (no concatenation copy).
 */
export function seal(key: KeyObject, header: Buffer, plaintext: Buffer): [Buffer, Buffer, Buffer] {
  const cipher = createCipheriv(AEAD, key, nonceOf(header));
  cipher.setAAD(header);
  const body = plaintext.length === 0 ? EMPTY : cipher.update(plaintext);
  cipher.final();
  return [header, body, cipher.getAuthTag()];
}

/** Opens a whole datagram. Returns the plaintext, or null when authentication fails. */
export function open(key: KeyObject, datagram: Buffer): Buffer | null {
  if (datagram.length < PACKET_OVERHEAD_BYTES) return null;
  const header = datagram.subarray(0, HEADER_BYTES);
  const tagStart = datagram.length - TAG_BYTES;
  const decipher = createDecipheriv(AEAD, key, nonceOf(header));
  decipher.setAAD(header);
  decipher.setAuthTag(datagram.subarray(tagStart));
  const body = tagStart === HEADER_BYTES ? EMPTY : decipher.update(datagram.subarray(HEADER_BYTES, tagStart));
  try {
    decipher.final();
  } catch {
    // node:crypto reports a bad tag only by throwing; that is the one expected failure here.
    return null;
  }
  return body;
}
