/**
 * A channel (the sessions of one pre-shared key) and the peer sides of its sessions, driven by
 * real datagrams built with the codec: what is opened once, what costs a key derivation, what
 * each session takes, where drops are counted; a session's salt renewed when it loses its path.
 * The network is a recording sender; time is a fake clock.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Endpoint } from '../../machines/endpoint.js';
import type { SessionEvent } from '../../machines/types.js';
import { createLogger } from '../../src/log.js';
import { Channel, type ChannelDrops } from '../../src/io/channel.js';
import { EARLY_DATA_MAX_DATAGRAMS, newLinkStats, PeerLink } from '../../src/io/peer-link.js';
import { PreauthGate } from '../../src/limits/preauth-gate.js';
import { KeySchedule, open, seal } from '../../src/protocol/crypto.js';
import { decodeHeartbeat, encodeHeartbeat } from '../../src/protocol/heartbeat.js';
import { decodeHeader, encodeHeader, PacketType, type PacketHeader } from '../../src/protocol/packet.js';
import { HeartbeatWheel } from '../../src/io/heartbeat-wheel.js';
import { FakeClock } from '../helpers/fake-clock.js';

const TIMING = { heartbeatMs: 1000, peerTimeoutMs: 5000 };

const PEER: Endpoint = { family: 'ipv4', address: '192.0.2.9', port: 40000 };
const log = createLogger('silent');

function world(options: { perSourcePerS?: number; totalPerS?: number } = {}) {
  const psk = randomBytes(32);
  const clock = new FakeClock();
  const drops: ChannelDrops = { preauth_limited: 0, preauth_budget: 0, auth_failed: 0, replay: 0, malformed: 0, unknown_peer: 0 };
  const gate = new PreauthGate({ perSourcePerS: options.perSourcePerS ?? 0, totalPerS: options.totalPerS ?? 0 });
  const channel = new Channel<PeerLink>(new KeySchedule(psk).channelId().toString('hex'), psk, drops, gate);
  const sent: Array<{ to: Endpoint; datagram: Buffer }> = [];
  const wheel = new HeartbeatWheel(clock, (err) => {
    throw err;
  });
  const member = () => {
    const events: SessionEvent[] = [];
    const delivered: Buffer[] = [];
    const stats = newLinkStats();
    const link = new PeerLink({
      id: `s${sent.length}`,
      channel,
      sender: { send: (to, pieces) => (sent.push({ to, datagram: Buffer.concat(pieces) }), true) },
      log,
      deny: () => null,
      udpOutPerS: 0,
      stats,
      deliver: (p) => delivered.push(p),
      clock,
      wheel,
      timing: TIMING,
    });
    link.join((e) => events.push(e));
    return { link, events, delivered, stats };
  };
  /** The peer's own keys (the channel's are the server's: counted by one test). */
  const keys = new KeySchedule(psk);
  /** A peer session of this key: sealed datagrams from it. */
  const peer = (salt = randomBytes(16)) => {
    let counter = 0;
    const build = (type: PacketType, key: ReturnType<KeySchedule['heartbeatKey']>, plaintext: Buffer) =>
      Buffer.concat(seal(key, encodeHeader(type, keys.channelId(), salt, counter++), plaintext));
    return {
      salt,
      hex: salt.toString('hex'),
      heartbeat: (echo: { salt: string; sentAt: number } | null = null) =>
        build(PacketType.HEARTBEAT, keys.heartbeatKey(salt), encodeHeartbeat({ sentAt: 5, echoSalt: echo?.salt ?? null, echoSentAt: echo?.sentAt ?? 0, echoDelayMs: 0 })),
      data: (to: string, payload: string) => build(PacketType.DATA, keys.dataKey(salt, Buffer.from(to, 'hex')), Buffer.from(payload)),
      close: (to: string) => build(PacketType.CLOSE, keys.dataKey(salt, Buffer.from(to, 'hex')), Buffer.alloc(0)),
    };
  };
  const deliver = (datagram: Buffer, from: Endpoint = PEER) => channel.receive(decodeHeader(datagram) as PacketHeader, datagram, from, clock.now());
  return { channel, drops, gate, sent, member, peer, deliver, keys, clock };
}

