/** The STUN codec against RFC 5769's sample messages, byte for byte, and property tests on garbage and round trips. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bindingAnswerOf,
  crc32,
  decodeStun,
  encodeBindingRequest,
  encodeBindingSuccess,
  encodeStun,
  fingerprintMatches,
  integrityMatchesKey,
  isStunMessage,
  mappedEndpointOf,
  MAX_STUN_ATTRIBUTES,
  messageType,
  METHOD_BINDING,
  StunAttr,
  type StunEndpoint,
  type StunMessage,
} from '../../src/protocol/stun.js';
import { decodeMappedAddress, decodeXorMappedAddress, encodeXorMappedAddress } from '../../src/protocol/stun-address.js';

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

/** RFC 5769 section 2.1: a Binding request with SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME, MESSAGE-INTEGRITY, FINGERPRINT. */
const SAMPLE_REQUEST = hex(`
  00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
  00 24 00 04 6e 00 01 ff
  80 29 00 08 93 2f f9 b1 51 26 3b 36
  00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
  00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
  80 28 00 04 e5 7a 3b cf`);
/** Section 2.2: the IPv4 response, XOR-MAPPED-ADDRESS 192.0.2.1:32853. */
const SAMPLE_IPV4_RESPONSE = hex(`
  01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
  00 20 00 08 00 01 a1 47 e1 12 a6 43
  00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
  80 28 00 04 c0 7d 4c 96`);
/** Section 2.3: the IPv6 response, XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853. */
const SAMPLE_IPV6_RESPONSE = hex(`
  01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
  00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
  00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
  80 28 00 04 c8 fb 0b 4c`);
const PASSWORD = Buffer.from('VOkJxbRl1RmTxUk/WvJxBt', 'utf8');
const TXID = hex('b7 e7 a7 01 bc 34 d6 86 fa 87 df ae');

function decoded(bytes: Buffer): StunMessage {
  const message = decodeStun(bytes);
  if (typeof message === 'string') throw new Error(`expected a STUN message, got ${message}`);
  return message;
}

