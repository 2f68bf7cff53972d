/**
 * The relay's control messages (README, "The relay protocol"): how a server binds one channel
 * of its own to a relay. Pure: bytes in, value or null out. Every message is
 *
 * ```
 *  0        1        2                10
 *  +--------+--------+----------------+------ body (fixed per type) ------+----------+
 *  | 0xa1   | type   | channel id (8) |                                   | MAC (16) |
 *  +--------+--------+----------------+-----------------------------------+----------+
 * ```
 *
 * with the MAC (HMAC-SHA256 under the admission key, truncated) over every byte before it; a
 * BIND_REQUEST is padded so that the CHALLENGE it earns is never larger. The relay answers no
 * control message whose MAC does not verify. It forwards the servers' own datagrams (HEARTBEAT, DATA, CLOSE)
 * unchanged; these types are only between a server and a relay.
 *
 * Endpoints are written as 19 bytes: family (4 or 6), port (2, BE), address (16; an IPv4
 * address in the first 4, zeros after).
 */
import { ipv4Bytes, ipv6Bytes, ipv6Text, type WireEndpoint } from './ip-bytes.js';
import { CHANNEL_ID_BYTES, CHANNEL_OFFSET, PROTOCOL_VERSION } from './packet.js';

/** An address and port as a relay sees it. */
export type Endpoint = WireEndpoint;

export const RelayType = {
  /** server -> relay: "give me a cookie for this channel". */
  BIND_REQUEST: 16,
  /** relay -> server: the cookie for (channel, the source it saw), and that source. */
  CHALLENGE: 17,
  /** server -> relay: bind this source to the channel, as end `nonce` with `proof`. */
  BIND: 18,
  /** relay -> server: the other ends of the channel (nonce, source, proof, paired). */
  BOUND: 19,
  /** server -> relay: end `nonce` approves the other end `peer` (it checked the peer's proof). */
  APPROVE: 20,
} as const;
export type RelayType = (typeof RelayType)[keyof typeof RelayType];

export const COOKIE_BYTES = 16;
export const END_NONCE_BYTES = 16;
export const PROOF_BYTES = 16;
export const RELAY_MAC_BYTES = 16;
export const ENDPOINT_BYTES = 19;
/** Ends one channel may have at a relay (and that one BOUND lists). */
export const MAX_CHANNEL_ENDS = 8;

const BODY_OFFSET = CHANNEL_OFFSET + CHANNEL_ID_BYTES; // 10
/** BIND_REQUEST (zeros, then its MAC) is padded to this many bytes: more than the CHALLENGE it can earn. */
export const BIND_REQUEST_BYTES = 64;
export const CHALLENGE_BYTES = BODY_OFFSET + COOKIE_BYTES + ENDPOINT_BYTES + RELAY_MAC_BYTES; // 61
export const BIND_BYTES = BODY_OFFSET + COOKIE_BYTES + END_NONCE_BYTES + PROOF_BYTES + RELAY_MAC_BYTES; // 74
export const APPROVE_BYTES = BODY_OFFSET + COOKIE_BYTES + END_NONCE_BYTES + END_NONCE_BYTES + RELAY_MAC_BYTES; // 74
const BOUND_ENTRY_BYTES = END_NONCE_BYTES + ENDPOINT_BYTES + PROOF_BYTES + 1; // 52
const BOUND_FIXED_BYTES = BODY_OFFSET + END_NONCE_BYTES + 1 + RELAY_MAC_BYTES; // 43

export interface BoundEntry {
  nonce: Buffer;
  source: Endpoint;
  proof: Buffer;
  /** Both ends approved each other: the relay forwards between them. */
  paired: boolean;
}

export type RelayMessage =
  | { type: typeof RelayType.BIND_REQUEST; channel: Buffer }
  | { type: typeof RelayType.CHALLENGE; channel: Buffer; cookie: Buffer; observed: Endpoint }
  | { type: typeof RelayType.BIND; channel: Buffer; cookie: Buffer; nonce: Buffer; proof: Buffer }
  | { type: typeof RelayType.BOUND; channel: Buffer; nonce: Buffer; ends: BoundEntry[] }
  | { type: typeof RelayType.APPROVE; channel: Buffer; cookie: Buffer; nonce: Buffer; peer: Buffer };