/** Counts the key derivations of the channel's key schedule from now on. */
function countDerivations(channel: Channel<PeerLink>): () => number {
  const derive = channel.keys.heartbeatKey.bind(channel.keys);
  let count = 0;
  channel.keys.heartbeatKey = (salt) => (count++, derive(salt));
  return () => count;
}

describe('channel', () => {
  it('opens a heartbeat once for every session that wants it, and a repeated salt costs no new key derivation', () => {
    const w = world();
    const a = w.member();
    const b = w.member();
    const derivations = countDerivations(w.channel);
    const p = w.peer();
    for (let i = 0; i < 5; i++) w.deliver(p.heartbeat());
    expect(a.events.filter((e) => e.type === 'peer.heartbeat')).toHaveLength(5);
    expect(b.events.filter((e) => e.type === 'peer.heartbeat')).toHaveLength(5);
    expect(derivations()).toBe(1);
  });

  it('drops, counted once in the channel: a forged heartbeat, a replay for everyone, DATA of a salt nobody heard', () => {
    const w = world();
    const a = w.member();
    const p = w.peer();
    const good = p.heartbeat();
    w.deliver(good);
    w.deliver(good); // a replay
    const forged = Buffer.from(p.heartbeat());
    forged[forged.length - 1]! ^= 1;
    w.deliver(forged);
    w.deliver(w.peer().data(a.link.salt, 'from nobody we heard'));
    expect(w.drops).toMatchObject({ replay: 1, auth_failed: 1, unknown_peer: 1 });
    expect(a.stats.datagramsIn).toBe(1);
  });

  it('our own packet come back is our own drop; another session of ours on the channel takes it', () => {
    const w = world();
    const a = w.member();
    a.link.sendHeartbeat(PEER, null);
    w.deliver(w.sent.at(-1)!.datagram);
    expect(a.stats.drops.own_packet).toBe(1);
    const b = w.member();
    a.link.sendHeartbeat(PEER, null);
    w.deliver(w.sent.at(-1)!.datagram);
    expect(b.events.filter((e) => e.type === 'peer.heartbeat')).toHaveLength(1); // two clients of one server meet
    expect(a.stats.drops.own_packet).toBe(1);
  });

  it('the pre-auth budget applies to peers not on an established path, never to a path peer', () => {
    const w = world({ totalPerS: 4 }); // a burst of 1
    const a = w.member();
    const p = w.peer();
    w.deliver(p.heartbeat());
    w.deliver(p.heartbeat());
    expect(w.drops.preauth_budget).toBe(1);
    a.link.openPath(p.hex, PEER, null, 1);
    for (let i = 0; i < 10; i++) w.deliver(p.heartbeat());
    for (let i = 0; i < 10; i++) w.deliver(p.data(a.link.salt, `m${i}`));
    expect(w.drops.preauth_budget).toBe(1);
    expect(a.delivered.map(String)).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
  });

  it('a fleet on one key: a path peer\'s heartbeat asks its session alone, whatever the number of sessions; a waiting one still hears newcomers', () => {
    const w = world();
    const FLEET = 2000;
    const fleet = Array.from({ length: FLEET }, () => ({ m: w.member(), p: w.peer() }));
    for (const { m, p } of fleet) m.link.openPath(p.hex, PEER, null, 1);
    const waiting = w.member();
    const asked = new Map<PeerLink, number>();
    for (const { m } of [...fleet, { m: waiting }]) {
      const wants = m.link.wantsHeartbeat.bind(m.link);
      m.link.wantsHeartbeat = (salt, counter) => (asked.set(m.link, (asked.get(m.link) ?? 0) + 1), wants(salt, counter));
    }
    const { m: one, p: itsPeer } = fleet[1234]!;
    for (let i = 0; i < 3; i++) w.deliver(itsPeer.heartbeat({ salt: one.link.salt, sentAt: w.clock.now() }));
    expect([...asked]).toEqual([[one.link, 3]]);
    expect(one.stats.datagramsIn).toBe(3); // taken, by that session alone
    expect(fleet.reduce((n, { m }) => n + m.stats.datagramsIn, 0)).toBe(3);

    const newcomer = w.peer();
    w.deliver(newcomer.heartbeat());
    expect(asked.get(waiting.link)).toBe(1);
    expect(waiting.events.filter((e) => e.type === 'peer.heartbeat')).toHaveLength(1);
    expect(asked.size).toBe(2); // no established session was asked

    // Two of ours that both adopted one peer session (it answered both while it decided): both
    // hear it until one lets go; the other keeps it.
    const [x, y] = [w.member(), w.member()];
    const shared = w.peer();
    x.link.openPath(shared.hex, PEER, null, 1);
    y.link.openPath(shared.hex, PEER, null, 1);
    w.deliver(shared.heartbeat());
    expect([x.stats.datagramsIn, y.stats.datagramsIn]).toEqual([1, 1]);
    w.deliver(shared.data(y.link.salt, 'for y'));
    expect(y.delivered.map(String)).toEqual(['for y']);
    x.link.closePath();
    w.deliver(shared.heartbeat());
    w.deliver(shared.data(y.link.salt, 'still y'));
    expect([x.stats.datagramsIn, y.stats.datagramsIn]).toEqual([1, 4]); // y: two heartbeats, two DATA
    expect(y.delivered.map(String)).toEqual(['for y', 'still y']);
    // A waiting one of ours that the path's peer answers hears it; other heartbeats of it, not.
    const z = w.member();
    w.deliver(shared.heartbeat());
    expect(z.events).toHaveLength(0);
    w.deliver(shared.heartbeat({ salt: z.link.salt, sentAt: w.clock.now() }));
    expect(z.events).toMatchObject([{ type: 'peer.heartbeat', peerSalt: shared.hex, echoesUs: true }]);
    x.link.dispose();
    y.link.dispose();
    z.link.dispose();

    // Every session gone: the channel holds nothing (leaving is as cheap as joining).
    for (const { m } of [...fleet, { m: waiting }]) m.link.dispose();
    expect(w.channel.size).toBe(0);
    w.deliver(itsPeer.heartbeat());
    expect(w.drops.unknown_peer).toBe(1);
  });
});

