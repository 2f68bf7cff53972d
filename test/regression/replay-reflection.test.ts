/**
 * Regression (found by review): a heartbeat recorded from an earlier peer session (any time, any session of the same
 * channel) still authenticates at a *new* session of ours (its keyring and replay windows start
 * empty), so a replay of it is "a newly heard peer session": the server answers at once and adds
 * the replay's source address to its learned endpoints, punching it every --punch-ms for the rest
 * of the waiting period. With a spoofed source, one replayed datagram makes the server send a
 * heartbeat stream to a victim: reflection, against README's "replays are dropped", "recordings
 * from before a restart are refused" and "No amplification".
 */
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { decodeHeader, PacketType } from '../../src/protocol/packet.js';
import { startInProcess } from '../helpers/in-process.js';
import { ScriptedPeer } from '../helpers/scripted-peer.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { sleep, TestClient } from '../helpers/ws-client.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('a replayed old heartbeat gets at most one heartbeat of the same size back, never a stream of punches', async () => {
  const token = await mintToken(TEST_SECRET, 'replay', 600);
  const psk = randomBytes(32);
  const key = psk.toString('base64url');
  const server = await startInProcess({ 'punch-ms': '20', 'heartbeat-ms': '50', 'peer-timeout-ms': '400', 'punch-timeout-ms': '60000' });
  cleanups.push(() => server.close());
  const serverUdp = { family: 'ipv4' as const, address: '127.0.0.1', port: server.udp.ipv4! };

  // 1. A session that an observer records: the peer's heartbeats go over the network.
  const peer = await ScriptedPeer.start('ipv4', psk);
  cleanups.push(() => peer.stop());
  const first = new TestClient(server.wsUrl, { hosts: ['127.0.0.1'], port: peer.endpoint.port, key, token });
  await first.waitForStatus('UDP_ESTABLISHED');
  const recorded = peer.sent.find((d) => decodeHeader(d) !== null && (decodeHeader(d) as { type: number }).type === PacketType.HEARTBEAT)!;
  await first.close();
  peer.stop();
  cleanups.pop();

  // 2. Later, a new session on the same channel, waiting for a peer that is not there (yet).
  const second = new TestClient(server.wsUrl, { hosts: ['192.0.2.1'], port: 40000, key, token });
  cleanups.push(() => second.close());
  await second.waitForStatus('UDP_WAITING');

  // 3. The attacker replays the recorded datagram once, from (in real life: spoofing) the victim's address.
  const victim = createSocket('udp4');
  cleanups.push(() => victim.close());
  let received = 0;
  victim.on('message', () => received++);
  await new Promise<void>((r) => victim.bind(0, '127.0.0.1', r));
  const sizes: number[] = [];
  victim.on('message', (m) => sizes.push(m.length));
  const link = server.links.get(second.statuses[0]!.session)!;
  const takenBefore = link.stats.datagramsIn;
  victim.send(recorded, serverUdp.port, serverUdp.address);
  await sleep(1000);
  // The replay reached the session and authenticated (heartbeats are sealed by their sender
  // alone): the bound below is about a datagram the server did act upon.
  expect(link.stats.datagramsIn).toBe(takenBefore + 1);
  // A first heartbeat of an unknown peer session cannot be told from a replay: it earns one
  // answer at its source, no more (no amplification); before the fix it earned ~50.
  expect(received).toBeLessThanOrEqual(1);
  expect(sizes.every((n) => n <= recorded.length)).toBe(true);
});
