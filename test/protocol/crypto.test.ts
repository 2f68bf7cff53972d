import fc from 'fast-check';
import { createCipheriv, createHmac, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deriveChannelId, deriveDataKey, deriveHeartbeatKey, KeySchedule, open, PSK_BYTES, seal } from '../../src/protocol/crypto.js';
import {
  CHANNEL_OFFSET,
  COUNTER_OFFSET,
  encodeHeader,
  HEADER_BYTES,
  PACKET_OVERHEAD_BYTES,
  PacketType,
  SALT_OFFSET,
  TAG_BYTES,
} from '../../src/protocol/packet.js';

const PSK = Buffer.from(Array.from({ length: 32 }, (_, i) => i)); // 00 01 02 ... 1f
const OTHER_PSK = Buffer.alloc(32, 0x42);
const SALT = Buffer.from('a0a1a2a3a4a5a6a7a8a9aaabacadaeaf', 'hex');
const OTHER_SALT = Buffer.from('b0b1b2b3b4b5b6b7b8b9babbbcbdbebf', 'hex');
const THIRD_SALT = Buffer.from('c0c1c2c3c4c5c6c7c8c9cacbcccdcecf', 'hex');
/** Every key these tests seal with: the heartbeat key of SALT (sealing does not care which). */
const derivePacketKey = deriveHeartbeatKey;

/** RFC 5869 HKDF-SHA256, written out with HMAC so the test does not trust hkdfSync's use. */
function referenceHkdf(ikm: Buffer, salt: Buffer, info: string | Buffer, length: number): Buffer {
  // RFC 5869 2.2: no salt means HashLen zeros (which HMAC pads the empty key to anyway).
  const prk = createHmac('sha256', salt).update(ikm).digest();
  let block = Buffer.alloc(0);
  let out = Buffer.alloc(0);
  for (let i = 1; out.length < length; i++) {
    block = createHmac('sha256', prk).update(Buffer.concat([block, Buffer.from(info), Buffer.from([i])])).digest();
    out = Buffer.concat([out, block]);
  }
  return out.subarray(0, length);
}

const keyBytes = (key: KeyObject): Buffer => key.export();

function sealed(
  key: KeyObject,
  plaintext: Buffer,
  { type = PacketType.DATA as PacketType, channel = deriveChannelId(PSK), salt = SALT, counter = 0 } = {},
): Buffer {
  return Buffer.concat(seal(key, encodeHeader(type, channel, salt, counter), plaintext));
}

function flipBit(buffer: Buffer, bit: number): Buffer {
  const copy = Buffer.from(buffer);
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
}

