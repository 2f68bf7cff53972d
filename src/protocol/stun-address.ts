/**
 * STUN's address attributes: MAPPED-ADDRESS and XOR-MAPPED-ADDRESS, and the IP text <-> bytes
 * they need. Pure: bytes in, value or null out.
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

export const STUN_MAGIC_COOKIE = 0x2112a442;
const FAMILY_IPV4 = 0x01;
const FAMILY_IPV6 = 0x02;
const IPV4_VALUE_BYTES = 8;
const IPV6_VALUE_BYTES = 20;

/** An address as STUN carries it; the same shape as the machines' Endpoint. */
export interface StunEndpoint {
  family: 'ipv4' | 'ipv6';
  address: string;
  port: number;
}

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

function ipv4Bytes(text: string): Buffer | null {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return null;
  return Buffer.from(parts.map(Number));
}

/** IPv6 text (with or without a zone, with an embedded IPv4 tail) to its 16 bytes. */
function ipv6Bytes(text: string): Buffer | null {
  let body = text.replace(/%.*$/, '').toLowerCase();
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(body);
  if (tail) {
    const v4 = ipv4Bytes(tail[1]!);
    if (!v4) return null;
    body = `${body.slice(0, tail.index)}${v4.readUInt16BE(0).toString(16)}:${v4.readUInt16BE(2).toString(16)}`;
  }
  const halves = body.split('::');
  if (halves.length > 2) return null;
  const groups = (part: string | undefined) => (part ? part.split(':') : []);
  const left = groups(halves[0]);
  const right = groups(halves[1]);
  const zeros = 8 - left.length - right.length;
  if ((halves.length === 1 && zeros !== 0) || (halves.length === 2 && zeros < 1)) return null;
  const all = [...left, ...Array<string>(Math.max(0, zeros)).fill('0'), ...right];
  if (!all.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return null;
  const bytes = Buffer.alloc(16);
  all.forEach((g, i) => bytes.writeUInt16BE(parseInt(g, 16), i * 2));
  return bytes;
}

/** RFC 5952 text: lower case, the longest run of two or more zero groups as "::". */
function ipv6Text(bytes: Buffer): string {
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2));
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      best = i;
      bestLength = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLength).join(':')}`;
}
