/**
 * The wire protocol seen from outside: a real server, a real ws client, and a scripted peer
 * that speaks (and abuses) the protocol over real UDP on loopback.
 */
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import type { Endpoint } from '../../machines/endpoint.js';
import { PacketType } from '../../src/protocol/packet.js';
import { startInProcess } from '../helpers/in-process.js';
import { ScriptedPeer } from '../helpers/scripted-peer.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { sleep, statusTrail, TestClient } from '../helpers/ws-client.js';

type Server = Awaited<ReturnType<typeof startInProcess>>;
const FAST = { 'punch-ms': '20', 'heartbeat-ms': '50', 'peer-timeout-ms': '400', 'fallback-ms': '300' };
let token: string;
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  token = await mintToken(TEST_SECRET, 'wire-test', 600);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(options: { family?: 'ipv4' | 'ipv6'; flags?: Record<string, string> } = {}) {
  const family = options.family ?? 'ipv4';
  const psk = randomBytes(32);
  const server: Server = await startInProcess({ ...FAST, ...options.flags });
  cleanups.push(() => server.close());
  const peer = await ScriptedPeer.start(family, psk);
  cleanups.push(() => peer.stop());
  const client = new TestClient(server.wsUrl, { hosts: [peer.endpoint.address], port: peer.endpoint.port, key: psk.toString('base64url'), token });
  cleanups.push(() => client.close());
  const serverEndpoint: Endpoint =
    family === 'ipv6'
      ? { family, address: '::1', port: server.udp.ipv6! }
      : { family, address: '127.0.0.1', port: server.udp.ipv4! };
  return { server, peer, client, psk, serverEndpoint };
}

const heartbeats = (peer: ScriptedPeer) => peer.received.filter((r) => r.heartbeat !== null);

