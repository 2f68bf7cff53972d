/**
 * STUN's two checks over a message's bytes: FINGERPRINT (CRC-32 xor 0x5354554e) and
 * MESSAGE-INTEGRITY (HMAC-SHA1, here with a short-term credential: the password's bytes are the
 * key). Each is computed with the header's length field as it reads when that attribute is the
 * last one. Pure.
 * @see https://www.rfc-editor.org/rfc/rfc8489#section-14.5
 * @see https://www.rfc-editor.org/rfc/rfc8489#section-14.7
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** What FINGERPRINT's CRC-32 is XORed with ("STUN" in ASCII). */
export const FINGERPRINT_XOR = 0x5354554e;
export const FINGERPRINT_ATTRIBUTE_BYTES = 8;
export const INTEGRITY_BYTES = 20;
export const INTEGRITY_ATTRIBUTE_BYTES = 4 + INTEGRITY_BYTES;
const HEADER_BYTES = 20;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (ISO-HDLC, the one of zip and PNG), unsigned. */
export function crc32(bytes: Uint8Array, end = bytes.length): number {
  let c = 0xffffffff;
  for (let i = 0; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * The FINGERPRINT value of a message whose FINGERPRINT attribute starts at `at` (the bytes
 * before it; the length field must already count the attribute).
 */
export function fingerprintOf(message: Buffer, at: number): number {
  return (crc32(message, at) ^ FINGERPRINT_XOR) >>> 0;
}

/**
 * HMAC-SHA1 over the message up to `at` (where MESSAGE-INTEGRITY starts), with the length field
 * set to end just after MESSAGE-INTEGRITY.
 */
export function integrityOf(message: Buffer, at: number, key: Buffer): Buffer {
  const head = Buffer.from(message.subarray(0, HEADER_BYTES));
  head.writeUInt16BE(at - HEADER_BYTES + INTEGRITY_ATTRIBUTE_BYTES, 2);
  return createHmac('sha1', key).update(head).update(message.subarray(HEADER_BYTES, at)).digest();
}

/** Whether a MESSAGE-INTEGRITY value (starting at `at`, value at `at + 4`) is the key's. */
export function integrityMatches(message: Buffer, at: number, key: Buffer): boolean {
  const value = message.subarray(at + 4, at + 4 + INTEGRITY_BYTES);
  return value.length === INTEGRITY_BYTES && timingSafeEqual(value, integrityOf(message, at, key));
}
