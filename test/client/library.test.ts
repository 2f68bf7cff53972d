/**
 * The client library (`autoprox/client`, Node build) against real servers: two servers in this
 * process on loopback, real tokens, real UDP between them. What a program sees: typed status
 * frames, messages both ways in order, the server's codes for refusals and rejected messages,
 * the close code at the end, backpressure, and reconnection only when asked for.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { AutoproxError, ClosedError, connect, RefusedError, SendError, TimeoutError, UnreachableError, type Session, type StatusFrame } from '../../src/client/node.js';
import { startInProcess, type InProcessServer } from '../helpers/in-process.js';
import { freePort } from '../helpers/free-port.js';
import { FAST_FLAGS, killAllServers, startServerProcess, TEST_SECRET } from '../helpers/server-process.js';
import { eventually } from '../helpers/waiter.js';

const FAST = Object.fromEntries(
  Array.from({ length: FAST_FLAGS.length / 2 }, (_, i) => [FAST_FLAGS[2 * i]!.slice(2), FAST_FLAGS[2 * i + 1]!]),
);

let token: string;
const servers: InProcessServer[] = [];
const sessions: Session[] = [];

beforeAll(async () => {
  token = await mintToken(TEST_SECRET, 'library-test', 600);
});

afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await killAllServers();
});

const newKey = () => randomBytes(32).toString('base64url');

async function server(flags: Record<string, string | boolean> = {}): Promise<InProcessServer> {
  const s = await startInProcess({ ...FAST, ...flags });
  servers.push(s);
  return s;
}

async function open(on: InProcessServer, peer: InProcessServer, key: string, extra: Record<string, unknown> = {}): Promise<Session> {
  const session = await connect(on.url, { hosts: ['127.0.0.1'], port: peer.udp.ipv4!, key, token, ...extra });
  sessions.push(session);
  return session;
}

/** Reads `count` messages with `for await`, then stops iterating. */
async function read(session: Session, count: number): Promise<string[]> {
  const out: string[] = [];
  if (count === 0) return out;
  for await (const message of session) {
    out.push(Buffer.from(message).toString());
    if (out.length === count) break;
  }
  return out;
}

