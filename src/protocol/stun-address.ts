/**
 * STUN's address attributes: MAPPED-ADDRESS and XOR-MAPPED-ADDRESS (the IP text <-> bytes in
 * ip-bytes.ts). Pure: bytes in, value or null out.
 *
 * ```
 *  0        1        2                4
 *  +--------+--------+----------------+----------------------------------+
 *  | 0x00   | family | port (X-Port)  | address, 4 or 16 bytes (X-Address) |
 *  +--------+--------+----------------+----------------------------------+
 * ```
 * family 0x01 = IPv4, 0x02 = IPv6. In XOR-MAPPED-ADDRESS the port is XORed with the top 16 bits
 * of the magic cookie, an IPv4 address with the cookie, an IPv6 address with the cookie followed
 * by the transaction id.
 * @see https://www.rfc-editor.org/rfc/rfc8489#section-14.1
 * @see https://www.rfc-editor.org/rfc/rfc8489#section-14.2
 */

import { ipv4Bytes, ipv6Bytes, ipv6Text, type WireEndpoint } from './ip-bytes.js';

export const STUN_MAGIC_COOKIE = 0x2112a442;
const FAMILY_IPV4 = 0x01;
const FAMILY_IPV6 = 0x02;
const IPV4_VALUE_BYTES = 8;
const IPV6_VALUE_BYTES = 20;

/** An address as STUN carries it. */
export type StunEndpoint = WireEndpoint;

/** MAPPED-ADDRESS (RFC 3489 servers send only this one). */
export function decodeMappedAddress(value: Buffer): StunEndpoint | null {
  return decodeAddress(value, null);
}

export function decodeXorMappedAddress(value: Buffer, transactionId: Buffer): StunEndpoint | null {
  return decodeAddress(value, xorMask(transactionId));
}

export function encodeXorMappedAddress(endpoint: StunEndpoint, transactionId: Buffer): Buffer | null {
  const bytes = endpoint.family === 'ipv4' ? ipv4Bytes(endpoint.address) : ipv6Bytes(endpoint.address);
  if (!bytes || !Number.isInteger(endpoint.port) || endpoint.port < 0 || endpoint.port > 0xffff) return null;
  const value = Buffer.alloc(4 + bytes.length);
  value[1] = endpoint.family === 'ipv4' ? FAMILY_IPV4 : FAMILY_IPV6;
  value.writeUInt16BE(endpoint.port ^ (STUN_MAGIC_COOKIE >>> 16), 2);
  const mask = xorMask(transactionId);
  for (let i = 0; i < bytes.length; i++) value[4 + i] = bytes[i]! ^ mask[i]!;
  return value;
}

/** The cookie followed by the transaction id: what X-Address is XORed with. */
function xorMask(transactionId: Buffer): Buffer {
  const mask = Buffer.alloc(16);
  mask.writeUInt32BE(STUN_MAGIC_COOKIE, 0);
  transactionId.copy(mask, 4, 0, 12);
  return mask;
}

function decodeAddress(value: Buffer, mask: Buffer | null): StunEndpoint | null {
  const family = value[1];
  const size = family === FAMILY_IPV4 ? IPV4_VALUE_BYTES : family === FAMILY_IPV6 ? IPV6_VALUE_BYTES : -1;
  if (value.length !== size) return null;
  const port = value.readUInt16BE(2) ^ (mask ? STUN_MAGIC_COOKIE >>> 16 : 0);
  const raw = Buffer.alloc(size - 4);
  for (let i = 0; i < raw.length; i++) raw[i] = value[4 + i]! ^ (mask ? mask[i]! : 0);
  return family === FAMILY_IPV4 ? { family: 'ipv4', address: [...raw].join('.'), port } : { family: 'ipv6', address: ipv6Text(raw), port };
}
