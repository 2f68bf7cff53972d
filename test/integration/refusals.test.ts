/**
 * Every refusal of the contract, one case each: an HTTP status and a JSON body
 * `{"error":{"code","message"}}` before any upgrade, through a real `ws` client.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { bearer, proxyQuery, refusal } from '../helpers/upgrade.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { startInProcess } from '../helpers/in-process.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { TestClient } from '../helpers/ws-client.js';

type Server = Awaited<ReturnType<typeof startInProcess>>;
let server: Server;
let token: string;
const KEY = randomBytes(32).toString('base64url');

beforeAll(async () => {
  server = await startInProcess();
  token = await mintToken(TEST_SECRET, 'refusal-test', 600);
});
afterAll(() => server.close());

const base = () => server.wsUrl.replace('/v0/ws/proxy', '');
const attempt = (path: string, headers: Record<string, string> = {}) => refusal(`${base()}${path}`, headers);
const q = proxyQuery;
const good = { host: '127.0.0.1', port: '40000', key: KEY };

describe('refusals before the upgrade', () => {
  it('404 for an unknown path', async () => {
    const r = await attempt('/v0/ws/nope', bearer(token));
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('not_found');
  });

  it('401 without a token', async () => {
    const r = await attempt(q(good));
    expect(r.status).toBe(401);
    expect(r.body.error).toMatchObject({ code: 'missing_token' });
    expect(r.headers['www-authenticate']).toMatch(/^Bearer/);
  });

  it('401 for a malformed Authorization header', async () => {
    const r = await attempt(q(good), { Authorization: `Token ${token}` });
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('invalid_token');
  });

  it('401 for a token signed with another secret', async () => {
    const r = await attempt(q(good), bearer(await mintToken('another-secret-another-secret-xx', 'x', 600)));
    expect(r.status).toBe(401);
    expect(r.body.error).toMatchObject({ code: 'invalid_token', message: expect.stringMatching(/signature/) });
  });

  it('401 for an expired token', async () => {
    const expired = await mintToken(TEST_SECRET, 'x', 60, new Date(Date.now() - 3600_000));
    const r = await attempt(q(good), bearer(expired));
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('expired_token');
  });

  it('401 for a token without exp', async () => {
    const noExp = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('x').sign(new TextEncoder().encode(TEST_SECRET));
    const r = await attempt(q(good), bearer(noExp));
    expect(r.status).toBe(401);
    expect(r.body.error).toMatchObject({ code: 'invalid_token', message: expect.stringMatching(/exp/) });
  });

  it('401 for garbage instead of a JWT', async () => {
    const r = await attempt(q(good), bearer('not.a.jwt'));
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('invalid_token');
  });

  it('accepts the token as access_token for browsers, and refuses a bad one there too', async () => {
    const r = await attempt(q({ ...good, access_token: 'bad' }));
    expect(r.status).toBe(401);
    const opened = await new Promise<boolean>((resolve) => {
      const ws = new WebSocket(`${server.wsUrl}?${new URLSearchParams({ ...good, access_token: token })}`);
      ws.on('open', () => {
        ws.close();
        resolve(true);
      });
      ws.on('unexpected-response', () => resolve(false));
      ws.on('error', () => resolve(false));
    });
    expect(opened).toBe(true);
  });

  const badParams: Array<[string, Record<string, string | string[]>, string]> = [
    ['host missing', { port: '40000', key: KEY }, 'host'],
    ['host empty', { ...good, host: '' }, 'host'],
    ['host with brackets', { ...good, host: '[::1]' }, 'host'],
    ['host not an address nor a name', { ...good, host: 'bad_host!' }, 'host'],
    ['host a bad IPv6 literal', { ...good, host: '2001:db8::zz' }, 'host'],
    ['host unspecified IPv4', { ...good, host: '0.0.0.0' }, 'host'],
    ['host unspecified IPv6', { ...good, host: '::' }, 'host'],
    ['host multicast IPv4', { ...good, host: '239.1.2.3' }, 'host'],
    ['host multicast IPv6', { ...good, host: 'ff02::1' }, 'host'],
    ['host broadcast', { ...good, host: '255.255.255.255' }, 'host'],
    ['host too many', { ...good, host: Array.from({ length: 17 }, (_, i) => `10.0.0.${i + 1}`) }, 'host'],
    ['port missing', { host: '127.0.0.1', key: KEY }, 'port'],
    ['port 0', { ...good, port: '0' }, 'port'],
    ['port 65536', { ...good, port: '65536' }, 'port'],
    ['port not a number', { ...good, port: 'http' }, 'port'],
    ['port negative', { ...good, port: '-1' }, 'port'],
    ['port twice', { ...good, port: ['1', '2'] }, 'port'],
    ['key missing', { host: '127.0.0.1', port: '40000' }, 'key'],
    ['key too short', { ...good, key: KEY.slice(0, 42) }, 'key'],
    ['key too long', { ...good, key: `${KEY}AAAA` }, 'key'],
    ['key in standard base64', { ...good, key: `${KEY.slice(0, 41)}+/` }, 'key'],
    ['key twice', { ...good, key: [KEY, KEY] }, 'key'],
    ['unknown parameter', { ...good, hots: 'x' }, 'hots'],
  ];
  it.each(badParams)('400 naming the parameter: %s', async (_, params, param) => {
    const r = await attempt(q(params), bearer(token));
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('bad_parameter');
    expect(r.body.error.message.startsWith(`${param}:`)).toBe(true);
  });

  it('426 for a plain GET of the WebSocket endpoint', async () => {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${server.url}/v0/ws/proxy`, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(426);
    expect(JSON.parse(body).error.code).toBe('upgrade_required');
  });

  it('after all the refusals, a normal session still opens', async () => {
    const c = new TestClient(server.wsUrl, { hosts: ['127.0.0.1'], port: 40000, key: KEY, token });
    await c.waitForStatus('UDP_WAITING');
    await c.close();
  });
});