describe('connect, status, messages, close', () => {
  it('resolves at CONNECTED, reports every status frame typed, relays messages both ways in order, and close() resolves with 1000', async () => {
    const [A, B] = await Promise.all([server(), server()]);
    const key = newKey();
    const a = await open(A, B, key);
    const trail: StatusFrame[] = [];
    a.on('status', (frame) => trail.push(frame));
    // Frames that came with CONNECTED wait for listeners attached right after connect resolves.
    expect(a.status).toMatchObject({ type: 'status', status: 'CONNECTED' });
    expect(a.id).toMatch(/^[0-9a-f-]{36}$/);
    const b = await open(B, A, key);

    const [ea, eb] = await Promise.all([a.established({ timeoutMs: 10_000 }), b.established({ timeoutMs: 10_000 })]);
    expect(ea).toMatchObject({ status: 'UDP_ESTABLISHED', family: 'ipv4', peer: `127.0.0.1:${B.udp.ipv4}`, session: a.id });
    expect(typeof ea.rttMs).toBe('number');
    expect(eb.peer).toBe(`127.0.0.1:${A.udp.ipv4}`);
    expect(trail.map((f) => f.status)).toEqual(['UDP_WAITING', 'UDP_ESTABLISHED']);
    // established() again, once established, answers at once.
    await expect(a.established()).resolves.toBe(ea);

    const COUNT = 200;
    const toB = read(b, COUNT);
    const toA = read(a, COUNT);
    for (let i = 0; i < COUNT; i++) {
      expect(a.send(Buffer.from(`a${i}`))).toBe(true);
      expect(b.send(new TextEncoder().encode(`b${i}`))).toBe(true);
      if (i % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(await toB).toEqual(Array.from({ length: COUNT }, (_, i) => `a${i}`));
    expect(await toA).toEqual(Array.from({ length: COUNT }, (_, i) => `b${i}`));

    const peerLost = new Promise<StatusFrame>((resolve) => b.on('status', (f) => f.status === 'UDP_WAITING' && resolve(f)));
    const closeEvents: unknown[] = [];
    a.on('close', (e) => closeEvents.push(e));
    const end = await a.close();
    expect(end).toEqual({ code: 1000, reason: 'client_closed', message: expect.any(String) });
    await expect(a.ended).resolves.toEqual(end);
    expect(closeEvents).toEqual([end]);
    // The peer's session goes on, waiting again, told why.
    expect(await peerLost).toMatchObject({ reason: 'peer_closed' });
    expect(() => a.send(Buffer.from('late'))).toThrow(expect.objectContaining({ code: 'closed' }));
    await expect(a.close()).resolves.toEqual(end); // twice is fine
  });

  it('messages also arrive as events; a for-await loop ends when the session ends', async () => {
    const [A, B] = await Promise.all([server(), server()]);
    const key = newKey();
    const [a, b] = await Promise.all([open(A, B, key), open(B, A, key)]);
    await Promise.all([a.established({ timeoutMs: 10_000 }), b.established({ timeoutMs: 10_000 })]);
    const events: string[] = [];
    b.on('message', (m) => events.push(Buffer.from(m).toString()));
    const iterated: string[] = [];
    const loop = (async () => {
      for await (const m of b) iterated.push(Buffer.from(m).toString());
    })();
    for (const word of ['one', 'two', 'three']) a.send(Buffer.from(word));
    await eventually(() => iterated.length === 3, 'three messages');
    expect(events).toEqual(['one', 'two', 'three']);
    expect(iterated).toEqual(['one', 'two', 'three']);
    await b.close();
    await loop; // ended, not hanging
  });

  it('established() rejects with a TimeoutError naming the status when no peer answers in time', async () => {
    const [A, B] = await Promise.all([server(), server()]);
    const a = await open(A, B, newKey()); // nobody on B
    const err = await a.established({ timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err).toMatchObject({ code: 'timeout', message: expect.stringContaining('UDP_WAITING') });
  });

  it('a session that ends before it is established rejects established() with the close code and reason', async () => {
    const [A, B] = await Promise.all([server({ 'punch-timeout-ms': '400' }), server()]);
    const a = await open(A, B, newKey());
    const err = await a.established({ timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClosedError);
    expect(err).toMatchObject({ closeCode: 4000, reason: 'punch_timeout' });
    await expect(a.ended).resolves.toMatchObject({ code: 4000, reason: 'punch_timeout' });
  });
});

describe('errors carry the server\'s codes', () => {
  it('a refused upgrade rejects with a RefusedError: HTTP status, the server\'s code and message', async () => {
    const A = await server();
    const err = await connect(A.url, { hosts: ['127.0.0.1'], port: 40000, key: newKey(), token: 'not-a-jwt' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RefusedError);
    expect(err).toMatchObject({ status: 401, code: 'invalid_token', retryable: false });
    expect((err as Error).message).toMatch(/^refused with HTTP 401 invalid_token: /);

    const other = await mintToken('another-secret-another-secret-0123456789', 'x', 60);
    await expect(connect(A.url, { hosts: ['127.0.0.1'], port: 40000, key: newKey(), token: other })).rejects.toMatchObject({ status: 401, code: 'invalid_token' });
  });

  it('a rate limit is a retryable RefusedError with Retry-After in seconds', async () => {
    const A = await server({ 'upgrades-per-ip-per-s': '1', 'limit-loopback': true });
    const options = { hosts: ['127.0.0.1'], port: 40000, key: newKey(), token };
    sessions.push(await connect(A.url, options));
    const err = await connect(A.url, options).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RefusedError);
    expect(err).toMatchObject({ status: 429, code: 'rate_limited', retryable: true });
    expect((err as RefusedError).retryAfterS).toBeGreaterThanOrEqual(1);
  });

  it('bad options are an AutoproxError bad_parameter naming the option, before anything is sent', async () => {
    const A = await server();
    const base = { hosts: ['127.0.0.1'], port: 40000, key: newKey(), token };
    await expect(connect(A.url, { ...base, port: 0 })).rejects.toMatchObject({ code: 'bad_parameter', message: expect.stringMatching(/^port: /) });
    await expect(connect(A.url, { ...base, key: 'short' })).rejects.toMatchObject({ code: 'bad_parameter', message: expect.stringMatching(/^key: /) });
    await expect(connect(A.url, { ...base, hosts: [] })).rejects.toMatchObject({ code: 'bad_parameter', message: expect.stringMatching(/^hosts: /) });
    await expect(connect('ftp://x', base)).rejects.toBeInstanceOf(AutoproxError);
    // The server agrees: what the library lets through, the server accepts.
    sessions.push(await connect(A.url, base));
  });

  it('no server at the URL is an UnreachableError that says to start one', async () => {
    const port = await freePort();
    const err = await connect(`ws://127.0.0.1:${port}`, { hosts: ['127.0.0.1'], port: 40000, key: newKey(), token }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnreachableError);
    expect(err).toMatchObject({ code: 'unreachable', message: expect.stringContaining('no autoprox server answers') });
  });

  it('send refuses what the server would refuse, with its code; the server\'s own error frames arrive as events', async () => {
    const [A, B] = await Promise.all([server(), server()]);
    const key = newKey();
    const a = await open(A, B, key);
    expect(() => a.send(new Uint8Array(1201))).toThrow(SendError);
    expect(() => a.send(new Uint8Array(1201))).toThrow(expect.objectContaining({ code: 'payload_too_large' }));
    expect(() => a.send('text' as unknown as Uint8Array)).toThrow(expect.objectContaining({ code: 'text_not_supported' }));
    expect(a.send(new Uint8Array(1200))).toBe(true);

    // Told a larger limit than the server's, the library sends; the server rejects with the same code.
    const loose = await open(A, B, key, { maxPayload: 5000 });
    const error = new Promise((resolve) => loose.on('error', resolve));
    loose.send(new Uint8Array(1201));
    expect(await error).toEqual({ type: 'error', code: 'payload_too_large', message: expect.any(String) });
  });
});

describe('backpressure', () => {
  it('send returns false while the server does not read; drained() resolves once it does, and the session goes on', async () => {
    const limits = ['--client-msgs-per-s', '0', '--client-bytes-per-s', '0'];
    const [A, B] = await Promise.all([
      startServerProcess(['--udp-port', '0', '--jwt-secret', TEST_SECRET, ...FAST_FLAGS, ...limits]),
      startServerProcess(['--udp-port', '0', '--jwt-secret', TEST_SECRET, ...FAST_FLAGS, ...limits]),
    ]);
    const key = newKey();
    const options = (peer: typeof A) => ({ hosts: ['127.0.0.1'], port: peer.udp.ipv4, key, token, highWaterMark: 64 * 1024 });
    const a = await connect(A.wsUrl, options(B));
    const b = await connect(B.wsUrl, options(A));
    sessions.push(a, b);
    await Promise.all([a.established({ timeoutMs: 10_000 }), b.established({ timeoutMs: 10_000 })]);

    process.kill(A.proc.pid!, 'SIGSTOP');
    let sent = 0;
    let backedUp = false;
    try {
      const MAX_MESSAGES = 50_000; // 60 MB: far more than the socket buffers hold
      for (; sent < MAX_MESSAGES && !backedUp; sent++) {
        backedUp = !a.send(new Uint8Array(1200));
        if (sent % 500 === 499) await new Promise((resolve) => setTimeout(resolve, 1));
      }
      expect(backedUp).toBe(true);
      expect(a.bufferedAmount).toBeGreaterThan(64 * 1024);
    } finally {
      process.kill(A.proc.pid!, 'SIGCONT');
    }
    await a.drained();
    expect(a.bufferedAmount).toBeLessThanOrEqual(32 * 1024);
    // The backlog flowed to the server; the session is still up and carries a message after it.
    const marker = new Promise<void>((resolve) => b.on('message', (m) => m.byteLength === 6 && Buffer.from(m).toString() === 'marker' && resolve()));
    await eventually(() => a.status?.status === 'UDP_ESTABLISHED', 'still established', 10_000);
    const resend = setInterval(() => a.send(Buffer.from('marker')), 200);
    try {
      await marker;
    } finally {
      clearInterval(resend);
    }
    expect(sent).toBeGreaterThan(64 * 1024 / 1200);
  });
});

describe('reconnect', () => {
  it('is off by default: a server shutdown ends the session with 1001 server_shutdown', async () => {
    const [A, B] = await Promise.all([server(), server()]);
    const a = await open(A, B, newKey());
    const reconnects: unknown[] = [];
    a.on('reconnect', (r) => reconnects.push(r));
    await A.close();
    servers.splice(servers.indexOf(A), 1);
    await expect(a.ended).resolves.toMatchObject({ code: 1001, reason: 'server_shutdown' });
    expect(reconnects).toEqual([]);
  });

  it('when asked, reconnects with a reconnect event per attempt, and the new session establishes again', async () => {
    const B = await server();
    const port = await freePort();
    let A = await server({ port: String(port) });
    const key = newKey();
    const a = await connect(A.url, { hosts: ['127.0.0.1'], port: B.udp.ipv4!, key, token, reconnect: { minDelayMs: 50, maxDelayMs: 200, attempts: 50 } });
    sessions.push(a);
    const b = await open(B, A, key);
    await a.established({ timeoutMs: 10_000 });
    const firstId = a.id;
    const attempts: Array<{ attempt: number; delayMs: number; code: string }> = [];
    a.on('reconnect', (r) => attempts.push({ attempt: r.attempt, delayMs: r.delayMs, code: r.cause.code }));
    const statuses: string[] = [];
    a.on('status', (f) => statuses.push(f.status));

    await A.close();
    servers.splice(servers.indexOf(A), 1);
    await eventually(() => attempts.length >= 2, 'two reconnect attempts while no server answers');
    expect(attempts[0]).toMatchObject({ attempt: 1, code: 'closed' });
    expect(attempts[1]).toMatchObject({ attempt: 2, code: 'unreachable' });
    expect(() => a.send(Buffer.from('x'))).toThrow(expect.objectContaining({ code: 'not_open' }));
    // Each attempt is a status event too (the library's own RECONNECTING), after the server's CLOSED.
    expect(statuses.slice(0, 2)).toEqual(['CLOSED', 'RECONNECTING']);
    expect(a.status).toMatchObject({ status: 'RECONNECTING', session: firstId, attempt: attempts.length, reason: 'unreachable' });

    A = await server({ port: String(port) });
    // b's session still names A's old UDP port: open a fresh one toward the new A.
    await b.close();
    const b2 = await open(B, A, key);
    // a's candidates name B, unchanged: it reaches UDP_ESTABLISHED again on its own.
    await eventually(() => statuses.includes('CONNECTED'), 'a new CONNECTED', 10_000);
    expect(a.id).not.toBe(firstId);
    const again = await a.established({ timeoutMs: 10_000 });
    expect(again.session).toBe(a.id);
    await b2.established({ timeoutMs: 10_000 });
    const delays = attempts.map((r) => r.delayMs);
    expect(delays.every((d) => d >= 0 && d <= 200)).toBe(true);
    expect(attempts.map((r) => r.attempt)).toEqual(attempts.map((_, i) => i + 1));
    expect(statuses.filter((s) => s === 'RECONNECTING')).toHaveLength(attempts.length);
  });

  it('the first attempt is not retried: connect rejects with why', async () => {
    const port = await freePort();
    await expect(connect(`ws://127.0.0.1:${port}`, { hosts: ['127.0.0.1'], port: 40000, key: newKey(), token, reconnect: true })).rejects.toBeInstanceOf(UnreachableError);
  });
});
