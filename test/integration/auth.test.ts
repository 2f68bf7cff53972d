/**
 * Token auth against real servers: keys generated inside the tests, a JWKS served on loopback,
 * real jose tokens, real ws clients.
 */
import { randomBytes } from 'node:crypto';
import { writeFile, mkdtemp } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startInProcess, type InProcessServer } from '../helpers/in-process.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { attempt, bearer, proxyQuery, refusal } from '../helpers/upgrade.js';
import { sleep, TestClient } from '../helpers/ws-client.js';

const KEY = randomBytes(32).toString('base64url');
const target = { host: '127.0.0.1', port: '40000', key: KEY };
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(flags: Record<string, string | boolean> = {}): Promise<InProcessServer> {
  const s = await startInProcess(flags);
  cleanups.push(() => s.close());
  return s;
}
const urlOf = (s: InProcessServer, params: Record<string, string | string[]> = target) =>
  `${s.url.replace(/^http/, 'ws')}${proxyQuery(params)}`;

interface Signer {
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
  pem: string;
}

async function signer(alg: 'RS256' | 'ES256' | 'EdDSA'): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  return { alg, privateKey, publicJwk: await exportJWK(publicKey), pem: await exportSPKI(publicKey) };
}

function token(s: Signer, claims: Record<string, unknown> = {}, opts: { exp?: number | string; kid?: string; iss?: string; aud?: string } = {}) {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: s.alg, ...(opts.kid ? { kid: opts.kid } : {}) }).setSubject('alice');
  jwt.setExpirationTime(opts.exp ?? '10m');
  if (opts.iss) jwt.setIssuer(opts.iss);
  if (opts.aud) jwt.setAudience(opts.aud);
  return jwt.sign(s.privateKey);
}

const hs256 = (claims: Record<string, unknown> = {}, secret = TEST_SECRET, exp: number | string = '10m') =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setExpirationTime(exp).sign(new TextEncoder().encode(secret));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'autoprox-auth-'));
});

describe('--jwt-public-key', () => {
  it.each(['RS256', 'ES256', 'EdDSA'] as const)('accepts %s tokens signed by the key (PEM file), refuses other keys', async (alg) => {
    const mine = await signer(alg);
    const other = await signer(alg);
    const file = join(dir, `${alg}.pem`);
    await writeFile(file, mine.pem);
    const s = await server({ 'jwt-public-key': file });
    expect(await attempt(urlOf(s), bearer(await token(mine)))).toBe('open');
    const r = await refusal(urlOf(s), bearer(await token(other)));
    expect(r.status).toBe(401);
    expect(r.body.error.message).toMatch(/signature/);
  });

  it('accepts a JWK file', async () => {
    const mine = await signer('ES256');
    const file = join(dir, 'key.jwk');
    await writeFile(file, JSON.stringify(mine.publicJwk));
    const s = await server({ 'jwt-public-key': file });
    expect(await attempt(urlOf(s), bearer(await token(mine)))).toBe('open');
  });

  it('refuses algorithm confusion: an HS256 token whose "secret" is the public key', async () => {
    const mine = await signer('RS256');
    const file = join(dir, 'confusion.pem');
    await writeFile(file, mine.pem);
    const s = await server({ 'jwt-public-key': file });
    const forged = await hs256({}, mine.pem);
    const r = await refusal(urlOf(s), bearer(forged));
    expect(r).toMatchObject({ status: 401, body: { error: { code: 'invalid_token', message: 'the token algorithm is not allowed for this server' } } });
  });

  it('refuses alg none', async () => {
    const mine = await signer('ES256');
    const file = join(dir, 'none.pem');
    await writeFile(file, mine.pem);
    const s = await server({ 'jwt-public-key': file });
    const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const none = `${b64({ alg: 'none' })}.${b64({ sub: 'mallory', exp: Math.floor(Date.now() / 1000) + 600 })}.`;
    expect((await refusal(urlOf(s), bearer(none))).status).toBe(401);
  });

  it('refuses a private key, a missing file and a garbage file at start, naming the flag', async () => {
    const { loadVerifier } = await import('../../src/auth/verifier.js');
    const base = { jwtSecret: null, jwksUrl: null, jwtIssuer: null, jwtAudience: null, jwtClockToleranceS: 5 };
    const mine = await signer('ES256');
    const privateFile = join(dir, 'private.jwk');
    await writeFile(privateFile, JSON.stringify(await exportJWK(mine.privateKey)));
    const garbage = join(dir, 'garbage.pem');
    await writeFile(garbage, 'not a key');
    await expect(loadVerifier({ ...base, jwtPublicKey: privateFile })).rejects.toThrow(/--jwt-public-key: this JWK holds a private key/);
    await expect(loadVerifier({ ...base, jwtPublicKey: join(dir, 'missing.pem') })).rejects.toThrow(/--jwt-public-key: cannot read .*ENOENT/);
    await expect(loadVerifier({ ...base, jwtPublicKey: garbage })).rejects.toThrow(/--jwt-public-key: not a PEM public key or a JWK/);
  });
});