describe('key derivation', () => {
  it('channel id is HKDF-SHA256(psk, salt "", info "autoprox v1 channel id")[0..8] (known answer)', () => {
    const channel = deriveChannelId(PSK);
    expect(channel.toString('hex')).toBe('e10a12515e6e43a8');
    expect(channel).toEqual(referenceHkdf(PSK, Buffer.alloc(0), 'autoprox v1 channel id', 8));
  });

  it('heartbeat key is HKDF-SHA256(psk, salt "", info "autoprox v1 heartbeat key" || sender salt) (known answer)', () => {
    const key = deriveHeartbeatKey(PSK, SALT);
    expect(key.type).toBe('secret');
    expect(key.symmetricKeySize).toBe(32);
    expect(keyBytes(key).toString('hex')).toBe('dd39785c558e6f9f31212b68349baf0f783ee0c8f1f5c5ab1ee5e9ec25f5c3b4');
    expect(keyBytes(key)).toEqual(referenceHkdf(PSK, Buffer.alloc(0), Buffer.concat([Buffer.from('autoprox v1 heartbeat key'), SALT]), 32));
  });

  it('data key is HKDF-SHA256(psk, salt "", info "autoprox v1 data key" || sender salt || receiver salt) (known answer)', () => {
    const key = deriveDataKey(PSK, SALT, OTHER_SALT);
    expect(key.symmetricKeySize).toBe(32);
    expect(keyBytes(key).toString('hex')).toBe('13bbb403123adf9c97ff66b372e07ae2efed7a6abe9b6229a655ce87e16de3c1');
    expect(keyBytes(key)).toEqual(referenceHkdf(PSK, Buffer.alloc(0), Buffer.concat([Buffer.from('autoprox v1 data key'), SALT, OTHER_SALT]), 32));
  });

  it('a KeySchedule (extract once per PSK) derives exactly what the one-shot functions do', () => {
    const schedule = new KeySchedule(PSK);
    expect(schedule.channelId()).toEqual(deriveChannelId(PSK));
    expect(keyBytes(schedule.heartbeatKey(OTHER_SALT))).toEqual(keyBytes(deriveHeartbeatKey(PSK, OTHER_SALT)));
    expect(keyBytes(schedule.dataKey(OTHER_SALT, SALT))).toEqual(keyBytes(deriveDataKey(PSK, OTHER_SALT, SALT)));
    expect(keyBytes(schedule.dataKey(OTHER_SALT, SALT))).toEqual(
      referenceHkdf(PSK, Buffer.alloc(32), Buffer.concat([Buffer.from('autoprox v1 data key'), OTHER_SALT, SALT]), 32),
    );
  });

  it('data keys are bound to both ends and to the direction', () => {
    const ab = keyBytes(deriveDataKey(PSK, SALT, OTHER_SALT));
    expect(keyBytes(deriveDataKey(PSK, OTHER_SALT, SALT))).not.toEqual(ab); // the other direction
    expect(keyBytes(deriveDataKey(PSK, SALT, THIRD_SALT))).not.toEqual(ab); // another receiver
    expect(keyBytes(deriveDataKey(PSK, THIRD_SALT, OTHER_SALT))).not.toEqual(ab); // another sender
    expect(keyBytes(deriveHeartbeatKey(PSK, SALT))).not.toEqual(ab); // another purpose
    expect(keyBytes(deriveDataKey(OTHER_PSK, SALT, OTHER_SALT))).not.toEqual(ab);
  });

  it('a DATA packet sealed for one receiver session opens for no other (nor as a heartbeat)', () => {
    const forB = sealed(deriveDataKey(PSK, SALT, OTHER_SALT), Buffer.from('for B only'));
    expect(open(deriveDataKey(PSK, SALT, OTHER_SALT), forB)).toEqual(Buffer.from('for B only'));
    expect(open(deriveDataKey(PSK, SALT, THIRD_SALT), forB)).toBeNull();
    expect(open(deriveDataKey(PSK, OTHER_SALT, SALT), forB)).toBeNull();
    expect(open(deriveHeartbeatKey(PSK, SALT), forB)).toBeNull();
  });

  it.each([
    ['0 bytes', 0],
    ['8 bytes (v0)', 8],
    ['15 bytes', 15],
    ['17 bytes', 17],
  ])('refuses a salt of %s with TypeError', (_name, length) => {
    expect(() => deriveHeartbeatKey(PSK, Buffer.alloc(length))).toThrow('sender salt must be 16 bytes');
    expect(() => deriveDataKey(PSK, Buffer.alloc(length), SALT)).toThrow('sender salt must be 16 bytes');
    expect(() => deriveDataKey(PSK, SALT, Buffer.alloc(length))).toThrow('receiver salt must be 16 bytes');
  });

  it('channel id is deterministic per PSK', () => {
    expect(deriveChannelId(PSK)).toEqual(deriveChannelId(Buffer.from(PSK)));
    expect(deriveChannelId(OTHER_PSK)).toEqual(deriveChannelId(Buffer.alloc(32, 0x42)));
  });

  it('channel id differs between PSKs (including PSKs one bit apart)', () => {
    expect(deriveChannelId(PSK)).not.toEqual(deriveChannelId(OTHER_PSK));
    expect(deriveChannelId(PSK)).not.toEqual(deriveChannelId(flipBit(PSK, 255)));
    expect(deriveChannelId(Buffer.alloc(32))).not.toEqual(deriveChannelId(Buffer.alloc(32, 0xff)));
  });

  it('channel id is not a prefix of the PSK nor of any packet key (domain separation by info label)', () => {
    const channel = deriveChannelId(PSK);
    expect(channel).toHaveLength(8);
    expect(PSK.includes(channel)).toBe(false);
    for (const salt of [SALT, OTHER_SALT, Buffer.alloc(16)]) {
      const key = keyBytes(derivePacketKey(PSK, salt));
      expect(key.subarray(0, 8)).not.toEqual(channel);
      expect(key.includes(channel)).toBe(false);
    }
  });

  it('heartbeat key is deterministic per (psk, salt) and differs per salt and per PSK', () => {
    expect(keyBytes(derivePacketKey(PSK, SALT))).toEqual(keyBytes(derivePacketKey(Buffer.from(PSK), Buffer.from(SALT))));
    expect(keyBytes(derivePacketKey(PSK, SALT))).not.toEqual(keyBytes(derivePacketKey(PSK, OTHER_SALT)));
    expect(keyBytes(derivePacketKey(PSK, SALT))).not.toEqual(keyBytes(derivePacketKey(OTHER_PSK, SALT)));
  });

  it('no key is ever the PSK itself', () => {
    expect(keyBytes(derivePacketKey(PSK, SALT))).not.toEqual(PSK);
    expect(keyBytes(deriveDataKey(PSK, SALT, OTHER_SALT))).not.toEqual(PSK);
    expect(PSK_BYTES).toBe(32);
  });

  it.each([
    ['0 bytes', 0],
    ['1 byte', 1],
    ['16 bytes', 16],
    ['31 bytes', 31],
    ['33 bytes', 33],
    ['64 bytes', 64],
  ])('refuses a PSK of %s with TypeError', (_name, length) => {
    const psk = Buffer.alloc(length, 1);
    expect(() => deriveChannelId(psk)).toThrow(TypeError);
    expect(() => deriveChannelId(psk)).toThrow('pre-shared key must be 32 bytes');
    expect(() => derivePacketKey(psk, SALT)).toThrow(TypeError);
    expect(() => derivePacketKey(psk, SALT)).toThrow('pre-shared key must be 32 bytes');
    expect(() => deriveDataKey(psk, SALT, OTHER_SALT)).toThrow('pre-shared key must be 32 bytes');
  });
});