/** A control message's type, or null for anything else (the relay's cheap first test). */
export function relayTypeOf(datagram: Buffer): RelayType | null {
  if (datagram.length < BODY_OFFSET || datagram[0] !== PROTOCOL_VERSION) return null;
  const type = datagram[1]!;
  return type >= RelayType.BIND_REQUEST && type <= RelayType.APPROVE ? (type as RelayType) : null;
}

/** The bytes a MAC covers: everything before the last RELAY_MAC_BYTES. */
export function macCovered(datagram: Buffer): Buffer {
  return datagram.subarray(0, datagram.length - RELAY_MAC_BYTES);
}

export function macOf(datagram: Buffer): Buffer {
  return datagram.subarray(datagram.length - RELAY_MAC_BYTES);
}

export function encodeEndpoint(endpoint: Endpoint, out: Buffer, offset: number): void {
  const address = endpoint.family === 'ipv4' ? ipv4Bytes(endpoint.address) : ipv6Bytes(endpoint.address);
  if (!address) throw new TypeError(`not an ${endpoint.family} address: ${endpoint.address}`);
  out.fill(0, offset, offset + ENDPOINT_BYTES);
  out[offset] = endpoint.family === 'ipv4' ? 4 : 6;
  out.writeUInt16BE(endpoint.port, offset + 1);
  address.copy(out, offset + 3);
}

export function decodeEndpoint(bytes: Buffer, offset: number): Endpoint | null {
  const family = bytes[offset];
  const port = bytes.readUInt16BE(offset + 1);
  if (port === 0) return null;
  if (family === 4) {
    if (bytes.subarray(offset + 7, offset + ENDPOINT_BYTES).some((b) => b !== 0)) return null;
    return { family: 'ipv4', address: Array.from(bytes.subarray(offset + 3, offset + 7)).join('.'), port };
  }
  if (family === 6) return { family: 'ipv6', address: ipv6Text(bytes.subarray(offset + 3, offset + 19)), port };
  return null;
}

/** The 19 bytes of an endpoint, for a MAC or a proof. */
export function endpointBytes(endpoint: Endpoint): Buffer {
  const out = Buffer.alloc(ENDPOINT_BYTES);
  encodeEndpoint(endpoint, out, 0);
  return out;
}

function start(type: RelayType, channel: Buffer, length: number): Buffer {
  if (channel.length !== CHANNEL_ID_BYTES) throw new TypeError(`channel id must be ${CHANNEL_ID_BYTES} bytes`);
  const out = Buffer.alloc(length);
  out[0] = PROTOCOL_VERSION;
  out[1] = type;
  channel.copy(out, CHANNEL_OFFSET);
  return out;
}

function put(out: Buffer, offset: number, bytes: Buffer, length: number): number {
  if (bytes.length !== length) throw new TypeError(`expected ${length} bytes, got ${bytes.length}`);
  bytes.copy(out, offset);
  return offset + length;
}

/**
 * Encodes a message with its MAC left zero: `sign` fills it (relay-auth.ts), so this file
 * stays free of keys.
 */
