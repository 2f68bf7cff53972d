/**
 * The autoprox v1 datagram layout. Pure: bytes in, value or coded error out.
 *
 * ```
 *  0        1        2                10                        26               34
 *  +--------+--------+----------------+-------------------------+----------------+-------------+-----+
 *  | 0xa1   | type   | channel id (8) | sender salt (16)        | counter (8, BE)| ciphertext  | tag |
 *  +--------+--------+----------------+-------------------------+----------------+-------------+-----+
 *  \__________________________ header: authenticated as AAD ___________________/               16 B
 * ```
 *
 * - version: 0xa1. The high nibble 0xa marks an autoprox datagram; any other version (0xa0 is
 *   protocol v0) is recognised, so that it can be counted and reported, and never opened.
 * - channel id: HKDF(psk, "autoprox v1 channel id"), routes a datagram to the sessions that
 *   share the pre-shared key without trying keys.
 * - sender salt: 16 random bytes, the sender session's identity; keys derive from it (see
 *   crypto.ts), DATA and CLOSE keys from it and the receiver's salt together.
 * - counter: one per sender session, across all its packets; starts at 0; it is the AES-GCM
 *   nonce (zero-padded to 96 bits) and the replay-window index.
 */

import { freshHex, type HexNamer } from './hex-names.js';

export const PROTOCOL_VERSION = 0xa1;
/** The version byte of protocol v0 (autoprox 0.1), recognised only to say so. */
export const PROTOCOL_VERSION_V0 = 0xa0;
/** Every autoprox version byte has this high nibble. */
const VERSION_FAMILY = 0xa0;

export const PacketType = {
  HEARTBEAT: 1,
  DATA: 2,
  CLOSE: 3,
} as const;
export type PacketType = (typeof PacketType)[keyof typeof PacketType];

export const CHANNEL_ID_BYTES = 8;
export const SALT_BYTES = 16;
export const COUNTER_BYTES = 8;
export const HEADER_BYTES = 2 + CHANNEL_ID_BYTES + SALT_BYTES + COUNTER_BYTES; // 34
export const TAG_BYTES = 16;
/** Bytes a datagram adds on top of its application payload. */
export const PACKET_OVERHEAD_BYTES = HEADER_BYTES + TAG_BYTES; // 50
/** The smallest datagram of protocol v0 (header 26 + tag 16), to tell a v0 datagram from noise. */
const V0_MIN_BYTES = 42;

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
  /** The channel id, hex: a cheap Map key. */
  channel: string;
  /** The sender's salt, hex (the one representation of a salt, from the wire to the machine). */
  salt: string;
  counter: number;
}

/**
 * Why a datagram is not a v1 packet. `version`: a datagram of another autoprox protocol version
 * (v0, or a later one): its sender must run the same version as this server. The rest are
 * malformed: not autoprox at all, too short, an unknown type, a counter no sender reaches.
 */
export type HeaderError = 'too_short' | 'not_autoprox' | 'version' | 'bad_type' | 'bad_counter';

function isPacketType(type: number | undefined): type is PacketType {
  return type === PacketType.HEARTBEAT || type === PacketType.DATA || type === PacketType.CLOSE;
}

/**
 * Checks, in order: an autoprox version byte, this version, the length, the type, the counter.
 * `names` makes the channel id's and salt's hex (a server passes its cache, hex-names.ts).
 */
export function decodeHeader(datagram: Buffer, names: HexNamer = freshHex): PacketHeader | HeaderError {
  if (datagram.length < 2) return 'too_short';
  const version = datagram[0]!;
  if ((version & 0xf0) !== VERSION_FAMILY) return 'not_autoprox';
  if (version !== PROTOCOL_VERSION) {
    // Another version of autoprox looks like one: a packet type and at least v0's size.
    return isPacketType(datagram[1]) && datagram.length >= V0_MIN_BYTES ? 'version' : 'not_autoprox';
  }
  if (datagram.length < PACKET_OVERHEAD_BYTES) return 'too_short';
  const type = datagram[1];
  if (!isPacketType(type)) return 'bad_type';
  const high = datagram.readUInt32BE(COUNTER_OFFSET);
  const low = datagram.readUInt32BE(COUNTER_OFFSET + 4);
  // 2^53 = 2^21 * 2^32: anything at or above it is not a counter we would ever send.
  if (high >= 0x200000) return 'bad_counter';
  return {
    type,
    channel: names.name(datagram, CHANNEL_OFFSET, SALT_OFFSET),
    salt: names.name(datagram, SALT_OFFSET, COUNTER_OFFSET),
    counter: high * 0x1_0000_0000 + low,
  };
}

/** Writes a header into a fresh 34-byte buffer. `channel` and `salt` are Buffers of their sizes. */
export function encodeHeader(type: PacketType, channel: Buffer, salt: Buffer, counter: number): Buffer {
  return stampHeader(headerPrefix(type, channel, salt), counter);
}

/**
 * The part of a sender's headers of one type that never changes (version, type, channel id,
 * salt), as a header with counter 0: made once per salt, then stamped per packet.
 */
export function headerPrefix(type: PacketType, channel: Buffer, salt: Buffer): Buffer {
  if (!isPacketType(type)) throw new TypeError(`unknown packet type ${type}`);
  if (channel.length !== CHANNEL_ID_BYTES) throw new TypeError(`channel id must be ${CHANNEL_ID_BYTES} bytes`);
  if (salt.length !== SALT_BYTES) throw new TypeError(`salt must be ${SALT_BYTES} bytes`);
  const header = Buffer.alloc(HEADER_BYTES);
  header[0] = PROTOCOL_VERSION;
  header[1] = type;
  channel.copy(header, CHANNEL_OFFSET);
  salt.copy(header, SALT_OFFSET);
  return header;
}

/** A fresh header: `prefix` (headerPrefix) with `counter` written in. */
export function stampHeader(prefix: Buffer, counter: number): Buffer {
  if (!Number.isSafeInteger(counter) || counter < 0) throw new TypeError('counter must be a non-negative safe integer');
  if (prefix.length !== HEADER_BYTES) throw new TypeError(`a header prefix is ${HEADER_BYTES} bytes`);
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  prefix.copy(header, 0, 0, COUNTER_OFFSET);
  header.writeUInt32BE(Math.floor(counter / 0x1_0000_0000), COUNTER_OFFSET);
  header.writeUInt32BE(counter >>> 0, COUNTER_OFFSET + 4);
  return header;
}
