/**
 * Key derivation and AES-256-GCM sealing for protocol v1. Pure functions over Buffers: no
 * sockets, no clocks.
 *
 * The pre-shared key (PSK) is never used as an AES key. Everything is derived with
 * HKDF-SHA256 (RFC 5869) under its own `info` label:
 * - channel id    = HKDF(psk, salt = "",                        info = "autoprox v1 channel id")[0..8]
 * - heartbeat key = HKDF(psk, salt = sender salt,               info = "autoprox v1 heartbeat key")[0..32]
 * - data key      = HKDF(psk, salt = sender salt ‖ receiver salt, info = "autoprox v1 data key")[0..32]
 *
 * HEARTBEATs are sealed under the sender's heartbeat key (a receiver must open them before it
 * knows anything of the sender); DATA and CLOSE under the data key of the (sender, receiver)
 * pair, so a packet sealed for one receiver session can never be opened by any other.
 * Salts are 16 random bytes per session: see README ("Wire protocol") for the nonce argument.
 */
import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { CHANNEL_ID_BYTES, COUNTER_OFFSET, HEADER_BYTES, PACKET_OVERHEAD_BYTES, SALT_BYTES, TAG_BYTES } from './packet.js';

export const PSK_BYTES = 32;
const AEAD = 'aes-256-gcm';
const NONCE_BYTES = 12;
const KEY_BYTES = 32;
export const CHANNEL_INFO = 'autoprox v1 channel id';
export const HEARTBEAT_KEY_INFO = 'autoprox v1 heartbeat key';
export const DATA_KEY_INFO = 'autoprox v1 data key';
const NO_SALT = Buffer.alloc(0);

function checkPsk(psk: Buffer): void {
  if (psk.length !== PSK_BYTES) throw new TypeError(`pre-shared key must be ${PSK_BYTES} bytes`);
}

function checkSalt(salt: Buffer, what: string): void {
  if (salt.length !== SALT_BYTES) throw new TypeError(`${what} must be ${SALT_BYTES} bytes`);
}

function hkdf(psk: Buffer, salt: Buffer, info: string, bytes: number): Buffer {
  return Buffer.from(hkdfSync('sha256', psk, salt, info, bytes));
}

export function deriveChannelId(psk: Buffer): Buffer {
  checkPsk(psk);
  return hkdf(psk, NO_SALT, CHANNEL_INFO, CHANNEL_ID_BYTES);
}

/** The key the session with `senderSalt` seals its heartbeats with; anyone with the PSK opens them. */
export function deriveHeartbeatKey(psk: Buffer, senderSalt: Buffer): KeyObject {
  checkPsk(psk);
  checkSalt(senderSalt, 'sender salt');
  return createSecretKey(hkdf(psk, senderSalt, HEARTBEAT_KEY_INFO, KEY_BYTES));
}

/** The key of DATA and CLOSE from the session `senderSalt` to the session `receiverSalt`. */
export function deriveDataKey(psk: Buffer, senderSalt: Buffer, receiverSalt: Buffer): KeyObject {
  checkPsk(psk);
  checkSalt(senderSalt, 'sender salt');
  checkSalt(receiverSalt, 'receiver salt');
  return createSecretKey(hkdf(psk, Buffer.concat([senderSalt, receiverSalt]), DATA_KEY_INFO, KEY_BYTES));
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
