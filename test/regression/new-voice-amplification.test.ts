/**
 * Regression (found by review): README (threat model) says a client with a valid token "cannot make the server send
 * more than one heartbeat per punch interval per candidate". But every authenticated heartbeat of
 * a *new* peer session (isNewVoice: any salt other than the last heard, so simply alternating
 * salts) triggers an immediate punch to *all* candidates (up to 16) plus learned endpoints. A
 * client that holds its own PSK drives its own "peer": one 70-byte datagram in, up to 20
 * datagrams out to addresses of the client's choosing, limited only by --udp-out-per-s
 * (60,000/s per session by default).
 */
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { startInProcess } from '../helpers/in-process.js';
import { ScriptedPeer } from '../helpers/scripted-peer.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { sleep, TestClient } from '../helpers/ws-client.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('16 candidates, punch interval 2 s: 100 peer heartbeats get no more than 100 heartbeats back', async () => {
  const token = await mintToken(TEST_SECRET, 'amp', 600);
  const psk = randomBytes(32);
  const server = await startInProcess({ 'punch-ms': '2000', 'heartbeat-ms': '2000', 'peer-timeout-ms': '5000', 'upgrades-per-ip-per-s': '0' });
  cleanups.push(() => server.close());
  const serverUdp = { family: 'ipv4' as const, address: '127.0.0.1', port: server.udp.ipv4! };

  // The "victim": one UDP port reachable at 16 loopback addresses.
  const victim: Socket = createSocket('udp4');
  cleanups.push(() => victim.close());
  await new Promise<void>((r) => victim.bind(0, '0.0.0.0', r));
  let received = 0;
  victim.on('message', () => received++);
  const hosts = Array.from({ length: 16 }, (_, i) => `127.0.0.${i + 2}`);

  const client = new TestClient(server.wsUrl, { hosts, port: victim.address().port, key: psk.toString('base64url'), token });
  cleanups.push(() => client.close());
  await client.waitForStatus('UDP_WAITING');
  await sleep(100);
  const before = received; // the first punch: one per candidate
  expect(before).toBe(16); // the victim does hear the punches: the bound below means something

  const peer = await ScriptedPeer.start('ipv4', psk);
  cleanups.push(() => peer.stop());
  peer.autoReply = false;
  for (let i = 0; i < 100; i++) {
    peer.restart(); // a "new peer session" each time
    peer.heartbeat(serverUdp);
    await sleep(2);
  }
  await sleep(100);
  const sent = received - before;
  // Within one punch interval, README allows at most one heartbeat per candidate (16).
  expect(sent).toBeLessThanOrEqual(16);
  // ... while the server did take every one of the 100 heartbeats, and answered each new voice
  // at its source (the peer), once.
  const link = server.links.get(client.statuses[0]!.session)!;
  expect(link.stats.datagramsIn).toBe(100);
  expect(peer.received.filter((r) => r.heartbeat !== null).length).toBe(100);
});