describe('seal / open', () => {
  const key = derivePacketKey(PSK, SALT);

  it.each([
    ['empty', 0],
    ['1 byte', 1],
    ['16 bytes (one AES block)', 16],
    ['17 bytes', 17],
    ['1200 bytes (default max payload)', 1200],
  ])('round-trips a %s plaintext', (_name, length) => {
    const plaintext = randomBytes(length);
    const header = encodeHeader(PacketType.DATA, deriveChannelId(PSK), SALT, 5);
    const [h, body, tag] = seal(key, header, plaintext);
    expect(h).toBe(header); // the header is passed through, not copied
    expect(body).toHaveLength(length);
    expect(tag).toHaveLength(TAG_BYTES);
    if (length > 0) expect(body).not.toEqual(plaintext);
    const datagram = Buffer.concat([h, body, tag]);
    expect(datagram).toHaveLength(length + PACKET_OVERHEAD_BYTES);
    expect(open(key, datagram)).toEqual(plaintext);
  });

  it('is AES-256-GCM with nonce = 4 zero bytes || 8-byte BE counter and the 34-byte header as AAD (known answer)', () => {
    const plaintext = Buffer.from('hello, autoprox');
    const counter = 0x01_0203_0405;
    const header = encodeHeader(PacketType.DATA, deriveChannelId(PSK), SALT, counter);
    const nonce = Buffer.from('00000000' + '0000000102030405', 'hex');
    const cipher = createCipheriv('aes-256-gcm', keyBytes(key), nonce);
    cipher.setAAD(header);
    const expectedBody = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const expectedTag = cipher.getAuthTag();
    const [, body, tag] = seal(key, header, plaintext);
    expect(body).toEqual(expectedBody);
    expect(tag).toEqual(expectedTag);
  });

  it('an empty plaintext still carries a verifying 16-byte tag', () => {
    const datagram = sealed(key, Buffer.alloc(0));
    expect(datagram).toHaveLength(PACKET_OVERHEAD_BYTES);
    expect(open(key, datagram)).toEqual(Buffer.alloc(0));
    expect(open(key, flipBit(datagram, datagram.length * 8 - 1))).toBeNull();
  });

  const fields: Array<[string, number, number]> = [
    ['version', 0, 1],
    ['type', 1, 1],
    ['channel id', CHANNEL_OFFSET, 8],
    ['sender salt', SALT_OFFSET, 16],
    ['counter', COUNTER_OFFSET, 8],
  ];
  const tamperPlaintexts: Array<[string, Buffer]> = [
    ['empty payload', Buffer.alloc(0)],
    ['1200-byte payload', randomBytes(1200)],
  ];

  describe.each(tamperPlaintexts)('tampering (%s)', (_label, plaintext) => {
    const datagram = sealed(key, plaintext, { counter: 77 });

    it.each(fields)('a flipped bit in the %s header field makes open return null', (_name, offset, length) => {
      for (let byte = offset; byte < offset + length; byte++) {
        for (const bit of [0, 7]) {
          expect(open(key, flipBit(datagram, byte * 8 + bit))).toBeNull();
        }
      }
    });

    it('a changed version byte (any other value) makes open return null', () => {
      for (const version of [0x00, 0xa0, 0xff]) {
        const copy = Buffer.from(datagram);
        copy[0] = version;
        expect(open(key, copy)).toBeNull();
      }
    });

    it('a changed type (to every other valid type) makes open return null', () => {
      for (const type of [PacketType.HEARTBEAT, PacketType.CLOSE]) {
        const copy = Buffer.from(datagram);
        copy[1] = type;
        expect(open(key, copy)).toBeNull();
      }
    });

    it('a flipped bit in the tag (first, middle, last byte) makes open return null', () => {
      const tagStart = datagram.length - TAG_BYTES;
      for (const byte of [tagStart, tagStart + 8, datagram.length - 1]) {
        expect(open(key, flipBit(datagram, byte * 8))).toBeNull();
        expect(open(key, flipBit(datagram, byte * 8 + 7))).toBeNull();
      }
    });

    it('the untouched datagram still opens (tampering worked on copies)', () => {
      expect(open(key, datagram)).toEqual(plaintext);
    });
  });

  it('a flipped bit in the ciphertext (first, middle, last byte) makes open return null', () => {
    const datagram = sealed(key, randomBytes(1200));
    const bodyEnd = datagram.length - TAG_BYTES;
    for (const byte of [HEADER_BYTES, HEADER_BYTES + 600, bodyEnd - 1]) {
      for (const bit of [0, 3, 7]) expect(open(key, flipBit(datagram, byte * 8 + bit))).toBeNull();
    }
  });

  it('a wrong key makes open return null: other PSK, other salt, and the PSK bytes used directly', () => {
    const datagram = sealed(key, Buffer.from('secret'));
    expect(open(derivePacketKey(OTHER_PSK, SALT), datagram)).toBeNull();
    expect(open(derivePacketKey(PSK, OTHER_SALT), datagram)).toBeNull();
    expect(open(derivePacketKey(flipBit(PSK, 0), SALT), datagram)).toBeNull();
    expect(open(createSecretKey(PSK), datagram)).toBeNull();
  });

  it('a truncated or extended datagram makes open return null', () => {
    const plaintext = randomBytes(100);
    const datagram = sealed(key, plaintext);
    for (const length of [0, 1, HEADER_BYTES, PACKET_OVERHEAD_BYTES - 1, PACKET_OVERHEAD_BYTES, datagram.length - 1]) {
      expect(open(key, datagram.subarray(0, length))).toBeNull();
    }
    expect(open(key, Buffer.concat([datagram, Buffer.alloc(1)]))).toBeNull();
    // Dropping one ciphertext byte while keeping the tag also fails.
    expect(open(key, Buffer.concat([datagram.subarray(0, HEADER_BYTES + 99), datagram.subarray(-TAG_BYTES)]))).toBeNull();
  });

  it('a datagram of 50 zero bytes (shortest possible) returns null rather than throwing', () => {
    expect(open(key, Buffer.alloc(PACKET_OVERHEAD_BYTES))).toBeNull();
    expect(open(key, Buffer.alloc(PACKET_OVERHEAD_BYTES + 10))).toBeNull();
  });
});