describe('wire protocol against a scripted peer', () => {
  it('the server punches with authenticated heartbeats and establishes once the peer echoes one', async () => {
    const { peer, client } = await setup();
    await client.waitForStatus('UDP_ESTABLISHED');
    const first = heartbeats(peer)[0]!;
    expect(first.plaintext).not.toBeNull(); // it authenticated under the shared key
    // The server's later heartbeats echo the peer's salt: it heard us.
    await peer.until(() => heartbeats(peer).some((r) => r.heartbeat!.echoSalt === peer.saltHex), 'an echo');
    expect(client.status).toMatchObject({ family: 'ipv4', peer: peer.endpoint.address + ':' + peer.endpoint.port });
  });

  it('does not establish on a heartbeat that does not echo the server: that proves nothing', async () => {
    const { peer, client, serverEndpoint } = await setup();
    peer.autoReply = false;
    await peer.until(() => heartbeats(peer).length > 0, 'a punch');
    for (let i = 0; i < 5; i++) peer.heartbeat(serverEndpoint); // no echo
    await sleep(200);
    expect(client.status?.status).toBe('UDP_WAITING');
    peer.heartbeat(serverEndpoint, peer.lastHeartbeat()); // now with the echo
    await client.waitForStatus('UDP_ESTABLISHED');
  });

  it('delivers peer DATA sent before the server adopted the peer, once it does (no loss at establishment)', async () => {
    const { peer, client, serverEndpoint } = await setup();
    peer.autoReply = false;
    await peer.until(() => heartbeats(peer).length > 0, 'a punch');
    peer.heartbeat(serverEndpoint); // heard, not proven
    await sleep(50);
    peer.data(serverEndpoint, Buffer.from('early 1'));
    peer.data(serverEndpoint, Buffer.from('early 2'));
    await sleep(50);
    expect(client.data).toEqual([]);
    peer.heartbeat(serverEndpoint, peer.lastHeartbeat());
    expect((await client.waitForData(2)).map(String)).toEqual(['early 1', 'early 2']);
  });

  it('relays both ways and drops a replayed DATA datagram (delivered once)', async () => {
    const { peer, client, serverEndpoint } = await setup();
    await client.waitForStatus('UDP_ESTABLISHED');
    const datagram = peer.data(serverEndpoint, Buffer.from('once'));
    await client.waitForData(1);
    peer.sendRaw(serverEndpoint, datagram);
    peer.sendRaw(serverEndpoint, datagram);
    peer.data(serverEndpoint, Buffer.from('next'));
    await client.waitForData(2);
    await sleep(50);
    expect(client.data.map(String)).toEqual(['once', 'next']);

    client.send(Buffer.from('to the peer'));
    await peer.until(() => peer.dataReceived().length === 1, 'data from the client');
    expect(peer.dataReceived().map(String)).toEqual(['to the peer']);
  });

  it('drops tampered and foreign datagrams and never answers a sender it cannot authenticate', async () => {
    const { peer, client, serverEndpoint } = await setup();
    await client.waitForStatus('UDP_ESTABLISHED');
    const stranger = createSocket('udp4');
    await new Promise<void>((resolve) => stranger.bind(0, '127.0.0.1', resolve));
    cleanups.push(() => stranger.close());
    const answers: Buffer[] = [];
    stranger.on('message', (m) => answers.push(m));

    const good = peer.data(serverEndpoint, Buffer.from('good'));
    await client.waitForData(1);
    const forged = [
      Buffer.from(good).fill(0x55, 26, 30), // ciphertext changed
      Buffer.concat([good.subarray(0, -1), Buffer.from([good.at(-1)! ^ 1])]), // tag changed
      Buffer.from('GET / HTTP/1.1\r\n\r\n'),
      randomBytes(64),
      Buffer.alloc(0),
      Buffer.alloc(2000, 0xa0), // oversized
      good, // a replay, from another address
    ];
    for (const d of forged) stranger.send(d, serverEndpoint.port, serverEndpoint.address);
    await sleep(200);
    expect(answers).toEqual([]);
    expect(client.data.map(String)).toEqual(['good']);
    expect(client.status?.status).toBe('UDP_ESTABLISHED');
  });

  it('follows the peer to a new port when its NAT mapping changes, and says so', async () => {
    const { peer, client, serverEndpoint } = await setup();
    await client.waitForStatus('UDP_ESTABLISHED');
    const before = client.status!.peer;
    await peer.rebind(); // same peer session, new source port
    // The peer keeps heartbeating on its own schedule; from now on from the new port.
    peer.heartbeat(serverEndpoint, peer.lastHeartbeat());
    const moved = await client.until(() => client.status!.peer !== before, 'a new peer endpoint').then(() => client.status!);
    expect(moved).toMatchObject({ status: 'UDP_ESTABLISHED', peer: `127.0.0.1:${peer.endpoint.port}` });
    client.send(Buffer.from('after the move'));
    await peer.until(() => peer.dataReceived().length === 1, 'data at the new port');
    expect(statusTrail(client).filter((s) => s.startsWith('UDP_WAITING')).length).toBe(1); // never lost the path
  });

  it('a CLOSE from the peer sends the session back to UDP_WAITING at once; a replay of that session is never adopted again', async () => {
    const { peer, client, serverEndpoint } = await setup({ flags: { 'peer-timeout-ms': '10000' } });
    await client.waitForStatus('UDP_ESTABLISHED');
    peer.autoReply = false;
    const oldProof = peer.heartbeat(serverEndpoint, peer.lastHeartbeat());
    peer.close(serverEndpoint);
    expect(await client.waitForStatus('UDP_WAITING', {}, 2000)).toMatchObject({ reason: 'peer_closed' });
    peer.sendRaw(serverEndpoint, oldProof);
    peer.heartbeat(serverEndpoint, peer.lastHeartbeat()); // the closed session, freshly echoing
    await sleep(200);
    expect(client.status?.status).toBe('UDP_WAITING');
    peer.restart(); // a new peer session
    peer.autoReply = true;
    await client.waitForStatus('UDP_ESTABLISHED');
  });

  it('refuses a proof recorded from an earlier session of the server (replay after restart)', async () => {
    const first = await setup();
    await first.client.waitForStatus('UDP_ESTABLISHED');
    first.peer.autoReply = false;
    const proof = first.peer.heartbeat(first.serverEndpoint, first.peer.lastHeartbeat());
    await first.client.close();
    // A new client session on the same server and key: a new salt.
    const client = new TestClient(first.server.wsUrl, {
      hosts: ['127.0.0.1'],
      port: first.peer.endpoint.port,
      key: first.psk.toString('base64url'),
      token,
    });
    cleanups.push(() => client.close());
    await client.waitForStatus('UDP_WAITING');
    first.peer.sendRaw(first.serverEndpoint, proof);
    await sleep(200);
    expect(client.status?.status).toBe('UDP_WAITING');
  });

  it('goes back to UDP_WAITING when the peer goes silent, and punches its last endpoint again', async () => {
    const { peer, client } = await setup();
    await client.waitForStatus('UDP_ESTABLISHED');
    peer.autoReply = false;
    expect(await client.waitForStatus('UDP_WAITING', {}, 2000)).toMatchObject({ reason: 'peer_timeout' });
    const count = heartbeats(peer).length;
    await peer.until(() => heartbeats(peer).length > count + 2, 'punches after the timeout');
    peer.autoReply = true;
    await client.waitForStatus('UDP_ESTABLISHED');
  });

  it('establishes over IPv6 with an IPv6 peer', async () => {
    const { client } = await setup({ family: 'ipv6' });
    expect(await client.waitForStatus('UDP_ESTABLISHED')).toMatchObject({ family: 'ipv6' });
  });

  it('sends nothing for a session whose key nobody else uses: heartbeats only, all authenticated', async () => {
    const { peer, client } = await setup({ flags: { 'punch-timeout-ms': '300' } });
    peer.autoReply = false;
    expect(await client.waitForStatus('CLOSED')).toMatchObject({ reason: 'punch_timeout' });
    expect(peer.received.length).toBeGreaterThan(3);
    expect(peer.received.every((r) => r.header.type === PacketType.HEARTBEAT && r.plaintext !== null)).toBe(true);
  });
});
