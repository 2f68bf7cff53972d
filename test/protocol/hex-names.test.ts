/**
 * The server's cache of salt and channel-id hex (hex-names.ts): the same string for the same
 * bytes, always equal to what toString('hex') makes, bounded, and never fooled by two byte
 * strings that share the prefix it is looked up by. Real bytes, real codecs.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HexNames } from '../../src/protocol/hex-names.js';
import { decodeHeader, encodeHeader, PacketType, type PacketHeader } from '../../src/protocol/packet.js';
import { decodeHeartbeat, encodeHeartbeat, encodeHeartbeatEcho } from '../../src/protocol/heartbeat.js';

describe('HexNames', () => {
  it('names bytes as their hex, and the same bytes with the same string object', () => {
    const names = new HexNames();
    const salt = randomBytes(16);
    const datagram = Buffer.concat([randomBytes(3), salt, randomBytes(5)]);
    const first = names.name(datagram, 3, 19);
    expect(first).toBe(salt.toString('hex'));
    // From another buffer holding the same bytes: the very same string (Object.is on strings
    // compares values, so check that a second lookup made no new entry).
    expect(names.name(Buffer.from(salt), 0, 16)).toBe(first);
    expect(names.size).toBe(1);
  });

  it('gives two byte strings with the same 6-byte prefix each their own correct name', () => {
    const names = new HexNames();
    const a = randomBytes(16);
    const b = Buffer.from(a);
    b.writeUInt8(b.readUInt8(15) ^ 0xff, 15); // a forged salt: same lookup key as a, other bytes
    expect(names.name(a, 0, 16)).toBe(a.toString('hex'));
    expect(names.name(b, 0, 16)).toBe(b.toString('hex'));
    expect(names.name(a, 0, 16)).toBe(a.toString('hex'));
    expect(names.size).toBe(1);
    // A different length with the same prefix is not the cached one either.
    expect(names.name(a, 0, 8)).toBe(a.toString('hex', 0, 8));
  });

  it('keeps at most its capacity, the oldest going first, and stays correct past it', () => {
    const names = new HexNames(100);
    const salts = Array.from({ length: 1000 }, () => randomBytes(16));
    for (const salt of salts) expect(names.name(salt, 0, 16)).toBe(salt.toString('hex'));
    expect(names.size).toBe(100);
    for (const salt of salts) expect(names.name(salt, 0, 16)).toBe(salt.toString('hex'));
    expect(names.size).toBe(100);
  });

  it('does not cache what is shorter than its lookup key', () => {
    const names = new HexNames();
    expect(names.name(Buffer.from([1, 2, 3]), 0, 3)).toBe('010203');
    expect(names.size).toBe(0);
  });

  it('refuses a capacity that is not a whole number above 0', () => {
    expect(() => new HexNames(0)).toThrow(/capacity/);
    expect(() => new HexNames(1.5)).toThrow(/capacity/);
  });

  it('decodes headers and heartbeats through the cache to the same values as without it', () => {
    const names = new HexNames();
    const channel = randomBytes(8);
    const salt = randomBytes(16);
    const datagram = Buffer.concat([encodeHeader(PacketType.HEARTBEAT, channel, salt, 7), randomBytes(56)]);
    expect(decodeHeader(datagram, names)).toEqual(decodeHeader(datagram));
    expect((decodeHeader(datagram, names) as PacketHeader).salt).toBe(salt.toString('hex'));
    const echo = randomBytes(16);
    const plaintext = encodeHeartbeat({ sentAt: 5, echoSalt: echo.toString('hex'), echoSentAt: 3, echoDelayMs: 1 });
    expect(decodeHeartbeat(plaintext, names)).toEqual(decodeHeartbeat(plaintext));
    expect(names.size).toBe(3);
  });
});

describe('encodeHeartbeatEcho', () => {
  it('writes the same bytes as encodeHeartbeat, with and without an echo', () => {
    const echo = randomBytes(16);
    expect(encodeHeartbeatEcho(12.5, echo, 9, 2)).toEqual(encodeHeartbeat({ sentAt: 12.5, echoSalt: echo.toString('hex'), echoSentAt: 9, echoDelayMs: 2 }));
    expect(encodeHeartbeatEcho(1, null, 0, 0)).toEqual(encodeHeartbeat({ sentAt: 1, echoSalt: null, echoSentAt: 0, echoDelayMs: 0 }));
  });

  it('refuses an echo salt of the wrong size, and encodeHeartbeat one that is not lowercase hex', () => {
    expect(() => encodeHeartbeatEcho(1, randomBytes(15), 0, 0)).toThrow(/16 bytes/);
    expect(() => encodeHeartbeat({ sentAt: 1, echoSalt: 'A'.repeat(32), echoSentAt: 0, echoDelayMs: 0 })).toThrow(/lowercase hex/);
    expect(() => encodeHeartbeat({ sentAt: 1, echoSalt: 'g'.repeat(32), echoSentAt: 0, echoDelayMs: 0 })).toThrow(/lowercase hex/);
    expect(() => encodeHeartbeat({ sentAt: 1, echoSalt: 'a'.repeat(31), echoSentAt: 0, echoDelayMs: 0 })).toThrow(/lowercase hex/);
  });
});