describe('peer link', () => {
  it('holds authenticated early DATA of a heard peer and delivers it, in order, when the path comes up', () => {
    const w = world();
    const a = w.member();
    const p = w.peer();
    const other = w.peer();
    w.deliver(p.heartbeat());
    w.deliver(other.heartbeat());
    w.deliver(p.data(a.link.salt, 'early 1'));
    w.deliver(other.data(a.link.salt, 'not adopted'));
    w.deliver(p.data(a.link.salt, 'early 2'));
    expect(a.delivered).toEqual([]);
    a.link.openPath(p.hex, PEER, null, 1);
    expect(a.delivered.map(String)).toEqual(['early 1', 'early 2']);
    expect(a.stats.drops.unknown_peer).toBe(1);
  });

  it('bounds what it holds, counting what it had to drop', () => {
    const w = world();
    const a = w.member();
    const p = w.peer();
    w.deliver(p.heartbeat());
    for (let i = 0; i < EARLY_DATA_MAX_DATAGRAMS + 3; i++) w.deliver(p.data(a.link.salt, `e${i}`));
    expect(a.link.footprint().early).toBe(EARLY_DATA_MAX_DATAGRAMS);
    expect(a.stats.drops.early_overflow).toBe(3);
  });

  it('takes a new salt when it loses its path: what was sealed for the old one opens no more, CLOSE still goes as the path was', () => {
    const w = world();
    const a = w.member();
    const p = w.peer();
    w.deliver(p.heartbeat());
    a.link.openPath(p.hex, PEER, null, 1);
    const before = a.link.salt;
    const recorded = p.data(before, 'recorded');
    w.deliver(recorded);
    expect(a.delivered.map(String)).toEqual(['recorded']);
    a.link.closePath();
    expect(a.link.salt).not.toBe(before);
    expect(a.link.ownSalts).toContain(before); // its packets in flight are still its own
    w.deliver(recorded);
    w.deliver(p.data(before, 'for the old salt'));
    expect(a.delivered.map(String)).toEqual(['recorded']);
    expect(a.stats.drops.auth_failed + a.stats.drops.replay).toBe(2);
    a.link.sendClose();
    const close = w.sent.at(-1)!;
    const header = decodeHeader(close.datagram) as PacketHeader;
    expect(header.type).toBe(PacketType.CLOSE);
    expect(header.salt).toBe(before);
    expect(open(w.keys.dataKey(Buffer.from(before, 'hex'), p.salt), close.datagram)).toEqual(Buffer.alloc(0));
  });

  it('one counter for all its packets, whatever the key: no nonce ever repeats in a session', () => {
    const w = world();
    const a = w.member();
    const p = w.peer();
    w.deliver(p.heartbeat());
    a.link.sendHeartbeat(PEER, null);
    a.link.openPath(p.hex, PEER, { salt: p.hex, sentAt: 5, at: w.clock.now() }, 1); // a heartbeat at once
    a.link.sendData(Buffer.from('d'));
    a.link.closePath();
    a.link.sendHeartbeat(PEER, null);
    const counters = w.sent.map((s) => (decodeHeader(s.datagram) as PacketHeader).counter);
    expect(counters).toEqual([0, 1, 2, 3]);
    const echo = decodeHeartbeat(open(w.keys.heartbeatKey(Buffer.from(a.link.ownSalts[1]!, 'hex')), w.sent[1]!.datagram)!);
    expect(echo).toMatchObject({ echoSalt: p.hex });
  });
});

