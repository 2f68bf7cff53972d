import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CHANNEL_ID_BYTES,
  CHANNEL_OFFSET,
  COUNTER_BYTES,
  COUNTER_OFFSET,
  decodeHeader,
  encodeHeader,
  HEADER_BYTES,
  MAX_APP_PAYLOAD_BYTES,
  MAX_COUNTER,
  MAX_UDP_PAYLOAD_BYTES,
  PACKET_OVERHEAD_BYTES,
  PacketType,
  PROTOCOL_VERSION,
  PROTOCOL_VERSION_V0,
  SALT_BYTES,
  SALT_OFFSET,
  TAG_BYTES,
  type HeaderError,
  type PacketHeader,
} from '../../src/protocol/packet.js';

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');
const CHANNEL = hex('0102030405060708');
const SALT = hex('1112131415161718191a1b1c1d1e1f20');
/** A header followed by a zero "tag": the smallest datagram decodeHeader looks at. */
const datagramOf = (header: Buffer, bodyBytes = 0): Buffer => Buffer.concat([header, Buffer.alloc(bodyBytes + TAG_BYTES)]);

describe('packet layout constants', () => {
  it('match the documented v1 layout', () => {
    expect(PROTOCOL_VERSION).toBe(0xa1);
    expect(PROTOCOL_VERSION_V0).toBe(0xa0);
    expect(PacketType).toEqual({ HEARTBEAT: 1, DATA: 2, CLOSE: 3 });
    expect([CHANNEL_OFFSET, SALT_OFFSET, COUNTER_OFFSET, HEADER_BYTES]).toEqual([2, 10, 26, 34]);
    expect([CHANNEL_ID_BYTES, SALT_BYTES, COUNTER_BYTES, TAG_BYTES]).toEqual([8, 16, 8, 16]);
    expect(PACKET_OVERHEAD_BYTES).toBe(50);
    expect(MAX_UDP_PAYLOAD_BYTES).toBe(65_507);
    expect(MAX_APP_PAYLOAD_BYTES).toBe(65_507 - 50);
    expect(MAX_COUNTER).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe('encodeHeader: exact bytes', () => {
  const vectors: Array<[string, PacketType, number, string]> = [
    ['HEARTBEAT, counter 0', PacketType.HEARTBEAT, 0, 'a101 0102030405060708 1112131415161718191a1b1c1d1e1f20 0000000000000000'],
    ['DATA, counter 1', PacketType.DATA, 1, 'a102 0102030405060708 1112131415161718191a1b1c1d1e1f20 0000000000000001'],
    ['CLOSE, counter 255', PacketType.CLOSE, 255, 'a103 0102030405060708 1112131415161718191a1b1c1d1e1f20 00000000000000ff'],
    ['counter 2^32 - 1 (low word full)', PacketType.DATA, 0xffff_ffff, 'a102 0102030405060708 1112131415161718191a1b1c1d1e1f20 00000000ffffffff'],
    ['counter 2^32 (carries into the high word)', PacketType.DATA, 0x1_0000_0000, 'a102 0102030405060708 1112131415161718191a1b1c1d1e1f20 0000000100000000'],
    ['counter 0x0102030405 (big-endian)', PacketType.DATA, 0x01_0203_0405, 'a102 0102030405060708 1112131415161718191a1b1c1d1e1f20 0000000102030405'],
    ['counter 2^52', PacketType.DATA, 2 ** 52, 'a102 0102030405060708 1112131415161718191a1b1c1d1e1f20 0010000000000000'],
    ['counter MAX_SAFE_INTEGER', PacketType.DATA, Number.MAX_SAFE_INTEGER, 'a102 0102030405060708 1112131415161718191a1b1c1d1e1f20 001fffffffffffff'],
  ];

  it.each(vectors)('%s', (_name, type, counter, expected) => {
    const header = encodeHeader(type, CHANNEL, SALT, counter);
    expect(header.length).toBe(HEADER_BYTES);
    expect(header.toString('hex')).toBe(expected.replace(/\s+/g, ''));
  });

  it('places each field at its documented offset', () => {
    const header = encodeHeader(PacketType.CLOSE, CHANNEL, SALT, 0x0a0b0c0d0e0f);
    expect(header[0]).toBe(0xa1);
    expect(header[1]).toBe(PacketType.CLOSE);
    expect(header.subarray(2, 10)).toEqual(CHANNEL);
    expect(header.subarray(10, 26)).toEqual(SALT);
    expect(header.readBigUInt64BE(26)).toBe(0x0a0b0c0d0e0fn);
  });

  it('copies channel and salt (later changes to the inputs do not leak in)', () => {
    const channel = Buffer.from(CHANNEL);
    const salt = Buffer.from(SALT);
    const header = encodeHeader(PacketType.DATA, channel, salt, 7);
    channel.fill(0);
    salt.fill(0);
    expect(header.subarray(2, 26)).toEqual(Buffer.concat([CHANNEL, SALT]));
  });
});

describe('encodeHeader: refusals', () => {
  const cases: Array<[string, Buffer, Buffer, number, string]> = [
    ['channel of 0 bytes', Buffer.alloc(0), SALT, 0, 'channel id must be 8 bytes'],
    ['channel of 7 bytes', Buffer.alloc(7), SALT, 0, 'channel id must be 8 bytes'],
    ['channel of 9 bytes', Buffer.alloc(9), SALT, 0, 'channel id must be 8 bytes'],
    ['salt of 0 bytes', CHANNEL, Buffer.alloc(0), 0, 'salt must be 16 bytes'],
    ['salt of 8 bytes (v0)', CHANNEL, Buffer.alloc(8), 0, 'salt must be 16 bytes'],
    ['salt of 15 bytes', CHANNEL, Buffer.alloc(15), 0, 'salt must be 16 bytes'],
    ['salt of 17 bytes', CHANNEL, Buffer.alloc(17), 0, 'salt must be 16 bytes'],
    ['counter -1', CHANNEL, SALT, -1, 'counter must be a non-negative safe integer'],
    ['counter 1.5', CHANNEL, SALT, 1.5, 'counter must be a non-negative safe integer'],
    ['counter NaN', CHANNEL, SALT, Number.NaN, 'counter must be a non-negative safe integer'],
    ['counter Infinity', CHANNEL, SALT, Number.POSITIVE_INFINITY, 'counter must be a non-negative safe integer'],
    ['counter -Infinity', CHANNEL, SALT, Number.NEGATIVE_INFINITY, 'counter must be a non-negative safe integer'],
    ['counter MAX_SAFE_INTEGER + 1', CHANNEL, SALT, Number.MAX_SAFE_INTEGER + 1, 'counter must be a non-negative safe integer'],
    ['counter 2^64', CHANNEL, SALT, 2 ** 64, 'counter must be a non-negative safe integer'],
  ];

  it.each(cases)('%s throws TypeError', (_name, channel, salt, counter, message) => {
    expect(() => encodeHeader(PacketType.DATA, channel, salt, counter)).toThrow(TypeError);
    expect(() => encodeHeader(PacketType.DATA, channel, salt, counter)).toThrow(message);
  });
});

describe('decodeHeader', () => {
  it('decodes a header into type, hex channel and salt, and counter', () => {
    const header = encodeHeader(PacketType.DATA, CHANNEL, SALT, 0x01_0203_0405);
    expect(decodeHeader(datagramOf(header, 10))).toEqual({
      type: PacketType.DATA,
      channel: CHANNEL.toString('hex'),
      salt: SALT.toString('hex'),
      counter: 0x01_0203_0405,
    } satisfies PacketHeader);
  });

  it('keeps bytes >= 0x80 of channel and salt exact in the hex strings', () => {
    const channel = hex('80ff00fe7f01c0de');
    const salt = hex('ffffffffffffffff00000000000000ff');
    const decoded = decodeHeader(datagramOf(encodeHeader(PacketType.HEARTBEAT, channel, salt, 0))) as PacketHeader;
    expect(decoded.channel).toHaveLength(16);
    expect(decoded.salt).toHaveLength(32);
    expect(Buffer.from(decoded.channel, 'hex')).toEqual(channel);
    expect(Buffer.from(decoded.salt, 'hex')).toEqual(salt);
  });

  it.each([
    ['0', 0],
    ['1', 1],
    ['2^32 - 1', 0xffff_ffff],
    ['2^32', 0x1_0000_0000],
    ['2^32 + 1', 0x1_0000_0001],
    ['2^52 + 1', 2 ** 52 + 1],
    ['MAX_SAFE_INTEGER - 1', Number.MAX_SAFE_INTEGER - 1],
    ['MAX_SAFE_INTEGER', Number.MAX_SAFE_INTEGER],
  ])('round-trips counter %s exactly', (_name, counter) => {
    const decoded = decodeHeader(datagramOf(encodeHeader(PacketType.DATA, CHANNEL, SALT, counter)));
    expect(decoded).toMatchObject({ counter });
  });

  it.each([
    ['2^53 (MAX_SAFE_INTEGER + 1)', '0020000000000000'],
    ['2^53 + 1', '0020000000000001'],
    ['2^63', '8000000000000000'],
    ['2^64 - 1', 'ffffffffffffffff'],
    ['high word 0x00200000 exactly', '00200000ffffffff'],
  ])("refuses counter %s with 'bad_counter'", (_name, counterHex) => {
    const datagram = datagramOf(encodeHeader(PacketType.DATA, CHANNEL, SALT, 0));
    hex(counterHex).copy(datagram, COUNTER_OFFSET);
    expect(decodeHeader(datagram)).toBe('bad_counter' satisfies HeaderError);
  });

  it.each([
    ['empty', 0],
    ['1 byte', 1],
    ['33 bytes (less than a header)', 33],
    ['34 bytes (a header, no tag)', 34],
    ['49 bytes (one short of header + tag)', 49],
  ])("refuses %s with 'too_short'", (_name, length) => {
    const datagram = Buffer.alloc(length);
    encodeHeader(PacketType.DATA, CHANNEL, SALT, 0).copy(datagram, 0, 0, Math.min(length, HEADER_BYTES));
    expect(decodeHeader(datagram)).toBe('too_short' satisfies HeaderError);
  });

  it('accepts exactly header + tag (50 bytes: an empty payload)', () => {
    const datagram = datagramOf(encodeHeader(PacketType.CLOSE, CHANNEL, SALT, 3));
    expect(datagram.length).toBe(50);
    expect(decodeHeader(datagram)).toMatchObject({ type: PacketType.CLOSE, counter: 3 });
  });

  it.each([0x00, 0x01, 0x9f, 0xb0, 0xff])("refuses a first byte %i that is no autoprox version with 'not_autoprox'", (version) => {
    const datagram = datagramOf(encodeHeader(PacketType.DATA, CHANNEL, SALT, 0));
    datagram[0] = version;
    expect(decodeHeader(datagram)).toBe('not_autoprox' satisfies HeaderError);
  });

  it.each([0xa0, 0xa2, 0xaf])("refuses a datagram of another autoprox version (%i) with 'version'", (version) => {
    const datagram = datagramOf(encodeHeader(PacketType.DATA, CHANNEL, SALT, 0));
    datagram[0] = version;
    expect(decodeHeader(datagram)).toBe('version' satisfies HeaderError);
  });

  it("says 'version' for a real v0 datagram, even the smallest (a 42-byte v0 CLOSE)", () => {
    const v0Close = Buffer.concat([hex('a003 0102030405060708 1112131415161718 0000000000000003'), Buffer.alloc(16)]);
    expect(v0Close.length).toBe(42);
    expect(decodeHeader(v0Close)).toBe('version');
    // Noise that merely starts with 0xa0 is not taken for v0: no type, or too short.
    expect(decodeHeader(Buffer.concat([hex('a007'), Buffer.alloc(60)]))).toBe('not_autoprox');
    expect(decodeHeader(Buffer.concat([hex('a002'), Buffer.alloc(20)]))).toBe('not_autoprox');
  });

  it.each([0, 4, 5, 0x7f, 0x80, 0xff])("refuses type byte %i with 'bad_type'", (type) => {
    const datagram = datagramOf(encodeHeader(PacketType.DATA, CHANNEL, SALT, 0));
    datagram[1] = type;
    expect(decodeHeader(datagram)).toBe('bad_type' satisfies HeaderError);
  });

  it('checks the version first, then length, then type, then counter', () => {
    const all = Buffer.alloc(49, 0xff); // not autoprox, too short, bad type, bad counter
    expect(decodeHeader(all)).toBe('not_autoprox');
    all[0] = 0xa1;
    expect(decodeHeader(all)).toBe('too_short');
    const badAll = Buffer.alloc(50, 0xff);
    badAll[0] = 0xa1;
    expect(decodeHeader(badAll)).toBe('bad_type');
    badAll[1] = PacketType.DATA;
    expect(decodeHeader(badAll)).toBe('bad_counter');
  });

  it('reads the header from hex bytes written by hand', () => {
    const datagram = Buffer.concat([hex('a103 deadbeefcafef00d 00112233445566778899aabbccddeeff 000000000000abcd'), Buffer.alloc(16)]);
    expect(decodeHeader(datagram)).toEqual({
      type: PacketType.CLOSE,
      channel: 'deadbeefcafef00d',
      salt: '00112233445566778899aabbccddeeff',
      counter: 0xabcd,
    });
  });

  it('property: decodeHeader(encodeHeader(h) + body + tag) gives h back', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(PacketType.HEARTBEAT, PacketType.DATA, PacketType.CLOSE),
        fc.uint8Array({ minLength: 8, maxLength: 8 }),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.integer({ min: 0, max: 64 }),
        (type, channel, salt, counter, bodyBytes) => {
          const header = encodeHeader(type, Buffer.from(channel), Buffer.from(salt), counter);
          expect(header.readBigUInt64BE(COUNTER_OFFSET)).toBe(BigInt(counter));
          expect(decodeHeader(datagramOf(header, bodyBytes))).toEqual({
            type,
            channel: Buffer.from(channel).toString('hex'),
            salt: Buffer.from(salt).toString('hex'),
            counter,
          });
        },
      ),
      { numRuns: 300 },
    );
  });
});