describe('nonce uniqueness', () => {
  it('two random salts give two different packet keys: same plaintext and counter seal differently', () => {
    const saltA = randomBytes(16);
    let saltB = randomBytes(16);
    while (saltB.equals(saltA)) saltB = randomBytes(16);
    const keyA = derivePacketKey(PSK, saltA);
    const keyB = derivePacketKey(PSK, saltB);
    expect(keyBytes(keyA)).not.toEqual(keyBytes(keyB));
    const plaintext = Buffer.alloc(64, 0x61);
    const header = encodeHeader(PacketType.DATA, deriveChannelId(PSK), saltA, 0);
    const [, bodyA, tagA] = seal(keyA, header, plaintext);
    const [, bodyB, tagB] = seal(keyB, header, plaintext);
    expect(bodyA).not.toEqual(bodyB);
    expect(tagA).not.toEqual(tagB);
    // Even with the same header (same AAD and nonce), neither key opens the other's datagram.
    expect(open(keyB, Buffer.concat([header, bodyA, tagA]))).toBeNull();
    expect(open(keyA, Buffer.concat([header, bodyB, tagB]))).toBeNull();
  });

  it('successive counters give distinct keystreams: 256 seals of the same plaintext are all different', () => {
    const key = derivePacketKey(PSK, SALT);
    const plaintext = Buffer.alloc(32);
    const bodies = new Set<string>();
    const tags = new Set<string>();
    for (let counter = 0; counter < 256; counter++) {
      const [, body, tag] = seal(key, encodeHeader(PacketType.DATA, deriveChannelId(PSK), SALT, counter), plaintext);
      bodies.add(body.toString('hex'));
      tags.add(tag.toString('hex'));
    }
    expect(bodies.size).toBe(256);
    expect(tags.size).toBe(256);
  });

  it('counters that differ only in the high 32 bits still use different nonces', () => {
    const key = derivePacketKey(PSK, SALT);
    const plaintext = Buffer.alloc(32);
    const counters = [5, 2 ** 32 + 5, 2 ** 33 + 5, 2 ** 52 + 5];
    const bodies = counters.map((counter) =>
      seal(key, encodeHeader(PacketType.DATA, deriveChannelId(PSK), SALT, counter), plaintext)[1].toString('hex'),
    );
    expect(new Set(bodies).size).toBe(counters.length);
  });

  it('the nonce is the counter: with plaintext zeros, the body is the GCM keystream for counter||2', () => {
    // Independent check that nonce(counter) = 00000000 || counter (BE): AES-CTR keystream block.
    const key = derivePacketKey(PSK, SALT);
    for (const counter of [0, 1, 0xffff_ffff, 0x1_0000_0000, Number.MAX_SAFE_INTEGER]) {
      const nonce = Buffer.alloc(12);
      nonce.writeBigUInt64BE(BigInt(counter), 4);
      const ctr = createCipheriv('aes-256-ctr', keyBytes(key), Buffer.concat([nonce, Buffer.from([0, 0, 0, 2])]));
      const keystream = ctr.update(Buffer.alloc(16));
      const [, body] = seal(key, encodeHeader(PacketType.DATA, deriveChannelId(PSK), SALT, counter), Buffer.alloc(16));
      expect(body).toEqual(keystream);
    }
  });
});

