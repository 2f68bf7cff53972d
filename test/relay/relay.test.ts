/**
 * The relay on real UDP sockets (loopback), with the servers' binding code (RelayBinder) on
 * real sockets of their own: two holders of a PSK bind and are forwarded between, unchanged;
 * a tenant who holds the relay secret but not the PSK, a recording replayed from another
 * address, a wrong relay secret and a flood of garbage all bind nothing and divert nothing.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { createLogger } from '../../src/log.js';
import { RelayBinder } from '../../src/io/relay-binder.js';
import { KeySchedule } from '../../src/protocol/crypto.js';
import { encodeHeader, PacketType } from '../../src/protocol/packet.js';
import { admissionKey, bindProof, sign } from '../../src/protocol/relay-auth.js';
import { BIND_REQUEST_BYTES, CHALLENGE_BYTES, decodeRelayMessage, encodeRelayMessage, RelayType, type Endpoint } from '../../src/protocol/relay-packet.js';
import { decodeStun, encodeBindingRequest, mappedEndpointOf } from '../../src/protocol/stun.js';
import { resolveRelayConfig } from '../../src/relay/relay-config.js';
import { startRelay, type RelayHandle } from '../../src/relay/start-relay.js';
import { eventually } from '../helpers/waiter.js';

const SECRET = 'relay-test-secret';
const relays: RelayHandle[] = [];
const sockets: Socket[] = [];
const binders: RelayBinder[] = [];

afterEach(async () => {
  for (const b of binders.splice(0)) b.stop();
  for (const s of sockets.splice(0)) s.close();
  await Promise.all(relays.splice(0).map((r) => r.close()));
});

async function relay(flags: Record<string, string> = {}): Promise<RelayHandle> {
  const config = resolveRelayConfig({ 'udp-port': '0', port: '0', 'no-ipv6': true, ...flags });
  const handle = await startRelay({ ...config, relaySecret: SECRET }, { log: createLogger('silent') });
  relays.push(handle);
  return handle;
}

/** A UDP socket on 127.0.0.x with everything it receives, by sender. */
async function endpoint(address = '127.0.0.1'): Promise<{ socket: Socket; at: Endpoint; received: Array<{ bytes: Buffer; from: string }> }> {
  const socket = createSocket('udp4');
  sockets.push(socket);
  const received: Array<{ bytes: Buffer; from: string }> = [];
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  socket.on('message', (bytes, rinfo) => received.push({ bytes, from: `${rinfo.address}:${rinfo.port}` }));
  return { socket, at: { family: 'ipv4', address, port: socket.address().port }, received };
}

/** A server's side: a socket and a binder for `psk` at `r`; relay control messages go to the binder. */
async function server(r: RelayHandle, psk: Buffer, secret = SECRET, address = '127.0.0.1') {
  const end = await endpoint(address);
  const keys = new KeySchedule(psk);
  const to: Endpoint = { family: 'ipv4', address: '127.0.0.1', port: r.udp.ipv4! };
  /** What the binder sent to the relay: what an observer on the wire records. */
  const sent: Buffer[] = [];
  const binder = new RelayBinder({
    relay: to,
    channel: keys.channelId(),
    bindKey: keys.relayBindKey(),
    admissionKey: admissionKey(secret),
    send: (bytes, dest) => {
      sent.push(Buffer.from(bytes));
      end.socket.send(bytes, dest.port, dest.address);
    },
    clock: systemClock,
  });
  binders.push(binder);
  end.socket.on('message', (bytes) => binder.handle(bytes));
  binder.start();
  return { ...end, binder, keys, relayAt: to, sent };
}

/** A datagram that looks like a server's own (a DATA header and 40 bytes): the relay forwards it unread. */
function serverDatagram(channel: Buffer, tag: number): Buffer {
  return Buffer.concat([encodeHeader(PacketType.DATA, channel, randomBytes(16), tag), randomBytes(40)]);
}

const forwardedOf = (r: RelayHandle) => r.relay.counters.forwardedDatagrams;

