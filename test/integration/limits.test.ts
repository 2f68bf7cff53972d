/**
 * Flood tests, one per limit: the flood gets its 429 / error frame / drops, and a client that
 * is not flooding is unaffected. Real servers, real sockets; loopback clients from several
 * 127.x addresses stand for several client IPs.
 */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import type { Endpoint } from '../../machines/endpoint.js';
import { startInProcess, type InProcessServer } from '../helpers/in-process.js';
import { redisAvailable, redisRequired, startRedis, type RedisServer } from '../helpers/redis-server.js';
import { ScriptedPeer } from '../helpers/scripted-peer.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { attempt, bearer, proxyQuery, refusal } from '../helpers/upgrade.js';
import { eventually } from '../helpers/waiter.js';
import { sleep, TestClient } from '../helpers/ws-client.js';

const KEY = randomBytes(32).toString('base64url');
const target = { host: '127.0.0.1', port: '40000', key: KEY };
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
let token: string;
let tokenBob: string;
beforeAll(async () => {
  token = await mintToken(TEST_SECRET, 'alice', 600);
  tokenBob = await mintToken(TEST_SECRET, 'bob', 600);
});

async function server(flags: Record<string, string | boolean> = {}, deps = {}): Promise<InProcessServer> {
  const s = await startInProcess(flags, deps);
  cleanups.push(() => s.close());
  return s;
}
const urlOf = (s: InProcessServer, params: Record<string, string | string[]> = target) =>
  `${s.url.replace(/^http/, 'ws')}${proxyQuery(params)}`;
function client(s: InProcessServer, options: Partial<{ hosts: string[]; port: number; key: string; token: string }> = {}) {
  const c = new TestClient(s.wsUrl, { hosts: ['127.0.0.1'], port: 40000, key: KEY, token, ...options });
  cleanups.push(() => c.close());
  return c;
}

