/**
 * UDP fuzz: tens of thousands of random, truncated, bit-flipped, forged and replayed datagrams
 * at the server's UDP port while a session is established. The session stays established, not
 * one byte goes back to the fuzzer, memory stays bounded, and every datagram is counted.
 *
 * The inputs come from a seeded generator: the seed is printed, and `FUZZ_SEED=<seed>` replays
 * the same datagrams (the peer's own keys and salts stay random).
 */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { PREAUTH_MAX_SOURCES } from '../../src/limits/preauth-gate.js';
import { MAX_PEER_KEYS } from '../../src/io/peer-keyring.js';
import { EARLY_DATA_MAX_DATAGRAMS } from '../../src/io/session-link.js';
import { PacketType } from '../../src/protocol/packet.js';
import { startInProcess, type InProcessServer } from '../helpers/in-process.js';
import { ScriptedPeer } from '../helpers/scripted-peer.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { SeededRandom } from '../helpers/seeded-random.js';
import { sleep, TestClient } from '../helpers/ws-client.js';

const FUZZ_DATAGRAMS = 30_000;
/** Datagrams per event-loop turn: libuv reads about 32 per turn, so the kernel buffer absorbs the rest. */
const BATCH = 40;
const random = SeededRandom.fromEnv('FUZZ_SEED');
const randomInt = (min: number, max?: number) => random.int(min, max);

let s: InProcessServer;
let peer: ScriptedPeer;
let client: TestClient;
beforeAll(async () => {
  const psk = randomBytes(32);
  s = await startInProcess({ 'punch-ms': '20', 'heartbeat-ms': '100', 'peer-timeout-ms': '2000' });
  peer = await ScriptedPeer.start('ipv4', psk);
  client = new TestClient(s.wsUrl, { hosts: ['127.0.0.1'], port: peer.endpoint.port, key: psk.toString('base64url'), token: await mintToken(TEST_SECRET, 'fuzz', 600) });
  await client.waitForStatus('UDP_ESTABLISHED');
});
afterAll(async () => {
  await client.close();
  peer.stop();
  await s.close();
});

function flip(datagram: Buffer): Buffer {
  const copy = Buffer.from(datagram);
  const bit = randomInt(copy.length * 8);
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
}

describe(`UDP fuzz while a session is established (FUZZ_SEED=${random.seed} replays it)`, () => {
  it('drops and counts everything, answers nothing, stays established and bounded', async () => {
    console.log(`fuzz seed ${random.seed} (replay: FUZZ_SEED=${random.seed})`);
    const server = { port: s.udp.ipv4!, address: '127.0.0.1' };
    // Valid material to mutate: what the peer sent (heartbeats, DATA) and a few fresh ones.
    for (let i = 0; i < 20; i++) peer.data(server as never, Buffer.from(`real ${i}`));
    await client.waitForData(20);
    const valid = peer.sent.slice(-40);
    const heard = peer.received.slice(-20).map((r) => r.datagram);

    const fuzzer = createSocket('udp4');
    await new Promise<void>((resolve) => fuzzer.bind(0, '127.0.0.7', resolve));
    const answers: Buffer[] = [];
    fuzzer.on('message', (m) => answers.push(m));

    const link = s.links.get(client.statuses[0]!.session)!;
    const dropsBefore = totalDrops();
    const receivedBefore = s.switchboard.datagramsIn;
    const authenticatedBefore = link.stats.datagramsIn;
    const kinds = [
      () => random.bytes(randomInt(0, 1500)), // noise
      () => valid[randomInt(valid.length)]!.subarray(0, randomInt(0, valid[0]!.length)), // truncated
      () => flip(valid[randomInt(valid.length)]!), // one bit flipped
      () => valid[randomInt(valid.length)]!, // replayed from another address
      () => heard[randomInt(heard.length)]!, // the server's own packets reflected back
      () => Buffer.concat([valid[0]!.subarray(0, 10), random.bytes(randomInt(0, 1400))]), // right channel, forged rest
      () => random.bytes(2000), // oversized
    ];
    for (let sent = 0; sent < FUZZ_DATAGRAMS; sent += BATCH) {
      for (let i = 0; i < BATCH; i++) fuzzer.send(kinds[randomInt(kinds.length)]!(), server.port, server.address);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await sleep(300);
    // Every datagram that reached the server is either a real one of the peer or a counted drop.
    const received = s.switchboard.datagramsIn - receivedBefore;
    const authenticated = link.stats.datagramsIn - authenticatedBefore;
    expect(received).toBeGreaterThan(FUZZ_DATAGRAMS / 2);
    expect(totalDrops() - dropsBefore).toBe(received - authenticated);

    expect(answers).toEqual([]);
    expect(client.status?.status).toBe('UDP_ESTABLISHED');
    expect(client.statuses.filter((f) => f.status !== 'UDP_ESTABLISHED').length).toBe(2); // CONNECTED, UDP_WAITING only
    expect(client.data.length).toBe(20); // nothing forged was delivered
    const footprint = link.footprint();
    expect(footprint.peerKeys).toBeLessThanOrEqual(MAX_PEER_KEYS);
    expect(footprint.early).toBeLessThanOrEqual(EARLY_DATA_MAX_DATAGRAMS);
    expect(s.preauth.tracked).toBeLessThanOrEqual(PREAUTH_MAX_SOURCES);

    // And the path still carries data both ways.
    peer.data(server as never, Buffer.from('after the fuzz'));
    await client.waitForData(21);
    client.send(Buffer.from('reply'));
    await peer.until(() => peer.dataReceived().some((d) => d.toString() === 'reply'), 'the reply');
    fuzzer.close();

    function totalDrops(): number {
      // Every drop of a received datagram, in the plane (before any session) or in the session;
      // send_failed counts datagrams the server sent, not received.
      const { send_failed: _sent, ...plane } = s.switchboard.drops;
      const planeDrops = Object.values(plane).reduce((a, b) => a + b, 0);
      const linkDrops = Object.values(link.stats.drops).reduce((a, b) => a + b, 0);
      return planeDrops + linkDrops;
    }
  });

  it('sent only authenticated packets to the peer all along', () => {
    expect(peer.received.length).toBeGreaterThan(0);
    expect(peer.received.every((r) => r.plaintext !== null && (r.header.type === PacketType.HEARTBEAT || r.header.type === PacketType.DATA))).toBe(true);
  });
});