describe('properties', () => {
  const types = fc.constantFrom(PacketType.HEARTBEAT, PacketType.DATA, PacketType.CLOSE);
  const salts = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((bytes) => Buffer.from(bytes));
  const plaintexts = fc.uint8Array({ minLength: 0, maxLength: 1500 }).map((bytes) => Buffer.from(bytes));
  const counters = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
  const channel = deriveChannelId(PSK);

  it('open(seal(x)) deep-equals x for any plaintext, type, salt and counter', () => {
    fc.assert(
      fc.property(plaintexts, types, salts, counters, (plaintext, type, salt, counter) => {
        const key = derivePacketKey(PSK, salt);
        const datagram = Buffer.concat(seal(key, encodeHeader(type, channel, salt, counter), plaintext));
        expect(datagram).toHaveLength(plaintext.length + PACKET_OVERHEAD_BYTES);
        expect(open(key, datagram)).toEqual(plaintext);
      }),
      { numRuns: 200 },
    );
  });

  it('any single-bit flip anywhere in a sealed datagram makes open return null', () => {
    fc.assert(
      fc.property(plaintexts, types, salts, counters, fc.nat(), (plaintext, type, salt, counter, where) => {
        const key = derivePacketKey(PSK, salt);
        const datagram = Buffer.concat(seal(key, encodeHeader(type, channel, salt, counter), plaintext));
        const bit = where % (datagram.length * 8);
        expect(open(key, flipBit(datagram, bit))).toBeNull();
      }),
      { numRuns: 200 },
    );
  });
});
