/**
 * Two real servers (child processes of the built CLI), real `ws` clients, real UDP on
 * loopback: the whole path a user relies on.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { FAST_FLAGS, killAllServers, startServerProcess, TEST_SECRET, type ServerProcess } from '../helpers/server-process.js';
import { sleep, statusTrail, TestClient } from '../helpers/ws-client.js';

const MESSAGES = 1000;
let token: string;
const clients: TestClient[] = [];

beforeAll(async () => {
  token = await mintToken(TEST_SECRET, 'bridge-test', 600);
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await killAllServers();
});

function newKey(): string {
  return randomBytes(32).toString('base64url');
}

async function server(...extra: string[]): Promise<ServerProcess> {
  return startServerProcess(['--udp-port', '0', '--jwt-secret', TEST_SECRET, ...FAST_FLAGS, ...extra]);
}

function client(on: ServerProcess, peer: ServerProcess, key: string, hosts = ['::1', '127.0.0.1']): TestClient {
  const c = new TestClient(on.wsUrl, { hosts, port: peer.udp.ipv4, key, token });
  clients.push(c);
  return c;
}

/** Sends `count` numbered messages, at most `window` ahead of what the receiver has. */
async function pump(from: TestClient, to: TestClient, count: number, tag: string, window = 100) {
  for (let i = 0; i < count; i++) {
    while (i - to.data.length >= window) await to.until(() => i - to.data.length < window, 'receiver to catch up');
    from.send(Buffer.from(`${tag}:${i}:${'x'.repeat(i % 50)}`));
  }
}