describe('peer link: an established path kept by the IO (the heartbeat wheel, a fake clock)', () => {
  /** a's session established with peer p, whose heartbeats echo what a sent last. */
  function established() {
    const w = world();
    const a = w.member();
    const p = w.peer();
    w.deliver(p.heartbeat());
    a.link.openPath(p.hex, PEER, { salt: p.hex, sentAt: 5, at: w.clock.now() }, 1);
    const beats = () => w.sent.filter((s) => (decodeHeader(s.datagram) as PacketHeader).type === PacketType.HEARTBEAT);
    const lastBeat = () => decodeHeartbeat(open(w.keys.heartbeatKey(Buffer.from(a.link.salt, 'hex')), beats().at(-1)!.datagram)!) as Exclude<ReturnType<typeof decodeHeartbeat>, string>;
    /** The peer answers our latest heartbeat: a fresh echo. */
    const answer = (from: Endpoint = PEER) => w.deliver(p.heartbeat({ salt: a.link.salt, sentAt: lastBeat().sentAt }), from);
    return { ...w, a, p, beats, lastBeat, answer };
  }

  it('a heartbeat at path up, then one every heartbeat interval, echoing the peer\'s latest', () => {
    const e = established();
    expect(e.beats()).toHaveLength(1);
    e.clock.advance(999);
    expect(e.beats()).toHaveLength(1);
    e.clock.advance(20); // the wheel's resolution is 10 ms
    expect(e.beats()).toHaveLength(2);
    e.answer();
    e.clock.advance(1000);
    expect(e.beats()).toHaveLength(3);
    expect(e.lastBeat().echoSalt).toBe(e.p.hex);
    expect(e.a.events.filter((ev) => ev.type === 'peer.heartbeat')).toHaveLength(1); // only the first, before the path
  });

  it('fresh echoes keep the path; without them the watchdog says peer.silent after the peer timeout, with what to echo', () => {
    const e = established();
    for (let i = 0; i < 8; i++) {
      e.clock.advance(1000);
      e.answer();
    }
    expect(e.a.events.some((ev) => ev.type === 'peer.silent')).toBe(false);
    // The peer keeps sending, but no longer hears us: it echoes a heartbeat of ours older than the timeout.
    const stale = e.clock.now() - 5001;
    for (let i = 0; i < 5; i++) {
      e.clock.advance(1000);
      e.deliver(e.p.heartbeat({ salt: e.a.link.salt, sentAt: stale }));
    }
    e.clock.advance(20);
    const silent = e.a.events.find((ev) => ev.type === 'peer.silent');
    expect(silent).toMatchObject({ type: 'peer.silent', heard: { salt: e.p.hex, sentAt: 5 } });
    expect(e.a.events.filter((ev) => ev.type === 'peer.heartbeat')).toHaveLength(1);
  });

  it('keeps what it heard in a record of its own: the echo the machine handed it and the heard it hands back are never rewritten', () => {
    const w = world();
    const a = w.member();
    const p = w.peer();
    w.deliver(p.heartbeat());
    const given = { salt: p.hex, sentAt: 5, at: w.clock.now() };
    a.link.openPath(p.hex, PEER, given, 1);
    const answerAt = (sentAt: number) => w.deliver(p.heartbeat({ salt: a.link.salt, sentAt }));
    w.clock.advance(1000);
    answerAt(w.clock.now() - 10);
    expect(given).toEqual({ salt: p.hex, sentAt: 5, at: 1000 }); // the path heard a newer one: its own record changed, not this
    // Silence (stale echoes only), then more heartbeats after the machine was told.
    for (let i = 0; i < 6; i++) {
      w.clock.advance(1000);
      answerAt(w.clock.now() - 6000);
    }
    const silent = a.events.find((ev) => ev.type === 'peer.silent') as Extract<SessionEvent, { type: 'peer.silent' }>;
    expect(silent.heard).not.toBeNull();
    const told = { ...silent.heard! };
    w.clock.advance(1000);
    answerAt(w.clock.now() - 6000);
    expect(silent.heard).toEqual(told);
  });

  it('a fresh heartbeat from a new endpoint goes to the machine (a move); a stale one does not', () => {
    const e = established();
    const elsewhere: Endpoint = { ...PEER, port: 41234 };
    e.deliver(e.p.heartbeat({ salt: e.a.link.salt, sentAt: -1e9 }), elsewhere); // stale
    expect(e.a.events.filter((ev) => ev.type === 'peer.heartbeat')).toHaveLength(1);
    e.answer(elsewhere);
    expect(e.a.events.at(-1)).toMatchObject({ type: 'peer.heartbeat', from: elsewhere, echoesUs: true });
  });

  it('other peer sessions are not the established session\'s business: nothing reaches the machine', () => {
    const e = established();
    const other = e.peer();
    e.deliver(other.heartbeat({ salt: e.a.link.salt, sentAt: e.lastBeat().sentAt }));
    expect(e.a.events.filter((ev) => ev.type === 'peer.heartbeat')).toHaveLength(1);
  });

  it('the path leaves the wheel when it closes: no more heartbeats, no watchdog', () => {
    const e = established();
    e.a.link.closePath();
    const count = e.beats().length;
    e.clock.advance(10_000);
    expect(e.beats()).toHaveLength(count);
    expect(e.a.events.some((ev) => ev.type === 'peer.silent')).toBe(false);
    expect(e.clock.pendingTimers).toBe(0);
  });
});