describe('per client IP, before the upgrade', () => {
  it('upgrade attempts: 429 with Retry-After over the rate; another IP is unaffected', async () => {
    const s = await server({ 'upgrades-per-ip-per-s': '5', 'limit-loopback': true });
    const results = [];
    for (let i = 0; i < 8; i++) results.push(await attempt(urlOf(s), bearer(token), '127.0.0.2'));
    expect(results.slice(0, 5).every((r) => r === 'open')).toBe(true);
    const limited = results[5]!;
    expect(limited).toMatchObject({ status: 429, body: { error: { code: 'rate_limited' } } });
    expect(limited !== 'open' && Number((limited as { headers: Record<string, string> }).headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(await attempt(urlOf(s), bearer(token), '127.0.0.3')).toBe('open');
  });

  it('failed authentications: after N the IP is blocked (even with a good token); another IP is unaffected', async () => {
    const s = await server({ 'auth-failures-per-ip': '3', 'auth-block-s': '60', 'limit-loopback': true });
    for (let i = 0; i < 4; i++) {
      expect((await refusal(urlOf(s), bearer('bad.token.here'), '127.0.0.4')).status).toBe(401);
    }
    const blocked = await refusal(urlOf(s), bearer(token), '127.0.0.4');
    expect(blocked).toMatchObject({ status: 429, body: { error: { code: 'rate_limited', message: expect.stringMatching(/failed authentications/) } } });
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(50);
    expect(await attempt(urlOf(s), bearer(token), '127.0.0.5')).toBe('open');
  });

  it('failed authentications on the admin endpoints count too, and block that IP there and for upgrades', async () => {
    const s = await server({ 'auth-failures-per-ip': '2', 'auth-block-s': '60', 'limit-loopback': true });
    const getSessions = (localAddress: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest(`${s.url}/v0/sessions`, { headers: bearer('bad.token.here'), localAddress }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on('error', reject);
        req.end();
      });
    // Two failures are allowed; the third goes over and blocks the address.
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await getSessions('127.0.0.7'));
    expect(answers).toEqual([401, 401, 401, 429]);
    expect((await refusal(urlOf(s), bearer(token), '127.0.0.7')).status).toBe(429);
    expect(await attempt(urlOf(s), bearer(token), '127.0.0.8')).toBe('open');
  });

  it('loopback clients are exempt unless --limit-loopback', async () => {
    const s = await server({ 'upgrades-per-ip-per-s': '1', 'auth-failures-per-ip': '1' });
    for (let i = 0; i < 3; i++) expect((await refusal(urlOf(s), bearer('bad.token.here'))).status).toBe(401);
    for (let i = 0; i < 3; i++) expect(await attempt(urlOf(s), bearer(token))).toBe('open');
  });
});

describe('per server and per subject', () => {
  it('--max-sessions: 503 server_full with Retry-After; a slot frees when a session ends', async () => {
    const s = await server({ 'max-sessions': '2' });
    const a = client(s);
    const b = client(s);
    await Promise.all([a.opened, b.opened]);
    const full = await refusal(urlOf(s), bearer(tokenBob));
    expect(full).toMatchObject({ status: 503, body: { error: { code: 'server_full' } } });
    expect(full.headers['retry-after']).toBeDefined();
    await a.close();
    await sleep(50);
    expect(await attempt(urlOf(s), bearer(tokenBob))).toBe('open');
  });

  it('--max-sessions-per-subject: 429 too_many_sessions for that subject only', async () => {
    const s = await server({ 'max-sessions-per-subject': '2' });
    await Promise.all([client(s).opened, client(s).opened]);
    expect(await refusal(urlOf(s), bearer(token))).toMatchObject({ status: 429, body: { error: { code: 'too_many_sessions' } } });
    expect(await attempt(urlOf(s), bearer(tokenBob))).toBe('open');
  });
});

describe('per session', () => {
  async function establishedPair(flags: Record<string, string>) {
    const psk = randomBytes(32);
    const s = await server({ 'punch-ms': '20', 'heartbeat-ms': '50', 'peer-timeout-ms': '1000', ...flags });
    const peer = await ScriptedPeer.start('ipv4', psk);
    cleanups.push(() => peer.stop());
    const c = client(s, { port: peer.endpoint.port, key: psk.toString('base64url') });
    await c.waitForStatus('UDP_ESTABLISHED');
    return { s, peer, c };
  }

  it('client messages per second: the excess gets rate_limited error frames (all counted); another session is unaffected', async () => {
    const { s, peer, c } = await establishedPair({ 'client-msgs-per-s': '100' });
    const calm = await ScriptedPeer.start('ipv4', randomBytes(32));
    cleanups.push(() => calm.stop());
    for (let i = 0; i < 300; i++) c.send(Buffer.from(`m${i}`));
    const rejectedCount = () => c.errors.filter((e) => e.code === 'rate_limited').reduce((n, e) => n + ((e as { count?: number }).count ?? 1), 0);
    await eventually(() => rejectedCount() + peer.dataReceived().length >= 300, 'every message accounted for');
    const rejected = rejectedCount();
    expect(peer.dataReceived().length).toBeGreaterThanOrEqual(100);
    expect(peer.dataReceived().length + rejected).toBe(300);
    expect(c.status?.status).toBe('UDP_ESTABLISHED');
    expect(s.links.get(c.statuses[0]!.session)!.stats.messagesRejected).toBe(rejected);
  });

  it('client bytes per second: large messages over the byte rate are rejected with rate_limited', async () => {
    const { peer, c } = await establishedPair({ 'client-bytes-per-s': '10000' });
    for (let i = 0; i < 20; i++) c.send(Buffer.alloc(1000, i));
    await c.waitForError('rate_limited');
    await sleep(100);
    expect(peer.dataReceived().length).toBeLessThan(20);
    expect(peer.dataReceived().length).toBeGreaterThanOrEqual(10);
  });

  it('outgoing datagrams per second: a ceiling, counted, reported as rate_limited', async () => {
    const { s, c } = await establishedPair({ 'udp-out-per-s': '50', 'client-msgs-per-s': '0' });
    for (let i = 0; i < 200; i++) c.send(Buffer.from(`m${i}`));
    await c.waitForError('rate_limited');
    const link = s.links.get(c.statuses[0]!.session)!;
    expect(link.stats.drops.udp_ceiling).toBeGreaterThan(0);
  });
});

describe('per peer source address, before authentication', () => {
  it('a flood of unauthenticated datagrams from one address cannot keep another peer from establishing', async () => {
    const psk = randomBytes(32);
    const s = await server({ 'punch-ms': '20', 'udp-preauth-per-s': '200' });
    const serverEndpoint: Endpoint = { family: 'ipv4', address: '127.0.0.1', port: s.udp.ipv4! };
    // The flood: heartbeats of many made-up peer sessions of the right channel, from 127.0.0.9.
    const flooder = await ScriptedPeer.start('ipv4', psk);
    cleanups.push(() => flooder.stop());
    const peer = await ScriptedPeer.start('ipv4', psk);
    cleanups.push(() => peer.stop());
    peer.autoReply = false; // the peer answers only once the flood is on
    const c = client(s, { port: peer.endpoint.port, key: psk.toString('base64url') });
    await c.waitForStatus('UDP_WAITING');
    const raw = createSocket('udp4');
    await new Promise<void>((resolve) => raw.bind(0, '127.0.0.9', resolve));
    cleanups.push(() => raw.close());
    const forged: Buffer[] = [];
    for (let i = 0; i < 50; i++) {
      flooder.restart();
      forged.push(flooder.heartbeat({ family: 'ipv4', address: '127.0.0.1', port: 9 }));
    }
    let sent = 0;
    const flood = setInterval(() => {
      for (let i = 0; i < 200; i++) raw.send(forged[sent++ % forged.length]!, serverEndpoint.port, serverEndpoint.address);
    }, 5);
    cleanups.push(() => clearInterval(flood));
    await eventually(() => s.preauth.refused > 1000, 'the flood to hit the limit');
    peer.autoReply = true;
    await c.waitForStatus('UDP_ESTABLISHED');
    clearInterval(flood);
    expect(s.preauth.refused).toBeGreaterThan(0);
    // Refused before any session looked at them: counted once, in the server's UDP plane.
    expect(s.switchboard.drops.preauth_limited).toBeGreaterThan(0);
  });
});

describe('half-open connections', () => {
  it('connections that never finish their upgrade request are closed after the headers timeout; sessions go on', async () => {
    const s = await server({}, { headersTimeoutMs: 500 });
    const { port } = new URL(s.url);
    const answers: string[] = [];
    const sockets = Array.from({ length: 200 }, () => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.write(`GET ${proxyQuery(target)} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n`); // never ends
      });
      socket.on('error', () => {});
      socket.on('data', (d) => answers.push(d.toString().split('\r\n')[0]!));
      return socket;
    });
    const closed = sockets.map((socket) => new Promise((resolve) => socket.once('close', resolve)));
    const c = client(s);
    await c.waitForStatus('UDP_WAITING'); // served meanwhile
    await Promise.race([Promise.all(closed), sleep(5000).then(() => Promise.reject(new Error('half-open connections stayed open')))]);
    expect(sockets.every((socket) => socket.destroyed)).toBe(true);
    expect(new Set(answers)).toEqual(new Set(['HTTP/1.1 408 Request Timeout']));
  });
});