describe('two servers bridged over encrypted UDP', () => {
  it('reach UDP_ESTABLISHED on both sides over IPv6, then relay 1,000 messages each way intact and in order', async () => {
    const [A, B] = await Promise.all([server(), server()]);
    expect(A.udp.ipv6).toBe(A.udp.ipv4); // same port number on both families
    const key = newKey();
    const a = client(A, B, key);
    const b = client(B, A, key);
    const [ea, eb] = await Promise.all([a.waitForStatus('UDP_ESTABLISHED'), b.waitForStatus('UDP_ESTABLISHED')]);
    expect(ea).toMatchObject({ family: 'ipv6', peer: `[::1]:${B.udp.ipv6}` });
    expect(eb).toMatchObject({ family: 'ipv6', peer: `[::1]:${A.udp.ipv6}` });
    expect(typeof ea.rttMs).toBe('number');
    expect(statusTrail(a)).toEqual(['CONNECTED', 'UDP_WAITING/ipv6', 'UDP_ESTABLISHED/ipv6']);
    expect(a.statuses.every((s) => s.session === a.statuses[0]!.session)).toBe(true);

    await Promise.all([pump(a, b, MESSAGES, 'a'), pump(b, a, MESSAGES, 'b')]);
    const [toB, toA] = await Promise.all([b.waitForData(MESSAGES), a.waitForData(MESSAGES)]);
    expect(toB.map(String)).toEqual(Array.from({ length: MESSAGES }, (_, i) => `a:${i}:${'x'.repeat(i % 50)}`));
    expect(toA.map(String)).toEqual(Array.from({ length: MESSAGES }, (_, i) => `b:${i}:${'x'.repeat(i % 50)}`));
    expect(a.errors).toEqual([]);
  });

  it('with the wrong key on one side, neither side ever establishes and no data is delivered', async () => {
    const [A, B] = await Promise.all([server('--punch-timeout-ms', '1500'), server('--punch-timeout-ms', '1500')]);
    const a = client(A, B, newKey());
    const b = client(B, A, newKey());
    await Promise.all([a.waitForStatus('UDP_WAITING'), b.waitForStatus('UDP_WAITING')]);
    a.send(Buffer.from('secret for b only'));
    const [ca, cb] = await Promise.all([a.waitForStatus('CLOSED'), b.waitForStatus('CLOSED')]);
    expect(ca).toMatchObject({ reason: 'punch_timeout' });
    expect(cb).toMatchObject({ reason: 'punch_timeout' });
    expect([...a.statuses, ...b.statuses].some((s) => s.status === 'UDP_ESTABLISHED')).toBe(false);
    expect(b.data).toEqual([]);
    // The queued message was not lost silently: the client is told.
    expect(a.errors).toEqual([expect.objectContaining({ code: 'not_delivered' })]);
    expect(await a.closed).toBe(4000);
  });

  it('falls back to IPv4 against a peer started with --no-ipv6', async () => {
    const [A, B] = await Promise.all([server(), server('--no-ipv6')]);
    expect(B.udp.ipv6).toBeNull();
    const key = newKey();
    const a = client(A, B, key);
    const b = client(B, A, key);
    const [ea, eb] = await Promise.all([a.waitForStatus('UDP_ESTABLISHED'), b.waitForStatus('UDP_ESTABLISHED')]);
    expect(ea).toMatchObject({ family: 'ipv4', peer: `127.0.0.1:${B.udp.ipv4}` });
    expect(eb).toMatchObject({ family: 'ipv4' });
    expect(statusTrail(b)).toEqual(['CONNECTED', 'UDP_WAITING/ipv4', 'UDP_ESTABLISHED/ipv4']);
  });

  it('sends a second UDP_WAITING with family ipv4 when the fallback delay passes with no answer on IPv6', async () => {
    const [A, B] = await Promise.all([server(), server('--no-ipv6')]);
    const key = newKey();
    const a = client(A, B, key);
    await a.waitForStatus('UDP_WAITING', { family: 'ipv4' }); // after --fallback-ms 300
    const b = client(B, A, key); // the peer shows up only now
    await Promise.all([a.waitForStatus('UDP_ESTABLISHED'), b.waitForStatus('UDP_ESTABLISHED')]);
    expect(statusTrail(a)).toEqual(['CONNECTED', 'UDP_WAITING/ipv6', 'UDP_WAITING/ipv4', 'UDP_ESTABLISHED/ipv4']);
  });

  it('goes back to UDP_WAITING within the peer timeout when the peer server is killed, and re-establishes when it restarts on the same port', async () => {
    const [A, B] = await Promise.all([server(), server()]);
    const key = newKey();
    const a = client(A, B, key);
    const b = client(B, A, key);
    await Promise.all([a.waitForStatus('UDP_ESTABLISHED'), b.waitForStatus('UDP_ESTABLISHED')]);

    const killedAt = Date.now();
    await B.kill('SIGKILL');
    const waiting = await a.waitForStatus('UDP_WAITING', {}, 2000);
    const elapsed = Date.now() - killedAt;
    expect(waiting).toMatchObject({ reason: 'peer_timeout' });
    // 400 ms peer timeout plus scheduling slack on a shared machine; far below the 2 s wait.
    expect(elapsed).toBeLessThan(1500);

    const B2 = await server('--udp-port', String(B.udp.ipv4));
    expect(B2.udp.ipv4).toBe(B.udp.ipv4);
    const b2 = client(B2, A, key);
    await Promise.all([a.waitForStatus('UDP_ESTABLISHED'), b2.waitForStatus('UDP_ESTABLISHED')]);
    a.send(Buffer.from('after restart'));
    expect((await b2.waitForData(1)).map(String)).toEqual(['after restart']);
  });

  it('queues messages sent before UDP_ESTABLISHED and delivers them, in order, once established', async () => {
    const [A, B] = await Promise.all([server(), server()]);
    const key = newKey();
    const a = client(A, B, key);
    await a.opened;
    for (let i = 0; i < 10; i++) a.send(Buffer.from(`early ${i}`));
    await sleep(100);
    const b = client(B, A, key);
    const got = await b.waitForData(10);
    expect(got.map(String)).toEqual(Array.from({ length: 10 }, (_, i) => `early ${i}`));
    expect(a.errors).toEqual([]);
  });

  it('rejects a text frame and an oversized message with error frames, and the session goes on', async () => {
    const [A, B] = await Promise.all([server('--max-payload', '100'), server()]);
    const key = newKey();
    const a = client(A, B, key);
    const b = client(B, A, key);
    await Promise.all([a.waitForStatus('UDP_ESTABLISHED'), b.waitForStatus('UDP_ESTABLISHED')]);
    a.send('a text frame');
    a.send(Buffer.alloc(101));
    await a.waitForError('payload_too_large');
    expect(a.errors.map((e) => e.code)).toEqual(['text_not_supported', 'payload_too_large']);
    a.send(Buffer.alloc(100, 7));
    expect((await b.waitForData(1))[0]).toEqual(Buffer.alloc(100, 7));
    expect(a.status?.status).toBe('UDP_ESTABLISHED');
  });

  it('on graceful shutdown the client gets CLOSED and code 1001, and the peer learns at once through CLOSE', async () => {
    const [A, B] = await Promise.all([server('--peer-timeout-ms', '10000'), server()]);
    const key = newKey();
    const a = client(A, B, key);
    const b = client(B, A, key);
    await Promise.all([a.waitForStatus('UDP_ESTABLISHED'), b.waitForStatus('UDP_ESTABLISHED')]);
    const exit = B.kill('SIGTERM');
    expect(await b.waitForStatus('CLOSED')).toMatchObject({ reason: 'server_shutdown' });
    expect(await b.closed).toBe(1001);
    expect(await exit).toEqual({ code: 0, signal: null });
    // Far sooner than A's 10 s peer timeout.
    expect(await a.waitForStatus('UDP_WAITING', {}, 3000)).toMatchObject({ reason: 'peer_closed' });
  });

  it('closes the session with code 1000 when the client closes, and the server goes on serving', async () => {
    const [A, B] = await Promise.all([server(), server()]);
    const key = newKey();
    const a = client(A, B, key);
    const b = client(B, A, key);
    await Promise.all([a.waitForStatus('UDP_ESTABLISHED'), b.waitForStatus('UDP_ESTABLISHED')]);
    expect(await a.close()).toBe(1000);
    expect(await b.waitForStatus('UDP_WAITING', {}, 3000)).toMatchObject({ reason: 'peer_closed' });
    const a2 = client(A, B, key);
    await Promise.all([a2.waitForStatus('UDP_ESTABLISHED'), b.waitForStatus('UDP_ESTABLISHED')]);
  });
});
