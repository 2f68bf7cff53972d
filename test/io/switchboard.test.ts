/** The UDP plane: every datagram decided once (size, version, channel), routed to its channel; the version warning bounded. */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { HeartbeatWheel } from '../../src/io/heartbeat-wheel.js';
import { newLinkStats, PeerLink } from '../../src/io/peer-link.js';
import { Switchboard, VERSION_LOG_LINES_PER_MINUTE } from '../../src/io/switchboard.js';
import { KeySchedule, seal } from '../../src/protocol/crypto.js';
import { encodeHeartbeat } from '../../src/protocol/heartbeat.js';
import { encodeHeader, PacketType } from '../../src/protocol/packet.js';
import { encodeBindingRequest } from '../../src/protocol/stun.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { captureLogs } from '../helpers/logs.js';

function board() {
  const clock = new FakeClock();
  const { log, lines } = captureLogs();
  const sb = new Switchboard<PeerLink>({ maxPayloadBytes: 1200, preauth: { perSourcePerS: 0, totalPerS: 0 }, log, clock });
  return { sb, clock, lines };
}

function heartbeatOf(psk: Buffer): Buffer {
  const keys = new KeySchedule(psk);
  const salt = randomBytes(16);
  return Buffer.concat(seal(keys.heartbeatKey(salt), encodeHeader(PacketType.HEARTBEAT, keys.channelId(), salt, 0), encodeHeartbeat({ sentAt: 1, echoSalt: null, echoSentAt: 0, echoDelayMs: 0 })));
}

describe('Switchboard', () => {
  it('counts every datagram once by what is wrong with it before any channel sees it', () => {
    const { sb } = board();
    const psk = randomBytes(32);
    sb.deliver('ipv4', Buffer.alloc(1251, 0xa1), '192.0.2.1', 1); // over max payload + 50
    sb.deliver('ipv4', Buffer.from('GET / HTTP/1.1\r\n'), '192.0.2.1', 1);
    const v0 = Buffer.from(heartbeatOf(psk));
    v0[0] = 0xa0;
    sb.deliver('ipv4', v0, '192.0.2.1', 1);
    sb.deliver('ipv4', heartbeatOf(psk), '192.0.2.1', 1); // a channel nobody here has
    expect(sb.datagramsIn).toBe(4);
    expect(sb.drops).toMatchObject({ oversized: 1, malformed: 1, version: 1, unknown_channel: 1 });
  });

  it('routes a datagram to the channel of its key, and a channel is one per key and goes when empty', () => {
    const { sb, clock } = board();
    const psk = randomBytes(32);
    const channel = sb.channelFor(psk);
    expect(sb.channelFor(Buffer.from(psk))).toBe(channel);
    expect(sb.channelFor(randomBytes(32))).not.toBe(channel);
    const events: string[] = [];
    const wheel = new HeartbeatWheel(clock, (err) => {
      throw err;
    });
    const link = new PeerLink({ id: 'x', channel, sender: sb, log: captureLogs().log, deny: () => null, udpOutPerS: 0, stats: newLinkStats(), deliver: () => {}, clock, wheel, timing: { heartbeatMs: 1000, peerTimeoutMs: 5000 } });
    link.join((e) => events.push(e.type));
    sb.deliver('ipv4', heartbeatOf(psk), '192.0.2.1', 1);
    expect(events).toEqual(['peer.heartbeat']);
    link.dispose();
    sb.release(channel);
    sb.deliver('ipv4', heartbeatOf(psk), '192.0.2.1', 1);
    expect(sb.drops.unknown_channel).toBe(1);
  });

  it('warns once per source about another protocol version, at most ten lines a minute', () => {
    const { sb, clock, lines } = board();
    const v0 = Buffer.from(heartbeatOf(randomBytes(32)));
    v0[0] = 0xa0;
    for (let i = 0; i < 3; i++) sb.deliver('ipv4', v0, '192.0.2.1', 5000);
    for (let i = 0; i < 30; i++) sb.deliver('ipv4', v0, `198.51.100.${i}`, 5000);
    const warned = () => lines.filter((l) => l.msg.includes('same protocol version')).length;
    expect(warned()).toBe(VERSION_LOG_LINES_PER_MINUTE);
    clock.advance(60_000);
    for (let i = 0; i < 30; i++) sb.deliver('ipv4', v0, `198.51.100.${i}`, 5000);
    expect(warned()).toBe(2 * VERSION_LOG_LINES_PER_MINUTE);
    expect(sb.drops.version).toBe(63);
  });

  it('sends on the socket of the family, or says there is none', async () => {
    const { sb } = board();
    const socket = createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
    const receiver = createSocket('udp4');
    await new Promise<void>((r) => receiver.bind(0, '127.0.0.1', r));
    const got = new Promise<Buffer>((resolve) => receiver.once('message', resolve));
    sb.attach('ipv4', socket);
    expect(sb.families()).toEqual(['ipv4']);
    expect(sb.send({ family: 'ipv6', address: '::1', port: 1 }, [Buffer.from('x')])).toBe(false);
    expect(sb.send({ family: 'ipv4', address: '127.0.0.1', port: receiver.address().port }, [Buffer.from('a'), Buffer.from('b')])).toBe(true);
    expect((await got).toString()).toBe('ab');
    socket.close();
    receiver.close();
  });
  it('hands STUN messages to its STUN receiver, and nothing else; without one they are malformed datagrams', () => {
    const { sb } = board();
    const stun = encodeBindingRequest(Buffer.alloc(12, 1));
    sb.deliver('ipv4', stun, '192.0.2.1', 3478);
    expect(sb.drops.malformed).toBe(1);
    const got: string[] = [];
    sb.receiveStunWith({ receive: (family, datagram, address, port) => got.push(`${family} ${address}:${port} ${datagram.length}`) });
    sb.deliver('ipv6', stun, '2001:db8::1', 3478);
    sb.deliver('ipv4', heartbeatOf(randomBytes(32)), '192.0.2.1', 3478); // autoprox: not STUN
    sb.deliver('ipv4', Buffer.concat([Buffer.from([0x00, 0x01, 0x00, 0x00]), Buffer.alloc(16)]), '192.0.2.1', 3478); // no cookie
    expect(got).toEqual(['ipv6 2001:db8::1:3478 28']);
    expect(sb.drops).toMatchObject({ malformed: 2, unknown_channel: 1 });
    expect(sb.datagramsIn).toBe(4);
  });
});
