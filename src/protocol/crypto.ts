/**
 * Key derivation and AES-256-GCM sealing. Pure functions over Buffers: no sockets, no clocks.
 *
 * The pre-shared key (PSK) is never used as an AES key. Everything is derived with
 * HKDF-SHA256 (RFC 5869) under its own `info` label:
 * - channel id  = HKDF(psk, salt = "", info = "autoprox v0 channel id")[0..8]
 * - packet key  = HKDF(psk, salt = sender salt, info = "autoprox v0 packet key")[0..32]
 *
 * Each session picks a random 8-byte salt, so each session (and each restart) sends under a
 * brand-new key and its counter can start at 0 without repeating a (key, nonce) pair.
 */
import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import {
  CHANNEL_ID_BYTES,
  COUNTER_OFFSET,
  HEADER_BYTES,
  PACKET_OVERHEAD_BYTES,
  TAG_BYTES,
} from './packet.js';

export const PSK_BYTES = 32;
const AEAD = 'aes-256-gcm';
const NONCE_BYTES = 12;
const KEY_BYTES = 32;
const CHANNEL_INFO = 'autoprox v0 channel id';
const PACKET_KEY_INFO = 'autoprox v0 packet key';

function checkPsk(psk: Buffer): void {
  if (psk.length !== PSK_BYTES) throw new TypeError(`pre-shared key must be ${PSK_BYTES} bytes`);
}

export function deriveChannelId(psk: Buffer): Buffer {
  checkPsk(psk);
  return Buffer.from(hkdfSync('sha256', psk, Buffer.alloc(0), CHANNEL_INFO, CHANNEL_ID_BYTES));
}

/** The key that the owner of `salt` seals with, and that its peer opens with. */
export function derivePacketKey(psk: Buffer, salt: Buffer): KeyObject {
  checkPsk(psk);
  return createSecretKey(Buffer.from(hkdfSync('sha256', psk, salt, PACKET_KEY_INFO, KEY_BYTES)));
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

/**
 * Seals `plaintext` under `key` with `header` as additional data.
 * Returns the datagram as the pieces [header, ciphertext, tag] so the socket can send them
 * with one `sendmsg` (no concatenation copy).
 */
export function seal(key: KeyObject, header: Buffer, plaintext: Buffer): [Buffer, Buffer, Buffer] {
  const cipher = createCipheriv(AEAD, key, nonceOf(header));
  cipher.setAAD(header);
  const body = plaintext.length === 0 ? Buffer.alloc(0) : cipher.update(plaintext);
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
  const body = tagStart === HEADER_BYTES ? Buffer.alloc(0) : decipher.update(datagram.subarray(HEADER_BYTES, tagStart));
  try {
    decipher.final();
  } catch {
    // node:crypto reports a bad tag only by throwing; that is the one expected failure here.
    return null;
  }
  return body;
}
