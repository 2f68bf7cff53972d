/**
 * STUN (RFC 8489, RFC 5389) as far as autoprox needs it: Binding requests out, Binding success
 * responses in (the server's public endpoint), and a Binding success response for a responder.
 * Pure: bytes in, value or coded error out; the transaction id is handed in.
 *
 * ```
 *  0                   1                   2                   3
 *  +-+-+-------------------------------+-------------------------------+
 *  |0 0|     message type (14 bits)    |  message length (bytes)       |
 *  +-+-+-------------------------------+-------------------------------+
 *  |                     magic cookie 0x2112A442                       |
 *  +-------------------------------------------------------------------+
 *  |                  transaction id (96 bits)                         |
 *  +-------------------------------------------------------------------+
 *  | attributes: type (16) length (16) value, padded to 4 bytes ...    |
 * ```
 * STUN and autoprox datagrams share a port: an autoprox datagram starts with 0xa0-0xaf, a STUN
 * message with two zero bits and carries the cookie at bytes 4-7 (isStunMessage).
 * @see https://www.rfc-editor.org/rfc/rfc8489#section-5
 */
import { decodeMappedAddress, decodeXorMappedAddress, encodeXorMappedAddress, STUN_MAGIC_COOKIE, type StunEndpoint } from './stun-address.js';
import { FINGERPRINT_ATTRIBUTE_BYTES, fingerprintOf, integrityMatches } from './stun-checks.js';

export { STUN_MAGIC_COOKIE, type StunEndpoint } from './stun-address.js';
export { crc32 } from './stun-checks.js';

export const STUN_HEADER_BYTES = 20;
export const TRANSACTION_ID_BYTES = 12;
/** A message with more attributes than this is refused (a Binding response has three or four). */
export const MAX_STUN_ATTRIBUTES = 32;
export const METHOD_BINDING = 0x001;

export const StunAttr = {
  MAPPED_ADDRESS: 0x0001,
  USERNAME: 0x0006,
  MESSAGE_INTEGRITY: 0x0008,
  ERROR_CODE: 0x0009,
  XOR_MAPPED_ADDRESS: 0x0020,
  SOFTWARE: 0x8022,
  FINGERPRINT: 0x8028,
} as const;

export type StunClass = 'request' | 'indication' | 'success' | 'error';
const CLASSES: readonly StunClass[] = ['request', 'indication', 'success', 'error'];

export interface StunAttribute {
  type: number;
  /** Where the attribute (its type field) starts in the message. */
  at: number;
  value: Buffer;
}

export interface StunMessage {
  method: number;
  class: StunClass;
  transactionId: Buffer;
  attributes: StunAttribute[];
  /** The whole message (a view of the datagram, not a copy). */
  bytes: Buffer;
}

/**
 * Why bytes are not a STUN message: too short for a header, not STUN (top bits or cookie), a
 * length field that is not a multiple of 4 or not the datagram's, an attribute running past
 * the message or after FINGERPRINT, or too many attributes.
 */
export type StunDecodeError = 'too_short' | 'not_stun' | 'bad_length' | 'bad_attribute' | 'too_many_attributes';

/** The cheap test the UDP plane uses to tell STUN from autoprox datagrams (no allocation). */
export function isStunMessage(bytes: Uint8Array): boolean {
  return bytes.length >= STUN_HEADER_BYTES && (bytes[0]! & 0xc0) === 0 && bytes[4] === 0x21 && bytes[5] === 0x12 && bytes[6] === 0xa4 && bytes[7] === 0x42;
}

/** Method and class are interleaved in the 14-bit type: M11-M7 C1 M6-M4 C0 M3-M0. */
export function messageType(method: number, cls: StunClass): number {
  const c = CLASSES.indexOf(cls);
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | ((c & 1) << 4) | ((c & 2) << 7);
}

