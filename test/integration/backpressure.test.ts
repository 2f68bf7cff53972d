/**
 * A client that reads too slowly: the server's send buffer for it stays bounded, what it cannot
 * take is dropped and counted, and the client is told how much once it reads again.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { WS_MAX_BUFFERED_BYTES } from '../../src/io/client-reports.js';
import { startInProcess, type InProcessServer } from '../helpers/in-process.js';
import { ScriptedPeer } from '../helpers/scripted-peer.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { eventually } from '../helpers/waiter.js';
import { sleep, TestClient } from '../helpers/ws-client.js';

const MESSAGES = 12_000;
const SIZE = 1200;

let s: InProcessServer;
let peer: ScriptedPeer;
let client: TestClient;
beforeAll(async () => {
  const psk = randomBytes(32);
  s = await startInProcess({ 'punch-ms': '20', 'heartbeat-ms': '200', 'peer-timeout-ms': '10000' });
  peer = await ScriptedPeer.start('ipv4', psk);
  client = new TestClient(s.wsUrl, { hosts: ['127.0.0.1'], port: peer.endpoint.port, key: psk.toString('base64url'), token: await mintToken(TEST_SECRET, 'slow', 600) });
  await client.waitForStatus('UDP_ESTABLISHED');
});
afterAll(async () => {
  await client.close();
  peer.stop();
  await s.close();
});

describe('a slow WebSocket reader', () => {
  it('keeps the server buffer bounded, counts the drops and reports them when the client reads again', async () => {
    const link = s.links.get(client.statuses[0]!.session)!;
    const server = { family: 'ipv4' as const, address: '127.0.0.1', port: s.udp.ipv4! };
    client.ws.pause(); // stops reading: the TCP buffers fill, then the server's
    let maxBuffered = 0;
    for (let i = 0; i < MESSAGES; i += 40) {
      for (let j = 0; j < 40; j++) peer.data(server, Buffer.alloc(SIZE, (i + j) % 256));
      maxBuffered = Math.max(maxBuffered, link.footprint().wsBuffered);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await sleep(200);
    maxBuffered = Math.max(maxBuffered, link.footprint().wsBuffered);
    const dropped = link.stats.drops.client_backpressure;
    expect(dropped).toBeGreaterThan(0);
    // Bounded: the limit plus at most one message over it.
    expect(maxBuffered).toBeLessThanOrEqual(WS_MAX_BUFFERED_BYTES + SIZE + 64);

    client.ws.resume();
    const reported = () => client.errors.filter((e) => e.code === 'client_backpressure').reduce((n, e) => n + ((e as { count?: number }).count ?? 0), 0);
    await eventually(() => reported() === dropped && client.data.length === link.stats.messagesIn - dropped, 'delivery and the report', 20_000);
    // Nothing lost silently: every authenticated message was either delivered or reported.
    expect(client.data.length + reported()).toBe(link.stats.messagesIn);
    expect(client.errors.find((e) => e.code === 'client_backpressure')?.message).toMatch(/read too slowly/);
    expect(client.status?.status).toBe('UDP_ESTABLISHED');
  });
});