describe('STUN: RFC 5769 sample messages', () => {
  it('CRC-32 is the ISO-HDLC one (the published check value)', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('2.1 request: decodes attribute by attribute; FINGERPRINT and MESSAGE-INTEGRITY check, a wrong password does not', () => {
    const m = decoded(SAMPLE_REQUEST);
    expect(SAMPLE_REQUEST.length).toBe(108);
    expect({ method: m.method, class: m.class }).toEqual({ method: METHOD_BINDING, class: 'request' });
    expect(m.transactionId).toEqual(TXID);
    expect(m.attributes.map((a) => [a.type, a.at, a.value.length])).toEqual([
      [StunAttr.SOFTWARE, 20, 16],
      [0x0024, 40, 4], // PRIORITY
      [0x8029, 48, 8], // ICE-CONTROLLED
      [StunAttr.USERNAME, 60, 9],
      [StunAttr.MESSAGE_INTEGRITY, 76, 20],
      [StunAttr.FINGERPRINT, 100, 4],
    ]);
    expect(m.attributes[0]!.value.toString()).toBe('STUN test client');
    expect(m.attributes[3]!.value.toString()).toBe('evtj:h6vY');
    expect(fingerprintMatches(m)).toBe(true);
    expect(integrityMatchesKey(m, PASSWORD)).toBe(true);
    expect(integrityMatchesKey(m, Buffer.from('VOkJxbRl1RmTxUk/WvJxBu'))).toBe(false);
    expect(mappedEndpointOf(m)).toBeNull();
  });

  it.each([
    ['2.2 IPv4 response', SAMPLE_IPV4_RESPONSE, { family: 'ipv4', address: '192.0.2.1', port: 32853 }, 80],
    ['2.3 IPv6 response', SAMPLE_IPV6_RESPONSE, { family: 'ipv6', address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 }, 92],
  ] as const)('%s: decodes, checks, and names the mapped address', (_name, bytes, mapped, size) => {
    expect(bytes.length).toBe(size);
    const m = decoded(bytes);
    expect({ method: m.method, class: m.class }).toEqual({ method: METHOD_BINDING, class: 'success' });
    expect(m.transactionId).toEqual(TXID);
    expect(m.attributes.map((a) => a.type)).toEqual([StunAttr.SOFTWARE, StunAttr.XOR_MAPPED_ADDRESS, StunAttr.MESSAGE_INTEGRITY, StunAttr.FINGERPRINT]);
    expect(m.attributes[0]!.value.toString()).toBe('test vector');
    expect(fingerprintMatches(m)).toBe(true);
    expect(integrityMatchesKey(m, PASSWORD)).toBe(true);
    expect(integrityMatchesKey(m, Buffer.from('not the password'))).toBe(false);
    expect(mappedEndpointOf(m)).toEqual(mapped);
    expect(bindingAnswerOf(m)).toEqual({ ok: true, transactionId: TXID, mapped });
  });

  it('the XOR-MAPPED-ADDRESS encoder writes the RFC responses\' values byte for byte', () => {
    for (const [bytes, mapped] of [
      [SAMPLE_IPV4_RESPONSE, { family: 'ipv4', address: '192.0.2.1', port: 32853 }],
      [SAMPLE_IPV6_RESPONSE, { family: 'ipv6', address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 }],
    ] as const) {
      const attribute = decoded(bytes).attributes[1]!;
      expect(encodeXorMappedAddress(mapped, TXID)).toEqual(attribute.value);
    }
  });

  it('a changed byte breaks the FINGERPRINT (and the integrity), and such a response is no answer', () => {
    const bytes = Buffer.from(SAMPLE_IPV4_RESPONSE);
    bytes[30] = bytes[30]! ^ 0x01; // in XOR-MAPPED-ADDRESS
    const m = decoded(bytes);
    expect(fingerprintMatches(m)).toBe(false);
    expect(integrityMatchesKey(m, PASSWORD)).toBe(false);
    expect(bindingAnswerOf(m)).toMatchObject({ ok: false, error: 'bad_fingerprint' });
  });
});

describe('STUN: validation', () => {
  it.each([
    ['shorter than a header', SAMPLE_REQUEST.subarray(0, 19), 'too_short'],
    ['top bits set', Object.assign(Buffer.from(SAMPLE_REQUEST), { 0: 0x40 }), 'not_stun'],
    ['a wrong cookie', Object.assign(Buffer.from(SAMPLE_REQUEST), { 4: 0x20 }), 'not_stun'],
    ['a length not a multiple of 4', Object.assign(Buffer.from(SAMPLE_REQUEST), { 3: 0x57 }), 'bad_length'],
    ['a length past the datagram', Object.assign(Buffer.from(SAMPLE_REQUEST), { 3: 0x5c }), 'bad_length'],
    ['a length short of the datagram', Buffer.concat([SAMPLE_REQUEST, Buffer.alloc(4)]), 'bad_length'],
    ['an attribute past the message', Object.assign(Buffer.from(SAMPLE_REQUEST), { 23: 0x40 }), 'bad_attribute'],
  ] as const)('%s: %s', (_name, bytes, error) => {
    expect(decodeStun(bytes)).toBe(error);
  });

  it('an attribute after FINGERPRINT, or more than the bound of attributes, is refused', () => {
    const request = encodeBindingRequest(TXID);
    const after = Buffer.concat([request, hex('80 22 00 00')]);
    after.writeUInt16BE(after.length - 20, 2);
    expect(decodeStun(after)).toBe('bad_attribute');
    const many = encodeStun(METHOD_BINDING, 'request', TXID, Array.from({ length: MAX_STUN_ATTRIBUTES + 1 }, () => [StunAttr.SOFTWARE, Buffer.alloc(0)] as [number, Buffer]), false);
    expect(decodeStun(many)).toBe('too_many_attributes');
    const most = encodeStun(METHOD_BINDING, 'request', TXID, Array.from({ length: MAX_STUN_ATTRIBUTES }, () => [StunAttr.SOFTWARE, Buffer.alloc(0)] as [number, Buffer]), false);
    expect(typeof decodeStun(most)).toBe('object');
  });

  it('isStunMessage tells STUN from autoprox datagrams (0xa0-0xaf) and from short garbage', () => {
    expect(isStunMessage(SAMPLE_REQUEST)).toBe(true);
    expect(isStunMessage(SAMPLE_IPV6_RESPONSE)).toBe(true);
    for (let first = 0xa0; first <= 0xaf; first++) expect(isStunMessage(Object.assign(Buffer.from(SAMPLE_REQUEST), { 0: first }))).toBe(false);
    expect(isStunMessage(SAMPLE_REQUEST.subarray(0, 19))).toBe(false);
  });

  it('message types interleave method and class as RFC 8489 section 5 draws them', () => {
    expect(messageType(METHOD_BINDING, 'request')).toBe(0x0001);
    expect(messageType(METHOD_BINDING, 'indication')).toBe(0x0011);
    expect(messageType(METHOD_BINDING, 'success')).toBe(0x0101);
    expect(messageType(METHOD_BINDING, 'error')).toBe(0x0111);
    expect(messageType(0x003, 'success')).toBe(0x0103); // TURN Allocate
  });

  it('MAPPED-ADDRESS is read when there is no XOR-MAPPED-ADDRESS (RFC 3489 servers)', () => {
    const plain = hex('00 01 80 55 c0 00 02 01'); // 192.0.2.1:32853, not XORed
    expect(decodeMappedAddress(plain)).toEqual({ family: 'ipv4', address: '192.0.2.1', port: 32853 });
    const response = encodeStun(METHOD_BINDING, 'success', TXID, [[StunAttr.MAPPED_ADDRESS, plain]], true);
    expect(bindingAnswerOf(decoded(response))).toEqual({ ok: true, transactionId: TXID, mapped: { family: 'ipv4', address: '192.0.2.1', port: 32853 } });
    expect(decodeMappedAddress(hex('00 03 80 55 c0 00 02 01'))).toBeNull(); // unknown family
    expect(decodeMappedAddress(hex('00 01 80 55 c0 00 02'))).toBeNull(); // short
  });

  it('an error response or a response without an address is an answer saying so', () => {
    const error = encodeStun(METHOD_BINDING, 'error', TXID, [[StunAttr.ERROR_CODE, hex('00 00 04 00')]], false);
    expect(bindingAnswerOf(decoded(error))).toMatchObject({ ok: false, error: 'error_response' });
    const bare = encodeStun(METHOD_BINDING, 'success', TXID, [], false);
    expect(bindingAnswerOf(decoded(bare))).toMatchObject({ ok: false, error: 'no_address' });
    expect(bindingAnswerOf(decoded(encodeBindingRequest(TXID)))).toBeNull(); // a request is no answer
  });
});

describe('STUN: requests and the responder', () => {
  it('a Binding request is 28 bytes: header, transaction id, FINGERPRINT', () => {
    const request = encodeBindingRequest(TXID);
    expect(request.toString('hex')).toMatch(/^000100082112a442b7e7a701bc34d686fa87dfae80280004[0-9a-f]{8}$/);
    const m = decoded(request);
    expect(fingerprintMatches(m)).toBe(true);
    expect(() => encodeBindingRequest(Buffer.alloc(11))).toThrow(TypeError);
  });

  it('answers a Binding request with the source endpoint, no larger than needed; FINGERPRINT only when asked with one', () => {
    const v4: StunEndpoint = { family: 'ipv4', address: '203.0.113.9', port: 40000 };
    const v6: StunEndpoint = { family: 'ipv6', address: '2001:db8::9', port: 40000 };
    const withFp = encodeBindingSuccess(encodeBindingRequest(TXID), v4)!;
    expect(withFp.length).toBe(20 + 12 + 8);
    expect(bindingAnswerOf(decoded(withFp))).toEqual({ ok: true, transactionId: TXID, mapped: v4 });
    const bare = encodeStun(METHOD_BINDING, 'request', TXID, [], false);
    expect(bare.length).toBe(20);
    const plain = encodeBindingSuccess(bare, v6)!;
    expect(plain.length).toBe(20 + 24);
    expect(fingerprintMatches(decoded(plain))).toBeNull();
    expect(mappedEndpointOf(decoded(plain))).toEqual(v6);
    // RFC 5769's request (with credentials this responder does not use) is still a Binding request.
    expect(mappedEndpointOf(decoded(encodeBindingSuccess(SAMPLE_REQUEST, v4)!))).toEqual(v4);
  });

  it('answers nothing that is not a valid Binding request', () => {
    const v4: StunEndpoint = { family: 'ipv4', address: '203.0.113.9', port: 40000 };
    expect(encodeBindingSuccess(SAMPLE_IPV4_RESPONSE, v4)).toBeNull(); // a response
    expect(encodeBindingSuccess(encodeStun(METHOD_BINDING, 'indication', TXID, [], false), v4)).toBeNull();
    expect(encodeBindingSuccess(encodeStun(0x003, 'request', TXID, [], false), v4)).toBeNull(); // Allocate
    const badFp = Buffer.from(encodeBindingRequest(TXID));
    badFp[10] = badFp[10]! ^ 1;
    expect(encodeBindingSuccess(badFp, v4)).toBeNull();
    expect(encodeBindingSuccess(Buffer.from('GET / HTTP/1.1\r\n\r\n....'), v4)).toBeNull();
    expect(encodeBindingSuccess(encodeBindingRequest(TXID), { family: 'ipv4', address: 'nonsense', port: 1 })).toBeNull();
  });
});

describe('STUN: properties', () => {
  const endpointArb: fc.Arbitrary<StunEndpoint> = fc.oneof(
    fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 65535 })).map(([address, port]) => ({ family: 'ipv4' as const, address, port })),
    fc.tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 65535 })).map(([bytes, port]) => {
      const groups = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16));
      return { family: 'ipv6' as const, address: groups.join(':'), port };
    }),
  );
  const txidArb = fc.uint8Array({ minLength: 12, maxLength: 12 }).map((b) => Buffer.from(b));

  it('decode never throws on garbage, nor on garbage behind a STUN header', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (bytes, withHeader) => {
        const buf = Buffer.from(bytes);
        if (withHeader && buf.length >= 20) {
          buf[0] = buf[0]! & 0x3f;
          buf.writeUInt32BE(0x2112a442, 4);
          buf.writeUInt16BE(buf.length - 20, 2);
        }
        const m = decodeStun(buf);
        if (typeof m !== 'string') {
          bindingAnswerOf(m);
          integrityMatchesKey(m, PASSWORD);
          encodeBindingSuccess(buf, { family: 'ipv4', address: '192.0.2.1', port: 1 });
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('XOR-MAPPED-ADDRESS round-trips for any endpoint and transaction id (IPv6 in RFC 5952 form)', () => {
    fc.assert(
      fc.property(endpointArb, txidArb, (endpoint, txid) => {
        const value = encodeXorMappedAddress(endpoint, txid)!;
        const back = decodeXorMappedAddress(value, txid)!;
        expect(back.port).toBe(endpoint.port);
        expect(back.family).toBe(endpoint.family);
        expect(encodeXorMappedAddress(back, txid)).toEqual(value);
      }),
    );
  });

  it('request -> response -> answer round-trips the source endpoint and the transaction id', () => {
    fc.assert(
      fc.property(endpointArb, txidArb, (endpoint, txid) => {
        const response = encodeBindingSuccess(encodeBindingRequest(txid), endpoint)!;
        const answer = bindingAnswerOf(decoded(response));
        expect(answer?.ok).toBe(true);
        expect(answer?.transactionId).toEqual(txid);
        if (answer?.ok) expect(encodeXorMappedAddress(answer.mapped, txid)).toEqual(encodeXorMappedAddress(endpoint, txid));
      }),
    );
  });

  it('any message encoded decodes to its attributes, with a checking FINGERPRINT', () => {
    const attrArb = fc.tuple(fc.integer({ min: 0, max: 0x8027 }), fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)));
    fc.assert(
      fc.property(txidArb, fc.array(attrArb, { maxLength: 10 }), fc.constantFrom('request', 'indication', 'success', 'error' as const), (txid, attrs, cls) => {
        const m = decoded(encodeStun(METHOD_BINDING, cls, txid, attrs, true));
        expect(m.class).toBe(cls);
        expect(m.attributes.slice(0, -1).map((a) => [a.type, a.value])).toEqual(attrs);
        expect(fingerprintMatches(m)).toBe(true);
      }),
    );
  });
});
