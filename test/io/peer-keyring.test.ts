/** What a session keeps of the peer sessions it heard: LRU of unbound entries, bound ones kept, data opened once. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeySchedule, seal } from '../../src/protocol/crypto.js';
import { MAX_PEER_KEYS, PeerKeyring } from '../../src/io/peer-keyring.js';
import { decodeHeader, encodeHeader, PacketType, type PacketHeader } from '../../src/protocol/packet.js';

const keys = new KeySchedule(randomBytes(32));
const channel = keys.channelId();
const salt = () => randomBytes(16);

function data(from: Buffer, to: Buffer, counter: number, payload = 'x'): { header: PacketHeader; datagram: Buffer } {
  const datagram = Buffer.concat(seal(keys.dataKey(from, to), encodeHeader(PacketType.DATA, channel, from, counter), Buffer.from(payload)));
  return { header: decodeHeader(datagram) as PacketHeader, datagram };
}

describe('PeerKeyring', () => {
  it('keeps the most recent peers; a new one evicts the least recent unbound one', () => {
    const ring = new PeerKeyring(keys);
    const salts = Array.from({ length: MAX_PEER_KEYS + 1 }, () => salt().toString('hex'));
    for (const s of salts.slice(0, MAX_PEER_KEYS)) ring.remember(s, keys.heartbeatKey(Buffer.from(s, 'hex')));
    ring.remember(salts[0]!, keys.heartbeatKey(Buffer.from(salts[0]!, 'hex'))); // refreshed: now the most recent
    ring.remember(salts[MAX_PEER_KEYS]!, keys.heartbeatKey(Buffer.from(salts[MAX_PEER_KEYS]!, 'hex')));
    expect(ring.size).toBe(MAX_PEER_KEYS);
    expect(ring.has(salts[0]!)).toBe(true);
    expect(ring.has(salts[1]!)).toBe(false);
  });

  it('never evicts a bound entry: when all are bound a new peer is not kept, unless forced (the path)', () => {
    const ring = new PeerKeyring(keys);
    const me = salt();
    for (let i = 0; i < MAX_PEER_KEYS; i++) {
      const peer = salt();
      const entry = ring.remember(peer.toString('hex'), keys.heartbeatKey(peer))!;
      const { header, datagram } = data(peer, me, 0);
      expect(ring.openData(entry, me, header, datagram)).toBeInstanceOf(Buffer);
      expect(entry.bound).toBe(true);
    }
    const late = salt().toString('hex');
    expect(ring.remember(late, keys.heartbeatKey(Buffer.from(late, 'hex')))).toBeNull();
    expect(ring.remember(late, keys.heartbeatKey(Buffer.from(late, 'hex')), true)).not.toBeNull();
    expect(ring.size).toBe(MAX_PEER_KEYS + 1);
  });

  it('opens DATA sealed for our salt once: a replay, a packet for another salt and a forgery are refused', () => {
    const ring = new PeerKeyring(keys);
    const me = salt();
    const peer = salt();
    const entry = ring.remember(peer.toString('hex'), keys.heartbeatKey(peer))!;
    const first = data(peer, me, 7, 'hello');
    expect(ring.openData(entry, me, first.header, first.datagram)?.toString()).toBe('hello');
    expect(ring.openData(entry, me, first.header, first.datagram)).toBe('replay');
    const forOther = data(peer, salt(), 8);
    expect(ring.openData(entry, me, forOther.header, forOther.datagram)).toBe('auth_failed');
    // A forgery moves nothing: counter 8 is still new afterwards.
    const genuine = data(peer, me, 8, 'next');
    expect(ring.openData(entry, me, genuine.header, genuine.datagram)?.toString()).toBe('next');
  });

  it('forgetData: after our salt changed, nothing sealed for the old one opens again, and entries are unbound', () => {
    const ring = new PeerKeyring(keys);
    const old = salt();
    const peer = salt();
    const entry = ring.remember(peer.toString('hex'), keys.heartbeatKey(peer))!;
    const recorded = data(peer, old, 1);
    expect(ring.openData(entry, old, recorded.header, recorded.datagram)).toBeInstanceOf(Buffer);
    ring.forgetData();
    expect(entry.bound).toBe(false);
    expect(entry.dataKey).toBeNull();
    const renewed = salt();
    expect(ring.openData(entry, renewed, recorded.header, recorded.datagram)).toBe('auth_failed');
  });
});