export function decodeStun(bytes: Buffer): StunMessage | StunDecodeError {
  if (bytes.length < STUN_HEADER_BYTES) return 'too_short';
  if (!isStunMessage(bytes)) return 'not_stun';
  const length = bytes.readUInt16BE(2);
  if (length % 4 !== 0 || length !== bytes.length - STUN_HEADER_BYTES) return 'bad_length';
  const type = bytes.readUInt16BE(0);
  const method = (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
  const cls = CLASSES[((type >> 4) & 1) | ((type >> 7) & 2)]!;
  const attributes: StunAttribute[] = [];
  for (let at = STUN_HEADER_BYTES; at < bytes.length; ) {
    if (attributes.length >= MAX_STUN_ATTRIBUTES) return 'too_many_attributes';
    if (attributes.at(-1)?.type === StunAttr.FINGERPRINT) return 'bad_attribute';
    if (at + 4 > bytes.length) return 'bad_attribute';
    const valueLength = bytes.readUInt16BE(at + 2);
    const end = at + 4 + valueLength;
    if (end > bytes.length) return 'bad_attribute';
    attributes.push({ type: bytes.readUInt16BE(at), at, value: bytes.subarray(at + 4, end) });
    at = end + ((4 - (valueLength % 4)) % 4);
  }
  return { method, class: cls, transactionId: bytes.subarray(8, STUN_HEADER_BYTES), attributes, bytes };
}

export function attributeOf(message: StunMessage, type: number): StunAttribute | undefined {
  return message.attributes.find((a) => a.type === type);
}

/** The mapped endpoint of a response: XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS; null if neither decodes. */
export function mappedEndpointOf(message: StunMessage): StunEndpoint | null {
  const xor = attributeOf(message, StunAttr.XOR_MAPPED_ADDRESS);
  if (xor) return decodeXorMappedAddress(xor.value, message.transactionId);
  const plain = attributeOf(message, StunAttr.MAPPED_ADDRESS);
  return plain ? decodeMappedAddress(plain.value) : null;
}

/** FINGERPRINT checks out: true or false, or null when the message has none. */
export function fingerprintMatches(message: StunMessage): boolean | null {
  const attribute = attributeOf(message, StunAttr.FINGERPRINT);
  if (!attribute) return null;
  return attribute.value.length === 4 && attribute.value.readUInt32BE(0) === fingerprintOf(message.bytes, attribute.at);
}

/** MESSAGE-INTEGRITY checks out under `key` (short-term: the password's UTF-8 bytes); null when absent. */
export function integrityMatchesKey(message: StunMessage, key: Buffer): boolean | null {
  const attribute = attributeOf(message, StunAttr.MESSAGE_INTEGRITY);
  if (!attribute) return null;
  return integrityMatches(message.bytes, attribute.at, key);
}

/** A message of `attributes` (each type and value), with a FINGERPRINT last when asked. */
export function encodeStun(method: number, cls: StunClass, transactionId: Buffer, attributes: Array<[number, Buffer]>, fingerprint: boolean): Buffer {
  if (transactionId.length !== TRANSACTION_ID_BYTES) throw new TypeError(`a STUN transaction id is ${TRANSACTION_ID_BYTES} bytes, got ${transactionId.length}`);
  const padded = (n: number) => n + ((4 - (n % 4)) % 4);
  const body = attributes.reduce((sum, [, v]) => sum + 4 + padded(v.length), 0) + (fingerprint ? FINGERPRINT_ATTRIBUTE_BYTES : 0);
  const out = Buffer.alloc(STUN_HEADER_BYTES + body);
  out.writeUInt16BE(messageType(method, cls), 0);
  out.writeUInt16BE(body, 2);
  out.writeUInt32BE(STUN_MAGIC_COOKIE, 4);
  transactionId.copy(out, 8);
  let at = STUN_HEADER_BYTES;
  for (const [type, value] of attributes) {
    out.writeUInt16BE(type, at);
    out.writeUInt16BE(value.length, at + 2);
    value.copy(out, at + 4);
    at += 4 + padded(value.length);
  }
  if (fingerprint) {
    out.writeUInt16BE(StunAttr.FINGERPRINT, at);
    out.writeUInt16BE(4, at + 2);
    out.writeUInt32BE(fingerprintOf(out, at), at + 4);
  }
  return out;
}

/** A Binding request (28 bytes: the header and a FINGERPRINT, which keeps it apart from other protocols on the port). */
export function encodeBindingRequest(transactionId: Buffer): Buffer {
  return encodeStun(METHOD_BINDING, 'request', transactionId, [], true);
}

/**
 * A responder's answer to a datagram: the Binding success response telling `source` its
 * endpoint (XOR-MAPPED-ADDRESS, and FINGERPRINT when the request had one; 32 to 52 bytes), or
 * null when the datagram is not a valid Binding request (then nothing is sent).
 */
export function encodeBindingSuccess(request: Buffer, source: StunEndpoint): Buffer | null {
  const message = decodeStun(request);
  if (typeof message === 'string' || message.method !== METHOD_BINDING || message.class !== 'request') return null;
  const fingerprint = fingerprintMatches(message);
  if (fingerprint === false) return null;
  const mapped = encodeXorMappedAddress(source, message.transactionId);
  if (!mapped) return null;
  return encodeStun(METHOD_BINDING, 'success', message.transactionId, [[StunAttr.XOR_MAPPED_ADDRESS, mapped]], fingerprint === true);
}

/** What a Binding response says, for a client: the mapped endpoint, or why there is none. */
export type BindingAnswer = { ok: true; transactionId: Buffer; mapped: StunEndpoint } | { ok: false; transactionId: Buffer; error: 'error_response' | 'no_address' | 'bad_fingerprint' };

/** Reads a decoded message as an answer to a Binding request; null if it is not a Binding response at all. */
export function bindingAnswerOf(message: StunMessage): BindingAnswer | null {
  if (message.method !== METHOD_BINDING || (message.class !== 'success' && message.class !== 'error')) return null;
  const transactionId = message.transactionId;
  if (fingerprintMatches(message) === false) return { ok: false, transactionId, error: 'bad_fingerprint' };
  if (message.class === 'error') return { ok: false, transactionId, error: 'error_response' };
  const mapped = mappedEndpointOf(message);
  return mapped ? { ok: true, transactionId, mapped } : { ok: false, transactionId, error: 'no_address' };
}
