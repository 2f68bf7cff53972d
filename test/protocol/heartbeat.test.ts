import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeHeartbeat, encodeHeartbeat, HEARTBEAT_BYTES, type Heartbeat } from '../../src/protocol/heartbeat.js';

const SALT = '0102030405060708090a0b0c0d0e0f10';

function raw(sentAt: number, salt: Buffer, echoSentAt: number, echoDelayMs: number): Buffer {
  const out = Buffer.alloc(HEARTBEAT_BYTES);
  out.writeDoubleBE(sentAt, 0);
  salt.copy(out, 8);
  out.writeDoubleBE(echoSentAt, 24);
  out.writeDoubleBE(echoDelayMs, 32);
  return out;
}

describe('heartbeat codec', () => {
  it('is 40 bytes', () => {
    expect(HEARTBEAT_BYTES).toBe(40);
  });

  it.each<[string, Heartbeat]>([
    ['no echo yet', { sentAt: 1234.5, echoSalt: null, echoSentAt: 0, echoDelayMs: 0 }],
    ['an echo', { sentAt: 99_999.125, echoSalt: SALT, echoSentAt: 98_000.5, echoDelayMs: 12.75 }],
    ['an echo salt with bytes >= 0x80', { sentAt: 1, echoSalt: '80ff7f00c0ffee01ff00000000000080', echoSentAt: 2, echoDelayMs: 3 }],
    ['a salt with a single non-zero byte', { sentAt: 0, echoSalt: '00000000000000000000000000000001', echoSentAt: 0, echoDelayMs: 0 }],
    ['large clock values', { sentAt: 2 ** 52 + 0.5, echoSalt: SALT, echoSentAt: Number.MAX_VALUE, echoDelayMs: Number.MAX_VALUE }],
    ['tiny fractions', { sentAt: Number.MIN_VALUE, echoSalt: SALT, echoSentAt: 1e-300, echoDelayMs: Number.EPSILON }],
    ['negative clocks (only the delay must be >= 0)', { sentAt: -5, echoSalt: null, echoSentAt: -1e9, echoDelayMs: 0 }],
  ])('round-trips %s', (_name, hb) => {
    const bytes = encodeHeartbeat(hb);
    expect(bytes).toHaveLength(HEARTBEAT_BYTES);
    expect(decodeHeartbeat(bytes)).toEqual(hb);
  });

  it('writes the documented layout: BE float64 sentAt, 16 salt bytes, BE float64 echoSentAt and delay', () => {
    const bytes = encodeHeartbeat({ sentAt: 1, echoSalt: SALT, echoSentAt: 2, echoDelayMs: 0.5 });
    expect(bytes.toString('hex')).toBe(
      '3ff0000000000000' + '0102030405060708090a0b0c0d0e0f10' + '4000000000000000' + '3fe0000000000000',
    );
  });

  it('writes zeros for "no echo", and all-zero salt bytes decode as null', () => {
    const bytes = encodeHeartbeat({ sentAt: 1, echoSalt: null, echoSentAt: 2, echoDelayMs: 3 });
    expect(bytes.subarray(8, 24)).toEqual(Buffer.alloc(16));
    expect(decodeHeartbeat(raw(1, Buffer.alloc(16), 2, 3))).toEqual({ sentAt: 1, echoSalt: null, echoSentAt: 2, echoDelayMs: 3 });
  });

  it('decodes from a plaintext that is a view into a larger buffer', () => {
    const big = Buffer.concat([Buffer.alloc(5, 0xee), encodeHeartbeat({ sentAt: 7, echoSalt: SALT, echoSentAt: 8, echoDelayMs: 9 }), Buffer.alloc(3)]);
    expect(decodeHeartbeat(big.subarray(5, 5 + HEARTBEAT_BYTES))).toEqual({ sentAt: 7, echoSalt: SALT, echoSentAt: 8, echoDelayMs: 9 });
  });

  it.each([0, 1, 8, 16, 32, 39, 41, 64, 1200])("refuses a %i-byte plaintext with 'malformed_heartbeat'", (length) => {
    expect(decodeHeartbeat(Buffer.alloc(length))).toBe('malformed_heartbeat');
  });

  const salt = Buffer.from(SALT, 'hex');
  it.each<[string, Buffer]>([
    ['NaN sentAt', raw(Number.NaN, salt, 0, 0)],
    ['Infinity sentAt', raw(Number.POSITIVE_INFINITY, salt, 0, 0)],
    ['-Infinity sentAt', raw(Number.NEGATIVE_INFINITY, salt, 0, 0)],
    ['NaN echoSentAt', raw(0, salt, Number.NaN, 0)],
    ['Infinity echoSentAt', raw(0, salt, Number.POSITIVE_INFINITY, 0)],
    ['-Infinity echoSentAt', raw(0, salt, Number.NEGATIVE_INFINITY, 0)],
    ['NaN echoDelayMs', raw(0, salt, 0, Number.NaN)],
    ['Infinity echoDelayMs', raw(0, salt, 0, Number.POSITIVE_INFINITY)],
    ['-Infinity echoDelayMs', raw(0, salt, 0, Number.NEGATIVE_INFINITY)],
    ['negative echoDelayMs (-1)', raw(0, salt, 0, -1)],
    ['negative echoDelayMs (-MIN_VALUE)', raw(0, salt, 0, -Number.MIN_VALUE)],
    ['all 0xff bytes (NaN everywhere)', Buffer.alloc(HEARTBEAT_BYTES, 0xff)],
  ])("refuses %s with 'malformed_heartbeat'", (_name, bytes) => {
    expect(decodeHeartbeat(bytes)).toBe('malformed_heartbeat');
  });

  it('refuses a NaN with a non-canonical bit pattern (signalling NaN) too', () => {
    const bytes = raw(0, salt, 0, 0);
    bytes.write('7ff0000000000001', 0, 'hex');
    expect(decodeHeartbeat(bytes)).toBe('malformed_heartbeat');
  });

  it('property: decode(encode(hb)) equals hb for finite clocks, a non-negative delay and any salt', () => {
    const finite = fc.double({ noNaN: true, noDefaultInfinity: true });
    const echoSalt = fc.option(
      fc.uint8Array({ minLength: 16, maxLength: 16 }).filter((b) => b.some((x) => x !== 0)).map((b) => Buffer.from(b).toString('hex')),
    );
    fc.assert(
      fc.property(finite, echoSalt, finite, fc.double({ min: 0, noNaN: true, noDefaultInfinity: true }), (sentAt, salt, echoSentAt, echoDelayMs) => {
        const hb: Heartbeat = { sentAt, echoSalt: salt, echoSentAt, echoDelayMs };
        expect(decodeHeartbeat(encodeHeartbeat(hb))).toEqual(hb);
      }),
      { numRuns: 300 },
    );
  });
});
