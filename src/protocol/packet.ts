/**
 * The autoprox v0 datagram layout. Pure: bytes in, value or coded error out.
 *
 * ```
 *  0        1        2                10               18               26
 *  +--------+--------+----------------+----------------+----------------+-----------------+-----+
 *  |version | type   | channel id (8) | sender salt (8)| counter (8, BE)| ciphertext ...  | tag |
 *  +--------+--------+----------------+----------------+----------------+-----------------+-----+
 *  \______________________ header: authenticated as AAD ______________/                   16 B
 * ```
 *
 * - channel id: HKDF(psk, "autoprox v0 channel id"), routes a datagram to the sessions
 *   that share the pre-shared key without trying keys.
 * - sender salt: random per session; the sender's packet key is HKDF(psk, salt), so a
 *   key is never reused across sessions or restarts.
 * - counter: per sender key, starts at 0; it is the AES-GCM nonce (zero-padded to 96 bits)
 *   and the replay-window index.
 */

export const PROTOCOL_VERSION = 0xa0;

export const PacketType = {
  HEARTBEAT: 1,
  DATA: 2,
  CLOSE: 3,
} as const;
export type PacketType = (typeof PacketType)[keyof typeof PacketType];

export const CHANNEL_ID_BYTES = 8;
export const SALT_BYTES = 8;
export const COUNTER_BYTES = 8;
export const HEADER_BYTES = 2 + CHANNEL_ID_BYTES + SALT_BYTES + COUNTER_BYTES; // 26
export const TAG_BYTES = 16;
/** Bytes a datagram adds on top of its application payload. */
export const PACKET_OVERHEAD_BYTES = HEADER_BYTES + TAG_BYTES; // 42

export const CHANNEL_OFFSET = 2;
export const SALT_OFFSET = CHANNEL_OFFSET + CHANNEL_ID_BYTES;
export const COUNTER_OFFSET = SALT_OFFSET + SALT_BYTES;

/** Largest UDP payload over IPv4 (65535 - 20 IP - 8 UDP). */
export const MAX_UDP_PAYLOAD_BYTES = 65_507;
/** Largest application payload one datagram can carry. */
export const MAX_APP_PAYLOAD_BYTES = MAX_UDP_PAYLOAD_BYTES - PACKET_OVERHEAD_BYTES;
/** Counters stay exact JavaScript numbers; a sender never gets near this (2^53 packets). */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

export interface PacketHeader {
  type: PacketType;
  /** The channel id as an 8-character latin1 string: a cheap Map key. */
  channel: string;
  /** The sender's salt as an 8-character latin1 string. */
  salt: string;
  counter: number;
}

export type HeaderError = 'too_short' | 'bad_version' | 'bad_type' | 'bad_counter';

export function decodeHeader(datagram: Buffer): PacketHeader | HeaderError {
  if (datagram.length < PACKET_OVERHEAD_BYTES) return 'too_short';
  if (datagram[0] !== PROTOCOL_VERSION) return 'bad_version';
  const type = datagram[1];
  if (type !== PacketType.HEARTBEAT && type !== PacketType.DATA && type !== PacketType.CLOSE) return 'bad_type';
  const high = datagram.readUInt32BE(COUNTER_OFFSET);
  const low = datagram.readUInt32BE(COUNTER_OFFSET + 4);
  // 2^53 = 2^21 * 2^32: anything at or above it is not a counter we would ever send.
  if (high >= 0x200000) return 'bad_counter';
  return {
    type,
    channel: datagram.toString('latin1', CHANNEL_OFFSET, SALT_OFFSET),
    salt: datagram.toString('latin1', SALT_OFFSET, COUNTER_OFFSET),
    counter: high * 0x1_0000_0000 + low,
  };
}

/** Writes a header into a fresh 26-byte buffer. `channel` and `salt` are 8-byte Buffers. */
export function encodeHeader(type: PacketType, channel: Buffer, salt: Buffer, counter: number): Buffer {
  if (type !== PacketType.HEARTBEAT && type !== PacketType.DATA && type !== PacketType.CLOSE) {
    throw new TypeError(`unknown packet type ${type}`);
  }
  if (channel.length !== CHANNEL_ID_BYTES) throw new TypeError(`channel id must be ${CHANNEL_ID_BYTES} bytes`);
  if (salt.length !== SALT_BYTES) throw new TypeError(`salt must be ${SALT_BYTES} bytes`);
  if (!Number.isSafeInteger(counter) || counter < 0) throw new TypeError('counter must be a non-negative safe integer');
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header[0] = PROTOCOL_VERSION;
  header[1] = type;
  channel.copy(header, CHANNEL_OFFSET);
  salt.copy(header, SALT_OFFSET);
  header.writeUInt32BE(Math.floor(counter / 0x1_0000_0000), COUNTER_OFFSET);
  header.writeUInt32BE(counter >>> 0, COUNTER_OFFSET + 4);
  return header;
}
