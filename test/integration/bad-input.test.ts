/**
 * The bad-input table: malformed query parameters, tokens, HTTP requests and frames, each with
 * its exact status or error code; after the table the same server still serves a normal
 * session end to end.
 */
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { startInProcess, type InProcessServer } from '../helpers/in-process.js';
import { rawRequest } from '../helpers/raw-http.js';
import { ScriptedPeer } from '../helpers/scripted-peer.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { bearer, proxyQuery, refusal } from '../helpers/upgrade.js';
import { TestClient } from '../helpers/ws-client.js';

let s: InProcessServer;
let token: string;
const KEY = randomBytes(32).toString('base64url');
const good = { host: '127.0.0.1', port: '40000', key: KEY };
const secret = new TextEncoder().encode(TEST_SECRET);
const nowS = () => Math.floor(Date.now() / 1000);
const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');

beforeAll(async () => {
  s = await startInProcess({ 'max-payload': '1200', 'upgrades-per-ip-per-s': '0', 'auth-failures-per-ip': '0' });
  token = await mintToken(TEST_SECRET, 'bad-input', 600);
});
afterAll(() => s.close());

const base = () => s.url.replace(/^http/, 'ws');

type Case = [name: string, params: Record<string, string | string[]>, headers: () => Promise<Record<string, string>> | Record<string, string>, status: number, code: string];

const withToken = () => bearer(token);
const queryCases: Case[] = [
  ['no parameters at all', {}, withToken, 400, 'bad_parameter'],
  ['host missing', { port: '40000', key: KEY }, withToken, 400, 'bad_parameter'],
  ['host empty', { ...good, host: '' }, withToken, 400, 'bad_parameter'],
  ['host with a port in it', { ...good, host: '127.0.0.1:80' }, withToken, 400, 'bad_parameter'],
  ['host in brackets', { ...good, host: '[::1]' }, withToken, 400, 'bad_parameter'],
  ['host with a space', { ...good, host: 'peer example' }, withToken, 400, 'bad_parameter'],
  ['host not ASCII', { ...good, host: 'bücher.example' }, withToken, 400, 'bad_parameter'],
  ['host label starting with -', { ...good, host: '-peer.example' }, withToken, 400, 'bad_parameter'],
  ['host with an empty label', { ...good, host: 'a..example' }, withToken, 400, 'bad_parameter'],
  ['host 254 characters long', { ...good, host: `${'a'.repeat(63)}.`.repeat(4).slice(0, 254) }, withToken, 400, 'bad_parameter'],
  ['host all digits, not an IP', { ...good, host: '1.2.3' }, withToken, 400, 'bad_parameter'],
  ['host bad IPv6', { ...good, host: '2001:db8:::1' }, withToken, 400, 'bad_parameter'],
  ['host unspecified IPv4', { ...good, host: '0.0.0.0' }, withToken, 400, 'bad_parameter'],
  ['host unspecified IPv6', { ...good, host: '::' }, withToken, 400, 'bad_parameter'],
  ['host multicast IPv4', { ...good, host: '224.0.0.1' }, withToken, 400, 'bad_parameter'],
  ['host multicast IPv6', { ...good, host: 'ff02::1' }, withToken, 400, 'bad_parameter'],
  ['host mapped multicast', { ...good, host: '::ffff:239.1.1.1' }, withToken, 400, 'bad_parameter'],
  ['host broadcast', { ...good, host: '255.255.255.255' }, withToken, 400, 'bad_parameter'],
  ['17 hosts', { ...good, host: Array.from({ length: 17 }, (_, i) => `10.0.0.${i + 1}`) }, withToken, 400, 'bad_parameter'],
  ['port missing', { host: '127.0.0.1', key: KEY }, withToken, 400, 'bad_parameter'],
  ['port 0', { ...good, port: '0' }, withToken, 400, 'bad_parameter'],
  ['port 65536', { ...good, port: '65536' }, withToken, 400, 'bad_parameter'],
  ['port negative', { ...good, port: '-1' }, withToken, 400, 'bad_parameter'],
  ['port in exponent form', { ...good, port: '4e4' }, withToken, 400, 'bad_parameter'],
  ['port with a space', { ...good, port: ' 80' }, withToken, 400, 'bad_parameter'],
  ['port twice', { ...good, port: ['1', '2'] }, withToken, 400, 'bad_parameter'],
  ['key missing', { host: '127.0.0.1', port: '40000' }, withToken, 400, 'bad_parameter'],
  ['key empty', { ...good, key: '' }, withToken, 400, 'bad_parameter'],
  ['key of 31 bytes', { ...good, key: randomBytes(31).toString('base64url') }, withToken, 400, 'bad_parameter'],
  ['key of 33 bytes', { ...good, key: randomBytes(33).toString('base64url') }, withToken, 400, 'bad_parameter'],
  ['key with two = of padding', { ...good, key: `${KEY}==` }, withToken, 400, 'bad_parameter'],
  ['key in standard base64', { ...good, key: `${KEY.slice(0, 41)}+/` }, withToken, 400, 'bad_parameter'],
  ['key twice', { ...good, key: [KEY, KEY] }, withToken, 400, 'bad_parameter'],
  ['an unknown parameter', { ...good, hots: '127.0.0.1' }, withToken, 400, 'bad_parameter'],
  ['access_token twice', { ...good, access_token: ['a', 'b'] }, () => ({}), 401, 'invalid_token'],
  ['token in both header and query', { ...good, access_token: 'x' }, withToken, 400, 'bad_parameter'],
];