describe('--jwks-url', () => {
  let jwks: Server;
  let jwksUrl: string;
  let keys: JWK[] = [];
  let up = true;
  let fetches = 0;
  const a = signer('RS256');
  const b = signer('EdDSA');

  beforeAll(async () => {
    jwks = createServer((req, res) => {
      fetches++;
      if (!up) {
        res.destroy();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(jwks.address() as { port: number }).port}/.well-known/jwks.json`;
  });
  afterAll(() => new Promise((resolve) => jwks.close(resolve)));

  it('verifies tokens with the key named by kid, for several algorithms, and caches the set', async () => {
    const [ka, kb] = await Promise.all([a, b]);
    keys = [
      { ...ka.publicJwk, kid: 'a', alg: 'RS256', use: 'sig' },
      { ...kb.publicJwk, kid: 'b', alg: 'EdDSA', use: 'sig' },
    ];
    up = true;
    fetches = 0;
    const s = await server({ 'jwks-url': jwksUrl });
    expect(await attempt(urlOf(s), bearer(await token(ka, {}, { kid: 'a' })))).toBe('open');
    expect(await attempt(urlOf(s), bearer(await token(kb, {}, { kid: 'b' })))).toBe('open');
    expect(fetches).toBe(1);
    // A token with an unknown kid is the client's problem: 401.
    const r = await refusal(urlOf(s), bearer(await token(ka, {}, { kid: 'nope' })));
    expect(r).toMatchObject({ status: 401, body: { error: { code: 'invalid_token' } } });
    // An HS256 token is never accepted from a JWKS server.
    expect((await refusal(urlOf(s), bearer(await hs256()))).status).toBe(401);
  });

  it('answers 503 with Retry-After, not 401, when the JWKS cannot be fetched', async () => {
    const ka = await a;
    up = false;
    const s = await server({ 'jwks-url': jwksUrl });
    const r = await refusal(urlOf(s), bearer(await token(ka, {}, { kid: 'a' })));
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('auth_unavailable');
    expect(r.headers['retry-after']).toBe('5');
    up = true;
  });
});

describe('issuer, audience, time', () => {
  it('requires the configured issuer and audience', async () => {
    const mine = await signer('ES256');
    const file = join(dir, 'iss.pem');
    await writeFile(file, mine.pem);
    const s = await server({ 'jwt-public-key': file, 'jwt-issuer': 'https://auth.example/', 'jwt-audience': 'autoprox' });
    expect(await attempt(urlOf(s), bearer(await token(mine, {}, { iss: 'https://auth.example/', aud: 'autoprox' })))).toBe('open');
    const wrongIss = await refusal(urlOf(s), bearer(await token(mine, {}, { iss: 'https://evil.example/', aud: 'autoprox' })));
    expect(wrongIss).toMatchObject({ status: 401, body: { error: { message: expect.stringMatching(/issuer/) } } });
    const wrongAud = await refusal(urlOf(s), bearer(await token(mine, {}, { iss: 'https://auth.example/', aud: 'other' })));
    expect(wrongAud).toMatchObject({ status: 401, body: { error: { message: expect.stringMatching(/audience/) } } });
    const none = await refusal(urlOf(s), bearer(await token(mine)));
    expect(none.status).toBe(401);
  });

  it('refuses a token that is not valid yet, within the configured clock tolerance only', async () => {
    const s = await server({ 'jwt-clock-tolerance-s': '30' });
    const nbf = (seconds: number) =>
      new SignJWT({ nbf: Math.floor(Date.now() / 1000) + seconds })
        .setProtectedHeader({ alg: 'HS256' })
        .setExpirationTime('10m')
        .sign(new TextEncoder().encode(TEST_SECRET));
    expect(await attempt(urlOf(s), bearer(await nbf(20)))).toBe('open');
    expect(await refusal(urlOf(s), bearer(await nbf(120)))).toMatchObject({ status: 401, body: { error: { message: expect.stringMatching(/not valid yet/) } } });
  });

  it('closes a session with code 4003 when its token expires, after a CLOSED frame that says so', async () => {
    const s = await server({ 'jwt-clock-tolerance-s': '0' });
    const exp = Math.floor(Date.now() / 1000) + 2;
    const c = new TestClient(s.wsUrl, { hosts: ['127.0.0.1'], port: 40000, key: KEY, token: await hs256({}, TEST_SECRET, exp) });
    cleanups.push(() => c.close());
    expect(await c.waitForStatus('CLOSED', {}, 5000)).toMatchObject({ reason: 'token_expired' });
    expect(await c.closed).toBe(4003);
  });

  it('with --session-outlives-token, the session stays open past the token', async () => {
    const s = await server({ 'session-outlives-token': true, 'jwt-clock-tolerance-s': '0' });
    const exp = Math.floor(Date.now() / 1000) + 1;
    const c = new TestClient(s.wsUrl, { hosts: ['127.0.0.1'], port: 40000, key: KEY, token: await hs256({}, TEST_SECRET, exp) });
    cleanups.push(() => c.close());
    await c.waitForStatus('UDP_WAITING');
    await sleep(2200);
    expect(c.status?.status).toBe('UDP_WAITING');
  });
});

describe('token claims', () => {
  it('apx_targets: literal hosts outside the list are refused with 403 naming the host', async () => {
    const s = await server();
    const t = await hs256({ apx_targets: ['198.51.100.0/24:40000-40100', '[2001:db8::/32]'] });
    expect(await attempt(urlOf(s, { ...target, host: '198.51.100.7', port: '40050' }), bearer(t))).toBe('open');
    expect(await attempt(urlOf(s, { ...target, host: '2001:db8::7', port: '9' }), bearer(t))).toBe('open');
    const r = await refusal(urlOf(s, { ...target, host: '198.51.100.7', port: '40200' }), bearer(t));
    expect(r).toMatchObject({ status: 403, body: { error: { code: 'target_denied', message: expect.stringMatching(/^host: 198\.51\.100\.7 port 40200 is not among the token's allowed targets/) } } });
    expect((await refusal(urlOf(s, { ...target, host: '127.0.0.1' }), bearer(t))).status).toBe(403);
  });

  it('apx_targets: a DNS name resolving outside the list ends the session with no_candidates, saying why', async () => {
    const s = await server();
    const t = await hs256({ apx_targets: ['198.51.100.0/24'] });
    const c = new TestClient(s.wsUrl, { hosts: ['localhost'], port: 40000, key: KEY, token: t });
    cleanups.push(() => c.close());
    const closed = await c.waitForStatus('CLOSED');
    expect(closed.reason).toBe('no_candidates');
    expect(closed.message).toMatch(/localhost: 127\.0\.0\.1 port 40000 is not among the token's allowed targets/);
  });

  it('a malformed claim is a 401 that names it', async () => {
    const s = await server();
    for (const [claims, name] of [
      [{ apx_targets: '10.0.0.0/8' }, 'apx_targets'],
      [{ apx_targets: ['10.0.0.0/99'] }, 'apx_targets'],
      [{ apx_max_sessions: 0 }, 'apx_max_sessions'],
      [{ apx_max_sessions: 'many' }, 'apx_max_sessions'],
      [{ apx_admin: 'yes' }, 'apx_admin'],
    ] as const) {
      const r = await refusal(urlOf(s), bearer(await hs256(claims as Record<string, unknown>)));
      expect(r.status).toBe(401);
      expect(r.body.error.message).toContain(name);
    }
  });

  it('apx_max_sessions limits concurrent sessions of the subject (429 with Retry-After); a closed one frees its slot', async () => {
    const s = await server();
    const t = await hs256({ apx_max_sessions: 2 });
    const open = [0, 1].map(() => new TestClient(s.wsUrl, { hosts: ['127.0.0.1'], port: 40000, key: KEY, token: t }));
    cleanups.push(() => Promise.all(open.map((c) => c.close())));
    await Promise.all(open.map((c) => c.opened));
    const r = await refusal(urlOf(s), bearer(t));
    expect(r).toMatchObject({ status: 429, body: { error: { code: 'too_many_sessions' } } });
    expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
    // Another subject is not affected.
    const other = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('bob').setExpirationTime('10m').sign(new TextEncoder().encode(TEST_SECRET));
    expect(await attempt(urlOf(s), bearer(other))).toBe('open');
    await open[0]!.close();
    await sleep(50);
    expect(await attempt(urlOf(s), bearer(t))).toBe('open');
  });
});
