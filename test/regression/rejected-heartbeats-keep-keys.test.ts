/**
 * Regression (issue 10, internal review): the peer keyring remembered a peer session's keys
 * before its heartbeat was decoded and checked against the target policy, so heartbeats the
 * session then refused still took places in the keyring and evicted the keys of a peer it had
 * really heard. DATA of that peer, sent before it proved the path, was then dropped as coming
 * from an unknown peer. Here ten peer sessions heartbeat from an address the policy denies, in
 * between the real peer's first heartbeat and its early DATA.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { MAX_PEER_KEYS } from '../../src/io/peer-keyring.js';
import { startInProcess } from '../helpers/in-process.js';
import { ScriptedPeer } from '../helpers/scripted-peer.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { sleep, TestClient } from '../helpers/ws-client.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('heartbeats refused by the target policy evict no keys: the real peer\'s early DATA is delivered once it proves the path', async () => {
  const psk = randomBytes(32);
  const server = await startInProcess({ 'punch-ms': '20', 'heartbeat-ms': '50', 'peer-timeout-ms': '2000', 'deny-targets': '127.0.0.9/32', 'no-ipv6': true });
  cleanups.push(() => server.close());
  const serverUdp = { family: 'ipv4' as const, address: '127.0.0.1', port: server.udp.ipv4! };
  const peer = await ScriptedPeer.start('ipv4', psk);
  cleanups.push(() => peer.stop());
  peer.autoReply = false;
  const denied = await ScriptedPeer.start('ipv4', psk, '127.0.0.9');
  cleanups.push(() => denied.stop());
  denied.autoReply = false;
  const client = new TestClient(server.wsUrl, { hosts: ['127.0.0.1'], port: peer.endpoint.port, key: psk.toString('base64url'), token: await mintToken(TEST_SECRET, 'keys', 600) });
  cleanups.push(() => client.close());
  await peer.until(() => peer.lastHeartbeat() !== undefined, 'a punch from the server');

  peer.heartbeat(serverUdp); // heard, not proven yet
  await sleep(30);
  const link = server.links.get(client.statuses[0]!.session)!;
  for (let i = 0; i < MAX_PEER_KEYS + 2; i++) {
    denied.restart();
    denied.heartbeat(serverUdp); // authentic, but from a place this session may not send to
  }
  await sleep(50);
  expect(link.stats.drops.policy).toBeGreaterThanOrEqual(MAX_PEER_KEYS + 2); // they arrived and were refused
  peer.data(serverUdp, Buffer.from('early'));
  await sleep(30);
  peer.heartbeat(serverUdp, peer.lastHeartbeat()); // the proof
  await client.waitForStatus('UDP_ESTABLISHED');
  expect((await client.waitForData(1)).map(String)).toEqual(['early']);
  expect(link.stats.drops.unknown_peer).toBe(0);
});
