/**
 * Regression (issue 10, found by an attack on loopback): README promised that an on-path
 * attacker "cannot ... replay traffic without the pre-shared key", but under protocol v0 the
 * sender's packet key came from the sender's salt alone, and a receiver session that adopted the
 * same sender with a fresh replay window accepted old packets again: 40 recorded messages of 40
 * reached a new client. Here an attacker on the path between two real servers records what
 * server B sends to server A while a1 and b1 talk, waits for a later session on A (a new client
 * with the same key, a restarted server, or the same session after its keys of that peer were
 * evicted), and sends every recorded datagram to A again, byte for byte. None may be delivered.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { startInProcess, type InProcessServer } from '../helpers/in-process.js';
import { ScriptedPeer } from '../helpers/scripted-peer.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { UdpTap } from '../helpers/udp-tap.js';
import { sleep, TestClient } from '../helpers/ws-client.js';

const FAST = { 'punch-ms': '20', 'heartbeat-ms': '50', 'peer-timeout-ms': '400', 'fallback-ms': '100', 'no-ipv6': true };
const RECORDED_MESSAGES = 40;
let token: string;
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  token = await mintToken(TEST_SECRET, 'replay', 600);
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(flags: Record<string, string | boolean> = {}): Promise<InProcessServer> {
  const s = await startInProcess({ ...FAST, ...flags });
  cleanups.push(() => s.close());
  return s;
}

function client(s: InProcessServer, port: number, key: string): TestClient {
  const c = new TestClient(s.wsUrl, { hosts: ['127.0.0.1'], port, key, token });
  cleanups.push(() => c.close());
  return c;
}

/** Datagrams A received and dropped (before any session, or in one, live or ended). */
function dropsAt(s: InProcessServer): number {
  const sum = (counts: Partial<Record<string, number>>) => Object.values(counts).reduce<number>((a, b) => a + (b ?? 0), 0);
  const { send_failed: _sent, ...plane } = s.switchboard.drops;
  return sum(plane) + sum(s.sessions.totals().drops);
}

/** a1 on A and b1 on B, talking through the tap; B sends the messages an attacker records. */
async function recordedConversation() {
  const key = randomBytes(32).toString('base64url');
  const a = await server();
  const b = await server();
  const tap = await UdpTap.start({ address: '127.0.0.1', port: a.udp.ipv4! }, { address: '127.0.0.1', port: b.udp.ipv4! });
  cleanups.push(() => tap.stop());
  const a1 = client(a, tap.towardB, key);
  const b1 = client(b, tap.towardA, key);
  await a1.waitForStatus('UDP_ESTABLISHED');
  await b1.waitForStatus('UDP_ESTABLISHED');
  for (let i = 0; i < RECORDED_MESSAGES; i++) b1.send(Buffer.from(`recorded ${i}`));
  await a1.waitForData(RECORDED_MESSAGES);
  return { key, a, b, tap, a1, b1, recorded: [...tap.fromB] };
}

/**
 * The attack, then the proof that it was seen and refused: every recorded datagram reached A
 * (A counted it as received and dropped), the path still carries fresh data, and the victim got
 * nothing recorded.
 */
async function replayAndCheck(a: InProcessServer, tap: UdpTap, recorded: Buffer[], victim: TestClient, sender: TestClient) {
  sender.send(Buffer.from('fresh before'));
  await victim.until(() => victim.data.some((d) => d.toString() === 'fresh before'), 'fresh data before the replay');
  const receivedBefore = a.switchboard.datagramsIn;
  const dropsBefore = dropsAt(a);
  const dataBefore = victim.data.length;
  tap.replayToA(recorded);
  // The sentinel takes the same last hop (tap -> A, one socket to one socket): once it is
  // delivered, every replayed datagram before it has been received and decided.
  await sleep(50);
  sender.send(Buffer.from('fresh after'));
  await victim.until(() => victim.data.some((d) => d.toString() === 'fresh after'), 'fresh data after the replay');
  const delivered = victim.data.slice(dataBefore).map(String);
  expect(delivered.filter((m) => m.startsWith('recorded'))).toEqual([]);
  expect(delivered).toContain('fresh after');
  expect(recorded.length).toBeGreaterThanOrEqual(RECORDED_MESSAGES);
  expect(a.switchboard.datagramsIn - receivedBefore).toBeGreaterThanOrEqual(recorded.length);
  expect(dropsAt(a) - dropsBefore).toBeGreaterThanOrEqual(RECORDED_MESSAGES);
}

describe('a recorded datagram replayed into a later session of the same key is never delivered', () => {
  it('after the client reconnects (a new session on the same server)', async () => {
    const { key, a, tap, a1, b1, recorded } = await recordedConversation();
    await a1.close();
    await b1.waitForStatus('UDP_WAITING', { reason: 'peer_closed' });
    const a2 = client(a, tap.towardB, key);
    await a2.waitForStatus('UDP_ESTABLISHED');
    await b1.waitForStatus('UDP_ESTABLISHED');
    await replayAndCheck(a, tap, recorded, a2, b1);
  });

  it('after the server restarts on the same port', async () => {
    const { key, a, tap, b1, recorded } = await recordedConversation();
    const port = a.udp.ipv4!;
    await a.close();
    await b1.waitForStatus('UDP_WAITING', { reason: 'peer_closed' });
    const restarted = await server({ 'udp-port': String(port) });
    expect(restarted.udp.ipv4).toBe(port);
    const a2 = client(restarted, tap.towardB, key);
    await a2.waitForStatus('UDP_ESTABLISHED');
    await b1.waitForStatus('UDP_ESTABLISHED');
    await replayAndCheck(restarted, tap, recorded, a2, b1);
  });

  it('in the same session, after it lost the peer and heard enough other peer sessions to forget its keys', async () => {
    const { key, a, tap, a1, b1, recorded } = await recordedConversation();
    tap.cut = true;
    await a1.waitForStatus('UDP_WAITING', { reason: 'peer_timeout' });
    await b1.waitForStatus('UDP_WAITING', { reason: 'peer_timeout' });
    // Other peer sessions of the same key (a holder of the key: a restarting peer) are heard
    // meanwhile: more than a session keeps keys for.
    const others = await ScriptedPeer.start('ipv4', Buffer.from(key, 'base64url'));
    cleanups.push(() => others.stop());
    others.autoReply = false;
    const link = a.links.get(a1.statuses[0]!.session)!;
    const heardBefore = link.stats.datagramsIn;
    for (let i = 0; i < 12; i++) {
      others.restart();
      others.heartbeat({ family: 'ipv4', address: '127.0.0.1', port: a.udp.ipv4! });
      await sleep(5);
    }
    await sleep(100);
    expect(link.stats.datagramsIn - heardBefore).toBeGreaterThanOrEqual(12); // they did authenticate
    tap.cut = false;
    await a1.waitForStatus('UDP_ESTABLISHED');
    await b1.waitForStatus('UDP_ESTABLISHED');
    await replayAndCheck(a, tap, recorded, a1, b1);
  });
});
