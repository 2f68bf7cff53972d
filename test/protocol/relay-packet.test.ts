/** The relay protocol's endpoint codec (19 bytes: family, port, address) and message sizes. Pure. */
import { describe, expect, it } from 'vitest';
import { decodeEndpoint, decodeRelayMessage, encodeEndpoint, encodeRelayMessage, ENDPOINT_BYTES, RelayType, type Endpoint } from '../../src/protocol/relay-packet.js';

const roundTrip = (e: Endpoint) => {
  const out = Buffer.alloc(ENDPOINT_BYTES);
  encodeEndpoint(e, out, 0);
  return decodeEndpoint(out, 0);
};

describe('relay endpoints on the wire', () => {
  it('round-trips IPv4 and IPv6, the IPv6 text in RFC 5952 form', () => {
    expect(roundTrip({ family: 'ipv4', address: '203.0.113.7', port: 3478 })).toEqual({ family: 'ipv4', address: '203.0.113.7', port: 3478 });
    expect(roundTrip({ family: 'ipv6', address: '2001:db8:0:0:0:0:0:1', port: 40000 })).toEqual({ family: 'ipv6', address: '2001:db8::1', port: 40000 });
    expect(roundTrip({ family: 'ipv6', address: '::ffff:192.0.2.1', port: 1 })).toEqual({ family: 'ipv6', address: '::ffff:c000:201', port: 1 });
  });

  it('refuses what is not an endpoint: port 0, an unknown family, bytes after an IPv4 address; an encoder given a bad address throws', () => {
    const out = Buffer.alloc(ENDPOINT_BYTES);
    encodeEndpoint({ family: 'ipv4', address: '10.0.0.1', port: 9 }, out, 0);
    expect(decodeEndpoint(Buffer.concat([Buffer.from([4, 0, 0]), out.subarray(3)]), 0)).toBeNull();
    expect(decodeEndpoint(Buffer.concat([Buffer.from([5]), out.subarray(1)]), 0)).toBeNull();
    const padded = Buffer.from(out);
    padded[10] = 1;
    expect(decodeEndpoint(padded, 0)).toBeNull();
    expect(() => encodeEndpoint({ family: 'ipv4', address: 'not-an-address', port: 9 }, out, 0)).toThrow(TypeError);
  });

  it('a CHALLENGE decodes to what was encoded, and a message of another size is refused', () => {
    const message = { type: RelayType.CHALLENGE, channel: Buffer.alloc(8, 7), cookie: Buffer.alloc(16, 9), observed: { family: 'ipv6' as const, address: '2001:db8::7', port: 3478 } };
    const bytes = encodeRelayMessage(message);
    expect(decodeRelayMessage(bytes)).toEqual(message);
    expect(decodeRelayMessage(bytes.subarray(0, bytes.length - 1))).toBeNull();
  });
});
