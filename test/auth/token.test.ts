import { decodeJwt, decodeProtectedHeader, SignJWT, type JWTPayload } from 'jose';
import { createHmac } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  authenticate,
  CLOCK_TOLERANCE_S,
  extractToken,
  hs256Verifier,
  MAX_TOKEN_BYTES,
  mintToken,
  parseTtl,
} from '../../src/auth/token.js';
import { Refusal } from '../../src/errors.js';

const SECRET = 'correct horse battery staple';
const KEY = new TextEncoder().encode(SECRET);
const verifier = hs256Verifier(SECRET);
const nowS = (): number => Math.floor(Date.now() / 1000);
const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** An HS256 JWS written by hand (for payloads jose's SignJWT would not produce). */
function handMade(header: object, payload: unknown, secret = SECRET): string {
  return signed(`${b64url(header)}.${b64url(payload)}`, secret);
}

function signed(input: string, secret = SECRET): string {
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

async function expectRefusal(token: string, code: string, message: string): Promise<void> {
  const result = await authenticate(verifier, token);
  expect(result).toBeInstanceOf(Refusal);
  const refusal = result as Refusal;
  expect({ status: refusal.status, code: refusal.code, message: refusal.message, headers: refusal.headers }).toEqual({
    status: 401,
    code,
    message,
    headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
  });
}

describe('mintToken + hs256Verifier', () => {
  it('round-trips: the verified payload has sub, iat and exp = iat + ttl', async () => {
    const token = await mintToken(SECRET, 'alice', 900);
    const payload = await verifier.verify(token);
    expect(payload.sub).toBe('alice');
    expect(typeof payload.exp).toBe('number');
    expect(typeof payload.iat).toBe('number');
    expect(payload.exp! - payload.iat!).toBe(900);
    expect(Math.abs(payload.iat! - nowS())).toBeLessThanOrEqual(2);
  });

  it('authenticate returns the claims of a good token', async () => {
    const token = await mintToken(SECRET, 'bob', 60);
    const result = await authenticate(verifier, token);
    expect(result).not.toBeInstanceOf(Refusal);
    expect(result).toMatchObject({ sub: 'bob' } satisfies JWTPayload);
  });

  it('uses the given `now`: iat is its whole second, exp is iat + ttl', async () => {
    const now = new Date('2030-01-02T03:04:05.678Z');
    const token = await mintToken(SECRET, 'carol', 3600, now);
    const iat = Math.floor(now.getTime() / 1000);
    expect(decodeJwt(token)).toEqual({ sub: 'carol', iat, exp: iat + 3600 });
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'HS256', typ: 'JWT' });
  });

  it('is deterministic for the same inputs (HS256 has no randomness)', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    expect(await mintToken(SECRET, 'x', 60, now)).toBe(await mintToken(SECRET, 'x', 60, now));
  });

  it('a token minted with a fixed `now` in the future is accepted before its exp (no nbf is set)', async () => {
    const token = await mintToken(SECRET, 'dave', 60, new Date(Date.now() + 3600_000));
    expect(await authenticate(verifier, token)).toMatchObject({ sub: 'dave' });
  });

  it('the secret is used as UTF-8 bytes', async () => {
    const secret = 'sécret ✓';
    const token = await mintToken(secret, 'eve', 60);
    expect(await authenticate(hs256Verifier(secret), token)).toMatchObject({ sub: 'eve' });
    const input = token.slice(0, token.lastIndexOf('.'));
    expect(token.slice(token.lastIndexOf('.') + 1)).toBe(createHmac('sha256', Buffer.from(secret, 'utf8')).update(input).digest('base64url'));
  });
});