export function encodeRelayMessage(message: RelayMessage): Buffer {
  switch (message.type) {
    case RelayType.BIND_REQUEST:
      return start(message.type, message.channel, BIND_REQUEST_BYTES);
    case RelayType.CHALLENGE: {
      const out = start(message.type, message.channel, CHALLENGE_BYTES);
      const at = put(out, BODY_OFFSET, message.cookie, COOKIE_BYTES);
      encodeEndpoint(message.observed, out, at);
      return out;
    }
    case RelayType.BIND: {
      const out = start(message.type, message.channel, BIND_BYTES);
      let at = put(out, BODY_OFFSET, message.cookie, COOKIE_BYTES);
      at = put(out, at, message.nonce, END_NONCE_BYTES);
      put(out, at, message.proof, PROOF_BYTES);
      return out;
    }
    case RelayType.APPROVE: {
      const out = start(message.type, message.channel, APPROVE_BYTES);
      let at = put(out, BODY_OFFSET, message.cookie, COOKIE_BYTES);
      at = put(out, at, message.nonce, END_NONCE_BYTES);
      put(out, at, message.peer, END_NONCE_BYTES);
      return out;
    }
    case RelayType.BOUND: {
      const ends = message.ends.slice(0, MAX_CHANNEL_ENDS);
      const out = start(message.type, message.channel, BOUND_FIXED_BYTES + ends.length * BOUND_ENTRY_BYTES);
      let at = put(out, BODY_OFFSET, message.nonce, END_NONCE_BYTES);
      out[at++] = ends.length;
      for (const end of ends) {
        at = put(out, at, end.nonce, END_NONCE_BYTES);
        encodeEndpoint(end.source, out, at);
        at += ENDPOINT_BYTES;
        at = put(out, at, end.proof, PROOF_BYTES);
        out[at++] = end.paired ? 1 : 0;
      }
      return out;
    }
  }
}

/** Decodes a control message of exactly its size; null for anything malformed. The MAC is not checked here. */
export function decodeRelayMessage(datagram: Buffer): RelayMessage | null {
  const type = relayTypeOf(datagram);
  if (type === null) return null;
  const channel = datagram.subarray(CHANNEL_OFFSET, BODY_OFFSET);
  const at = (offset: number, length: number) => datagram.subarray(offset, offset + length);
  switch (type) {
    case RelayType.BIND_REQUEST:
      return datagram.length === BIND_REQUEST_BYTES ? { type, channel } : null;
    case RelayType.CHALLENGE: {
      if (datagram.length !== CHALLENGE_BYTES) return null;
      const observed = decodeEndpoint(datagram, BODY_OFFSET + COOKIE_BYTES);
      return observed ? { type, channel, cookie: at(BODY_OFFSET, COOKIE_BYTES), observed } : null;
    }
    case RelayType.BIND:
      if (datagram.length !== BIND_BYTES) return null;
      return {
        type,
        channel,
        cookie: at(BODY_OFFSET, COOKIE_BYTES),
        nonce: at(BODY_OFFSET + COOKIE_BYTES, END_NONCE_BYTES),
        proof: at(BODY_OFFSET + COOKIE_BYTES + END_NONCE_BYTES, PROOF_BYTES),
      };
    case RelayType.APPROVE:
      if (datagram.length !== APPROVE_BYTES) return null;
      return {
        type,
        channel,
        cookie: at(BODY_OFFSET, COOKIE_BYTES),
        nonce: at(BODY_OFFSET + COOKIE_BYTES, END_NONCE_BYTES),
        peer: at(BODY_OFFSET + COOKIE_BYTES + END_NONCE_BYTES, END_NONCE_BYTES),
      };
    case RelayType.BOUND: {
      if (datagram.length < BOUND_FIXED_BYTES) return null;
      const count = datagram[BODY_OFFSET + END_NONCE_BYTES]!;
      if (count > MAX_CHANNEL_ENDS || datagram.length !== BOUND_FIXED_BYTES + count * BOUND_ENTRY_BYTES) return null;
      const ends: BoundEntry[] = [];
      let offset = BODY_OFFSET + END_NONCE_BYTES + 1;
      for (let i = 0; i < count; i++) {
        const source = decodeEndpoint(datagram, offset + END_NONCE_BYTES);
        if (!source) return null;
        const flag = datagram[offset + END_NONCE_BYTES + ENDPOINT_BYTES + PROOF_BYTES]!;
        if (flag > 1) return null;
        ends.push({
          nonce: at(offset, END_NONCE_BYTES),
          source,
          proof: at(offset + END_NONCE_BYTES + ENDPOINT_BYTES, PROOF_BYTES),
          paired: flag === 1,
        });
        offset += BOUND_ENTRY_BYTES;
      }
      return { type, channel, nonce: at(BODY_OFFSET, END_NONCE_BYTES), ends };
    }
  }
}