describe.runIf(redisAvailable || redisRequired)('limits shared through Redis', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis?.stop());

  it('two instances share the per-subject session limit and the per-IP upgrade rate', async () => {
    const flags = { 'max-sessions-per-subject': '2', 'upgrades-per-ip-per-s': '4', 'limit-loopback': true };
    const one = await server(flags, { redis: redis.client() });
    const two = await server(flags, { redis: redis.client() });
    const a = new TestClient(one.wsUrl, { hosts: ['127.0.0.1'], port: 40000, key: KEY, token });
    const b = new TestClient(two.wsUrl, { hosts: ['127.0.0.1'], port: 40000, key: KEY, token });
    cleanups.push(() => Promise.all([a.close(), b.close()]));
    await Promise.all([a.opened, b.opened]);
    // alice holds 2 sessions across the two instances: a third is refused on either.
    expect(await refusal(urlOf(one), bearer(token), '127.0.0.20')).toMatchObject({ status: 429, body: { error: { code: 'too_many_sessions' } } });
    expect(await refusal(urlOf(two), bearer(token), '127.0.0.21')).toMatchObject({ status: 429, body: { error: { code: 'too_many_sessions' } } });
    await a.close();
    await sleep(100);
    expect(await attempt(urlOf(two), bearer(token), '127.0.0.22')).toBe('open');

    // Upgrade attempts from one IP count on both instances.
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await attempt(urlOf(i % 2 === 0 ? one : two), bearer(tokenBob), '127.0.0.30'));
    expect(results.filter((r) => r === 'open').length).toBe(4);
    expect(results[4]).toMatchObject({ status: 429 });
  });

  it('a subject slot held by an instance that died expires with its lease', async () => {
    const { RedisSessionCounter } = await import('../../src/limits/session-counter.js');
    const { createLogger } = await import('../../src/log.js');
    const dead = new RedisSessionCounter(redis.client(), createLogger('silent'), 300);
    expect(await dead.acquire('carol', 'x', 1)).toBe(true);
    dead.close(); // stops renewing, as a killed process would
    const live = new RedisSessionCounter(redis.client(), createLogger('silent'), 300);
    cleanups.push(() => live.close());
    expect(await live.acquire('carol', 'y', 1)).toBe(false);
    await sleep(400);
    expect(await live.acquire('carol', 'y', 1)).toBe(true);
  });
});