describe('parseTtl', () => {
  it.each<[string, number | null]>([
    ['90', 90],
    ['90s', 90],
    ['15m', 900],
    ['1h', 3600],
    ['2d', 172_800],
    ['1', 1],
    ['0090', 90],
    [' 90s ', 90],
    ['365d', 31_536_000],
    ['', null],
    ['0', null],
    ['0s', null],
    ['0d', null],
    ['1w', null],
    ['1y', null],
    ['-1', null],
    ['+1', null],
    ['1.5h', null],
    ['1e3', null],
    ['h', null],
    ['1 h', null],
    ['1H', null],
    ['1hm', null],
    ['1h30m', null],
    ['abc', null],
    ['99999999999999999999', null],
    ['9007199254740991', 9_007_199_254_740_991],
    ['104249991374d', 104_249_991_374 * 86_400],
    ['104249991375d', null],
  ])('%j → %s', (text, seconds) => {
    expect(parseTtl(text)).toBe(seconds);
  });
});

describe('authenticate: refusals', () => {
  it("an empty token is 'missing_token'", async () => {
    await expectRefusal('', 'missing_token', 'the token is empty');
  });

  it("an expired token (minted with a fixed past `now`) is 'expired_token'", async () => {
    const token = await mintToken(SECRET, 'alice', 60, new Date('2020-01-01T00:00:00Z'));
    await expectRefusal(token, 'expired_token', 'the token has expired');
  });

  it(`a token expired by less than the ${CLOCK_TOLERANCE_S}s clock tolerance is still accepted`, async () => {
    expect(CLOCK_TOLERANCE_S).toBe(5);
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('a').setExpirationTime(nowS() - 2).sign(KEY);
    expect(await authenticate(verifier, token)).toMatchObject({ sub: 'a' });
  });

  it('a token expired by more than the clock tolerance is refused', async () => {
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('a').setExpirationTime(nowS() - 30).sign(KEY);
    await expectRefusal(token, 'expired_token', 'the token has expired');
  });

  it("a token signed with another secret is 'invalid_token'", async () => {
    const token = await mintToken('another secret', 'mallory', 60);
    await expectRefusal(token, 'invalid_token', 'the token signature does not verify: it was likely signed with another secret or key (a token minted for another --jwt-secret, or one printed by an earlier `npm start` run, which picks a new secret each time)');
  });

  it("a token with a changed payload (signature kept) is 'invalid_token'", async () => {
    const [header, , signature] = (await mintToken(SECRET, 'alice', 60)).split('.');
    const forged = `${header}.${b64url({ sub: 'root', exp: nowS() + 60 })}.${signature}`;
    await expectRefusal(forged, 'invalid_token', 'the token signature does not verify: it was likely signed with another secret or key (a token minted for another --jwt-secret, or one printed by an earlier `npm start` run, which picks a new secret each time)');
  });

  it("an alg none token (hand-made, empty signature) is 'invalid_token'", async () => {
    const token = `${b64url({ alg: 'none' })}.${b64url({ sub: 'mallory', exp: nowS() + 3600 })}.`;
    await expectRefusal(token, 'invalid_token', 'the token algorithm is not allowed for this server');
  });

  it("an alg none token with typ JWT is 'invalid_token' too", async () => {
    const token = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'mallory', exp: nowS() + 3600 })}.`;
    await expectRefusal(token, 'invalid_token', 'the token algorithm is not allowed for this server');
  });

  it("an HS512 token with the right secret is 'invalid_token' (algorithm pinned to HS256)", async () => {
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS512' }).setSubject('a').setExpirationTime('1h').sign(KEY);
    await expectRefusal(token, 'invalid_token', 'the token algorithm is not allowed for this server');
  });

  it("a token without exp is 'invalid_token'", async () => {
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('forever').setIssuedAt().sign(KEY);
    await expectRefusal(token, 'invalid_token', 'the token has no exp claim');
  });

  it("a token whose exp is not a number is 'invalid_token'", async () => {
    await expectRefusal(handMade({ alg: 'HS256' }, { sub: 'a', exp: 'tomorrow' }), 'invalid_token', "the token's exp claim is not acceptable");
  });

  it("a token that is not valid yet (nbf in the future) is 'invalid_token'", async () => {
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('a')
      .setNotBefore(nowS() + 600)
      .setExpirationTime(nowS() + 3600)
      .sign(KEY);
    await expectRefusal(token, 'invalid_token', 'the token is not valid yet (nbf)');
  });

  it(`a token longer than MAX_TOKEN_BYTES (${MAX_TOKEN_BYTES}) is 'invalid_token' before any parsing`, async () => {
    expect(MAX_TOKEN_BYTES).toBe(8192);
    const token = await new SignJWT({ pad: 'x'.repeat(MAX_TOKEN_BYTES) })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('big')
      .setExpirationTime('1h')
      .sign(KEY);
    expect(token.length).toBeGreaterThan(MAX_TOKEN_BYTES);
    expect(await verifier.verify(token)).toMatchObject({ sub: 'big' }); // a valid token, refused only for its size
    await expectRefusal(token, 'invalid_token', 'the token is longer than 8192 bytes');
  });

  it('the size limit is inclusive: MAX_TOKEN_BYTES characters reach the verifier, one more does not', async () => {
    await expectRefusal('a'.repeat(MAX_TOKEN_BYTES), 'invalid_token', 'the token is malformed');
    await expectRefusal('a'.repeat(MAX_TOKEN_BYTES + 1), 'invalid_token', 'the token is longer than 8192 bytes');
  });

  it.each([
    ['one segment', 'abc'],
    ['two segments', 'abc.def'],
    ['four segments', 'a.b.c.d'],
    ['a header that is not JSON', `${Buffer.from('nope').toString('base64url')}.${b64url({})}.sig`],
    ['a payload that is not JSON (correctly signed)', signed(`${b64url({ alg: 'HS256' })}.${Buffer.from('nope').toString('base64url')}`)],
    ['a payload that is a JSON array', handMade({ alg: 'HS256' }, [1, 2])],
  ])("a malformed token (%s) is 'invalid_token'", async (_name, token) => {
    await expectRefusal(token, 'invalid_token', 'the token is malformed');
  });

  it('a verifier that throws a non-jose error gives a generic invalid_token', async () => {
    const broken = { kind: 'hs256' as const, verify: async (): Promise<JWTPayload> => Promise.reject(new Error('boom')) };
    const result = await authenticate(broken, 'anything');
    expect(result).toMatchObject({ status: 401, code: 'invalid_token', message: 'the token could not be verified' });
  });
});

describe('extractToken', () => {
  const request = (authorization?: string): IncomingMessage =>
    ({ headers: authorization === undefined ? {} : { authorization } }) as IncomingMessage;

  it.each<[string, string | undefined, string, string]>([
    ['Bearer header', 'Bearer abc.def.ghi', '', 'abc.def.ghi'],
    ['lower-case scheme', 'bearer abc', '', 'abc'],
    ['several spaces and a trailing space', 'Bearer   abc ', '', 'abc'],
    ['access_token query parameter', undefined, 'access_token=abc.def.ghi', 'abc.def.ghi'],
    ['an empty access_token (left to authenticate)', undefined, 'access_token=', ''],
  ])('%s', (_name, header, query, token) => {
    expect(extractToken(request(header), new URLSearchParams(query))).toBe(token);
  });

  it.each<[string, string | undefined, string, number, string, string]>([
    ['no token at all', undefined, '', 401, 'missing_token', 'a token is required: Authorization: Bearer <jwt>, or access_token=<jwt>'],
    ['Basic scheme', 'Basic dXNlcjpwYXNz', '', 401, 'invalid_token', 'the Authorization header must be "Bearer <token>"'],
    ['Bearer without a token', 'Bearer ', '', 401, 'invalid_token', 'the Authorization header must be "Bearer <token>"'],
    ['a token with a space in it', 'Bearer abc def', '', 401, 'invalid_token', 'the Authorization header must be "Bearer <token>"'],
    [
      'both header and query',
      'Bearer abc',
      'access_token=abc',
      400,
      'bad_parameter',
      'access_token: give the token either in the Authorization header or as access_token, not both',
    ],
  ])('%s is refused', (_name, header, query, status, code, message) => {
    const result = extractToken(request(header), new URLSearchParams(query));
    expect(result).toBeInstanceOf(Refusal);
    expect(result).toMatchObject({ status, code, message });
  });
});