describe('the relay between two holders of a PSK', () => {
  it('binds both ends, pairs them, and forwards their datagrams unchanged both ways (and nothing to anyone else)', async () => {
    const r = await relay();
    const psk = randomBytes(32);
    const [a, b] = await Promise.all([server(r, psk), server(r, psk)]);
    await eventually(() => a.binder.state === 'paired' && b.binder.state === 'paired', 'both ends paired');
    expect(a.binder.paired).toEqual([b.at]);
    expect(b.binder.paired).toEqual([a.at]);
    expect(a.binder.observed).toEqual(a.at); // the relay saw the socket where it is
    expect(r.relay.table).toMatchObject({ ends: 2, pairs: 1 });

    const fromA = Array.from({ length: 20 }, (_, i) => serverDatagram(a.keys.channelId(), i));
    const fromB = Array.from({ length: 20 }, (_, i) => serverDatagram(b.keys.channelId(), 100 + i));
    for (const d of fromA) a.socket.send(d, a.relayAt.port, a.relayAt.address);
    for (const d of fromB) b.socket.send(d, b.relayAt.port, b.relayAt.address);
    const relayKey = `127.0.0.1:${r.udp.ipv4}`;
    const data = (e: { received: Array<{ bytes: Buffer; from: string }> }) => e.received.filter((m) => m.from === relayKey && m.bytes[1] === PacketType.DATA).map((m) => m.bytes.toString('hex'));
    await eventually(() => data(b).length === 20 && data(a).length === 20, 'twenty datagrams each way');
    expect(data(b)).toEqual(fromA.map((d) => d.toString('hex')));
    expect(data(a)).toEqual(fromB.map((d) => d.toString('hex')));
    expect(forwardedOf(r)).toBe(40);
  });

  it('another tenant (the relay secret, not the PSK) binds to the channel but is never approved: it receives nothing, and the pair goes on', async () => {
    const r = await relay();
    const psk = randomBytes(32);
    const [a, b] = await Promise.all([server(r, psk), server(r, psk)]);
    await eventually(() => a.binder.state === 'paired' && b.binder.state === 'paired', 'both ends paired');
    // The tenant knows the channel id (it is on the wire) and the relay secret, and guesses a key.
    const tenant = await endpoint('127.0.0.2');
    const wrongKeys = new KeySchedule(randomBytes(32));
    const channel = a.keys.channelId();
    const wait = (pred: () => boolean) => eventually(pred, 'an answer');
    tenant.socket.send(sign(admissionKey(SECRET), encodeRelayMessage({ type: RelayType.BIND_REQUEST, channel })), r.udp.ipv4!, '127.0.0.1');
    await wait(() => tenant.received.length === 1);
    const challenge = decodeRelayMessage(tenant.received[0]!.bytes);
    if (challenge?.type !== RelayType.CHALLENGE) throw new Error('no challenge');
    const nonce = randomBytes(16);
    const proof = bindProof(wrongKeys.relayBindKey(), channel, challenge.observed, nonce);
    tenant.socket.send(sign(admissionKey(SECRET), encodeRelayMessage({ type: RelayType.BIND, channel, cookie: challenge.cookie, nonce, proof })), r.udp.ipv4!, '127.0.0.1');
    await wait(() => tenant.received.length === 2); // BOUND: it is an end, listing a and b
    const bound = decodeRelayMessage(tenant.received[1]!.bytes);
    expect(bound).toMatchObject({ type: RelayType.BOUND, ends: [{ paired: false }, { paired: false }] });
    // It approves both; they check its proof and do not approve it back.
    for (const end of bound!.type === RelayType.BOUND ? bound!.ends : []) {
      tenant.socket.send(sign(admissionKey(SECRET), encodeRelayMessage({ type: RelayType.APPROVE, channel, cookie: challenge.cookie, nonce, peer: end.nonce })), r.udp.ipv4!, '127.0.0.1');
    }
    await eventually(() => r.relay.counters.approvals >= 4, 'the tenant\'s approvals taken');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(r.relay.table).toMatchObject({ ends: 3, pairs: 1 });

    const before = tenant.received.length;
    for (let i = 0; i < 10; i++) a.socket.send(serverDatagram(channel, i), a.relayAt.port, a.relayAt.address);
    // Its own datagrams go nowhere either.
    for (let i = 0; i < 10; i++) tenant.socket.send(serverDatagram(channel, 50 + i), r.udp.ipv4!, '127.0.0.1');
    await eventually(() => b.received.filter((m) => m.bytes[1] === PacketType.DATA).length === 10, 'a\'s ten datagrams at b');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(tenant.received.slice(before).filter((m) => m.bytes[1] === PacketType.DATA)).toEqual([]);
    expect(a.received.filter((m) => m.bytes[1] === PacketType.DATA)).toEqual([]);
    expect(r.relay.counters.drops.unpaired).toBe(10);
    expect(a.binder.paired).toEqual([b.at]);
  });

  it('a recorded BIND replayed from another address binds nothing (its cookie is for the recorded source); with a fresh cookie its proof is wrong there', async () => {
    const r = await relay();
    const psk = randomBytes(32);
    const a = await server(r, psk);
    await eventually(() => a.binder.state === 'bound', 'a bound');
    const bind = a.sent.find((d) => d[1] === RelayType.BIND)!;
    expect(bind).toBeDefined();

    const thief = await endpoint('127.0.0.3');
    thief.socket.send(bind, r.udp.ipv4!, '127.0.0.1');
    await eventually(() => r.relay.counters.drops.bad_cookie === 1, 'the replay refused');
    expect(r.relay.table.ends).toBe(1);
    expect(thief.received).toEqual([]); // not even an answer

    // With its own cookie, the thief's end exists, but b (a real holder) checks the proof for the
    // thief's source and never approves it.
    const b = await server(r, psk);
    await eventually(() => a.binder.state === 'paired' && b.binder.state === 'paired', 'a and b paired');
    thief.socket.send(sign(admissionKey(SECRET), encodeRelayMessage({ type: RelayType.BIND_REQUEST, channel: a.keys.channelId() })), r.udp.ipv4!, '127.0.0.1');
    await eventually(() => thief.received.length === 1, 'a challenge for the thief');
    const challenge = decodeRelayMessage(thief.received[0]!.bytes);
    if (challenge?.type !== RelayType.CHALLENGE) throw new Error('no challenge');
    const stolen = decodeRelayMessage(bind);
    if (stolen?.type !== RelayType.BIND) throw new Error('not a bind');
    thief.socket.send(sign(admissionKey(SECRET), encodeRelayMessage({ type: RelayType.BIND, channel: stolen.channel, cookie: challenge.cookie, nonce: stolen.nonce, proof: stolen.proof })), r.udp.ipv4!, '127.0.0.1');
    await eventually(() => r.relay.table.ends === 3, 'the thief as an end');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(r.relay.table.pairs).toBe(1);
    expect(b.binder.paired).toEqual([a.at]);
  });

  it('a wrong relay secret earns no answer and binds nothing; a signed BIND_REQUEST earns one CHALLENGE, smaller than itself', async () => {
    const r = await relay();
    const psk = randomBytes(32);
    const outsider = await server(r, psk, 'not-the-secret');
    // The relay answers nothing the relay secret did not sign: the outsider never binds.
    await eventually(() => r.relay.counters.drops.bad_mac >= 2, 'two BIND_REQUESTs refused');
    expect(outsider.binder.state).toBe('binding');
    expect(outsider.received).toEqual([]);
    expect(r.relay.counters.challenges).toBe(0);
    // A BIND under the wrong secret, built by hand, is refused by the relay.
    const keys = outsider.keys;
    const forged = sign(admissionKey('not-the-secret'), encodeRelayMessage({ type: RelayType.BIND, channel: keys.channelId(), cookie: randomBytes(16), nonce: randomBytes(16), proof: randomBytes(16) }));
    outsider.socket.send(forged, r.udp.ipv4!, '127.0.0.1');
    const refused = r.relay.counters.drops.bad_mac;
    await eventually(() => r.relay.counters.drops.bad_mac === refused + 1, 'the forged BIND refused');
    expect(r.relay.table.ends).toBe(0);
    const probe = await endpoint();
    probe.socket.send(sign(admissionKey(SECRET), encodeRelayMessage({ type: RelayType.BIND_REQUEST, channel: randomBytes(8) })), r.udp.ipv4!, '127.0.0.1');
    await eventually(() => probe.received.length === 1, 'one challenge');
    expect(probe.received[0]!.bytes.length).toBe(CHALLENGE_BYTES);
    expect(CHALLENGE_BYTES).toBeLessThan(BIND_REQUEST_BYTES);
  });

  it('answers STUN Binding requests with the source it saw, at most the unproven budget per source', async () => {
    const r = await relay({ 'unproven-per-source-per-s': '5' });
    const client = await endpoint();
    for (let i = 0; i < 30; i++) client.socket.send(encodeBindingRequest(randomBytes(12)), r.udp.ipv4!, '127.0.0.1');
    await eventually(() => client.received.length >= 10, 'the answers in budget');
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Per source: a burst of twice the rate, then the rate.
    expect(client.received.length).toBeLessThanOrEqual(11);
    const answer = decodeStun(client.received[0]!.bytes);
    if (typeof answer === 'string') throw new Error(answer);
    expect(mappedEndpointOf(answer)).toEqual(client.at);
    expect(r.relay.counters.drops.unproven_limited).toBeGreaterThanOrEqual(19);
  });

  it('answers STUN on IPv6 too, from the same port number', async () => {
    const config = resolveRelayConfig({ 'udp-port': '0', port: '0' });
    const r = await startRelay({ ...config, relaySecret: SECRET }, { log: createLogger('silent') });
    relays.push(r);
    expect(r.udp.ipv6).toBe(r.udp.ipv4);
    const socket = createSocket({ type: 'udp6', ipv6Only: true });
    sockets.push(socket);
    await new Promise<void>((resolve) => socket.bind(0, '::1', resolve));
    const answer = new Promise<Buffer>((resolve) => socket.once('message', resolve));
    socket.send(encodeBindingRequest(randomBytes(12)), r.udp.ipv6!, '::1');
    const decoded = decodeStun(await answer);
    if (typeof decoded === 'string') throw new Error(decoded);
    expect(mappedEndpointOf(decoded)).toEqual({ family: 'ipv6', address: '::1', port: socket.address().port });
  });

  it('a flood of garbage and forgeries answers nothing but STUN, binds nothing, and the relayed pair goes on', async () => {
    const r = await relay({ 'unproven-per-source-per-s': '0', 'unproven-total-per-s': '0' });
    const psk = randomBytes(32);
    const [a, b] = await Promise.all([server(r, psk), server(r, psk)]);
    await eventually(() => a.binder.state === 'paired' && b.binder.state === 'paired', 'both ends paired');
    const attacker = await endpoint('127.0.0.4');
    const channel = a.keys.channelId();
    const DATAGRAMS = 20_000;
    const kinds = [
      () => randomBytes(1 + Math.floor(Math.random() * 200)),
      // Relay control types with random bodies of their sizes (and wrong sizes).
      () => Buffer.concat([Buffer.from([0xa1, 18]), channel, randomBytes(64)]),
      () => Buffer.concat([Buffer.from([0xa1, 20]), channel, randomBytes(64)]),
      () => Buffer.concat([Buffer.from([0xa1, 16 + Math.floor(Math.random() * 5)]), randomBytes(Math.floor(Math.random() * 100))]),
      // Server datagrams on the channel, from an unbound source.
      () => serverDatagram(channel, 1),
      // STUN-looking garbage: the cookie at bytes 4-7, a random rest.
      () => Buffer.concat([Buffer.from([0, 1, 0, 8, 0x21, 0x12, 0xa4, 0x42]), randomBytes(20)]),
    ];
    for (let i = 0; i < DATAGRAMS; i++) {
      attacker.socket.send(kinds[i % kinds.length]!(), r.udp.ipv4!, '127.0.0.1');
      if (i % 500 === 499) await new Promise((resolve) => setImmediate(resolve));
    }
    // Once the flood is worked off (what the socket buffers could not hold, the kernel dropped),
    // the pair still works.
    const handled = () => Object.values(r.relay.counters.drops).reduce((x, y) => x + y, 0) + r.relay.counters.challenges;
    let last = -1;
    await eventually(() => {
      const now = handled();
      const stable = now === last;
      last = now;
      return stable;
    }, 'the flood worked off');
    expect(handled()).toBeGreaterThan(DATAGRAMS / 4);
    a.socket.send(serverDatagram(channel, 7), a.relayAt.port, a.relayAt.address);
    await eventually(() => b.received.some((m) => m.bytes[1] === PacketType.DATA), 'a datagram through after the flood');
    // Nothing answered but STUN: no MAC verifies; a random 'STUN-looking' datagram that happens
    // to be a valid Binding request (rarely) gets its Binding answer, and nothing else does.
    for (const answer of attacker.received) {
      const stun = decodeStun(answer.bytes);
      expect(typeof stun === 'string' ? stun : stun.class).toBe('success');
    }
    expect(attacker.received.length).toBeLessThan(DATAGRAMS / kinds.length / 100);
    expect(r.relay.counters.stunAnswers).toBe(attacker.received.length);
    expect(r.relay.table).toMatchObject({ ends: 2, pairs: 1 });
    expect(r.relay.counters.binds).toBeGreaterThan(0);
    expect(a.binder.paired).toEqual([b.at]);
  });
});