const tokenCases: Case[] = [
  ['no token', good, () => ({}), 401, 'missing_token'],
  ['empty access_token', { ...good, access_token: '' }, () => ({}), 401, 'missing_token'],
  ['Authorization without Bearer', good, () => ({ Authorization: token }), 401, 'invalid_token'],
  ['Authorization: Basic', good, () => ({ Authorization: 'Basic dXNlcjpwYXNz' }), 401, 'invalid_token'],
  ['Bearer with nothing after it', good, () => ({ Authorization: 'Bearer ' }), 401, 'invalid_token'],
  ['Bearer with two values', good, () => ({ Authorization: `Bearer ${token} ${token}` }), 401, 'invalid_token'],
  ['garbage', good, () => bearer('garbage'), 401, 'invalid_token'],
  ['two segments', good, () => bearer('aaa.bbb'), 401, 'invalid_token'],
  ['header not JSON', good, () => bearer('bm90IGpzb24.e30.sig'), 401, 'invalid_token'],
  ['9 KiB token', good, () => bearer('a'.repeat(9 * 1024)), 401, 'invalid_token'],
  ['alg none', good, () => bearer(`${b64({ alg: 'none' })}.${b64({ sub: 'x', exp: nowS() + 600 })}.`), 401, 'invalid_token'],
  ['HS512', good, async () => bearer(await new SignJWT({}).setProtectedHeader({ alg: 'HS512' }).setExpirationTime('1h').sign(secret)), 401, 'invalid_token'],
  ['wrong secret', good, async () => bearer(await mintToken('another-secret-of-the-right-length!!', 'x', 600)), 401, 'invalid_token'],
  ['signature of another token', good, () => bearer(`${token.split('.').slice(0, 2).join('.')}.${token.split('.')[2]!.split('').reverse().join('')}`), 401, 'invalid_token'],
  ['payload changed after signing', good, () => bearer(`${token.split('.')[0]}.${b64({ sub: 'admin', exp: nowS() + 600 })}.${token.split('.')[2]}`), 401, 'invalid_token'],
  ['no exp', good, async () => bearer(await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).sign(secret)), 401, 'invalid_token'],
  ['exp not a number', good, async () => bearer(await new SignJWT({ exp: 'soon' } as never).setProtectedHeader({ alg: 'HS256' }).sign(secret)), 401, 'invalid_token'],
  ['expired', good, async () => bearer(await mintToken(TEST_SECRET, 'x', 60, new Date(Date.now() - 3600_000))), 401, 'expired_token'],
  ['not valid yet', good, async () => bearer(await new SignJWT({ nbf: nowS() + 3600 }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('2h').sign(secret)), 401, 'invalid_token'],
  ['bad apx_targets claim', good, async () => bearer(await new SignJWT({ apx_targets: 'everything' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(secret)), 401, 'invalid_token'],
  ['target outside the token claim', good, async () => bearer(await new SignJWT({ apx_targets: ['192.0.2.0/24'] }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(secret)), 403, 'target_denied'],
];

describe('bad input: query parameters and tokens, before the upgrade', () => {
  it('has at least 40 cases', () => {
    expect(queryCases.length + tokenCases.length).toBeGreaterThanOrEqual(40);
  });

  it.each([...queryCases, ...tokenCases].map((c) => [`${c[0]} -> ${c[3]} ${c[4]}`, ...c] as const))('%s', async (_, name, params, headers, status, code) => {
    const r = await refusal(`${base()}${proxyQuery(params)}`, await headers());
    expect({ name, status: r.status, code: r.body.error.code }).toEqual({ name, status, code });
    expect(r.body.error.message.length).toBeGreaterThan(0);
    if (status === 400) expect(r.body.error.message).toMatch(/^[a-z_]+: /);
  });
});

const raw = (bytes: string) => rawRequest(s.url, bytes);

describe('bad input: HTTP requests', () => {
  it.each([
    ['an unknown path', `GET /v0/ws/nope HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`, 404],
    ['a POST upgrade', `POST /v0/ws/proxy HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n`, 405],
    ['a plain GET of the WebSocket path', `GET /v0/ws/proxy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 426],
    ['a request line that is not HTTP', `HELLO THERE\r\n\r\n`, 400],
    ['a header without a colon', `GET / HTTP/1.1\r\nthis is not a header\r\n\r\n`, 400],
  ])('%s -> %i', async (_, bytes, status) => {
    expect(await raw(bytes)).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
  });

  it.each([
    ['a bad Sec-WebSocket-Key', 'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short'],
    ['no Sec-WebSocket-Key', 'Sec-WebSocket-Version: 13'],
    ['an unknown Sec-WebSocket-Version', 'Sec-WebSocket-Version: 99\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='],
  ])('an upgrade with %s is refused with 400 bad_handshake before any token check', async (_, headers) => {
    const req = `GET ${proxyQuery(good)} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${headers}\r\nAuthorization: Bearer ${token}\r\n\r\n`;
    const answer = await raw(req);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('"code":"bad_handshake"');
  });
});

describe('bad input: frames on an open session (the session goes on)', () => {
  it('text, oversized, queue overflow each get their error frame; the session stays open', async () => {
    const c = new TestClient(s.wsUrl, { hosts: ['192.0.2.1'], port: 40000, key: KEY, token });
    await c.waitForStatus('UDP_WAITING');
    c.send('a text frame');
    c.send(Buffer.alloc(1201));
    c.send(Buffer.alloc(0)); // empty is a valid (empty) datagram payload: queued, not an error
    for (let i = 0; i < 300; i++) c.send(Buffer.alloc(10)); // more than the 256-message queue
    const queueFull = () => c.errors.filter((e) => e.code === 'queue_full').length;
    await c.until(() => queueFull() === 300 + 1 - 256, 'a queue_full error for each message over the queue');
    expect(c.errors.slice(0, 2).map((e) => e.code)).toEqual(['text_not_supported', 'payload_too_large']);
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    await c.close();
  });

  it('a frame over the WebSocket frame limit closes that connection with 1009, and only that one', async () => {
    const c = new TestClient(s.wsUrl, { hosts: ['192.0.2.1'], port: 40000, key: KEY, token });
    const other = new TestClient(s.wsUrl, { hosts: ['192.0.2.1'], port: 40000, key: KEY, token });
    await Promise.all([c.waitForStatus('UDP_WAITING'), other.waitForStatus('UDP_WAITING')]);
    c.send(Buffer.alloc(70 * 1024));
    expect(await c.closed).toBe(1009);
    expect(other.ws.readyState).toBe(WebSocket.OPEN);
    await other.close();
  });
});

describe('after the table', () => {
  it('the server still serves a normal session end to end', async () => {
    const psk = randomBytes(32);
    const peer = await ScriptedPeer.start('ipv4', psk);
    const c = new TestClient(s.wsUrl, { hosts: ['127.0.0.1'], port: peer.endpoint.port, key: psk.toString('base64url'), token });
    await c.waitForStatus('UDP_ESTABLISHED');
    c.send(Buffer.from('still here'));
    await peer.until(() => peer.dataReceived().length === 1, 'the message');
    expect(peer.dataReceived().map(String)).toEqual(['still here']);
    await c.close();
    peer.stop();
  });
});
