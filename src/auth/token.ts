/**
 * Bearer tokens: where a request carries one, how a refusal says what is wrong with it, and
 * minting HS256 tokens. jose's errors are translated here; nothing else in autoprox sees them.
 */
import { errors, SignJWT, type JWTPayload } from 'jose';
import type { IncomingMessage } from 'node:http';
import { Refusal } from '../errors.js';
import type { Verifier } from './verifier.js';

export { DEFAULT_CLOCK_TOLERANCE_S as CLOCK_TOLERANCE_S, hs256Verifier, type Verifier } from './verifier.js';

/** Longer tokens are refused before parsing. */
export const MAX_TOKEN_BYTES = 8 * 1024;
const BEARER = /^Bearer +([^ ]+) *$/i;

function unauthorized(code: 'missing_token' | 'invalid_token' | 'expired_token', message: string): Refusal {
  return new Refusal(401, code, message, { 'WWW-Authenticate': `Bearer error="invalid_token"` });
}

/** The token of a request: `Authorization: Bearer` header or `access_token` query parameter. */
export function extractToken(req: IncomingMessage, query: URLSearchParams): string | Refusal {
  const header = req.headers.authorization;
  const fromQuery = query.get('access_token');
  if (header !== undefined && fromQuery !== null) {
    return new Refusal(400, 'bad_parameter', 'access_token: give the token either in the Authorization header or as access_token, not both');
  }
  if (header !== undefined) {
    const match = BEARER.exec(header);
    if (!match) return unauthorized('invalid_token', 'the Authorization header must be "Bearer <token>"');
    return match[1]!;
  }
  if (fromQuery !== null) return fromQuery;
  return unauthorized('missing_token', 'a token is required: Authorization: Bearer <jwt>, or access_token=<jwt>');
}

/** Verifies a token; returns its claims or the 401 to answer. */
export async function authenticate(verifier: Verifier, token: string): Promise<JWTPayload | Refusal> {
  if (token.length === 0) return unauthorized('missing_token', 'the token is empty');
  if (Buffer.byteLength(token) > MAX_TOKEN_BYTES) return unauthorized('invalid_token', `the token is longer than ${MAX_TOKEN_BYTES} bytes`);
  try {
    return await verifier.verify(token);
  } catch (err) {
    if (isKeySourceFailure(err)) {
      return new Refusal(503, 'auth_unavailable', 'the token keys (JWKS) cannot be fetched right now; try again', { 'Retry-After': '5' });
    }
    return unauthorized(...describeJoseError(err));
  }
}

/** The JWKS endpoint failed (down, slow, garbage): our problem, not the client's token. */
function isKeySourceFailure(err: unknown): boolean {
  return (
    err instanceof errors.JWKSTimeout ||
    err instanceof errors.JWKSInvalid ||
    (err instanceof errors.JOSEError && err.code === 'ERR_JOSE_GENERIC' && /fetch|response/i.test(err.message)) ||
    (err instanceof TypeError && /fetch/i.test(err.message))
  );
}

/**
 * A signature that does not verify is nearly always a token of another secret: say which ones
 * people mix up (the message is shown to clients; the code stays `invalid_token`).
 */
export const SIGNATURE_MISMATCH =
  'the token signature does not verify: it was likely signed with another secret or key (a token minted for another --jwt-secret, or one printed by an earlier `npm start` run, which picks a new secret each time)';

function describeJoseError(err: unknown): ['invalid_token' | 'expired_token', string] {
  if (err instanceof errors.JWTExpired) return ['expired_token', 'the token has expired'];
  if (err instanceof errors.JWKSNoMatchingKey) return ['invalid_token', 'no key of the JWKS matches the token (kid/alg)'];
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'exp' && err.reason === 'missing') return ['invalid_token', 'the token has no exp claim'];
    if (err.claim === 'nbf') return ['invalid_token', 'the token is not valid yet (nbf)'];
    if (err.claim === 'iss') return ['invalid_token', 'the token issuer (iss) is not the expected one'];
    if (err.claim === 'aud') return ['invalid_token', 'the token audience (aud) is not the expected one'];
    return ['invalid_token', `the token's ${err.claim} claim is not acceptable`];
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return ['invalid_token', 'the token algorithm is not allowed for this server'];
  if (err instanceof errors.JOSENotSupported) return ['invalid_token', 'the token algorithm is not supported'];
  if (err instanceof errors.JWSSignatureVerificationFailed) return ['invalid_token', SIGNATURE_MISMATCH];
  if (err instanceof errors.JOSEError) return ['invalid_token', 'the token is malformed'];
  return ['invalid_token', 'the token could not be verified'];
}

/** Parses "90", "90s", "15m", "1h", "2d" into seconds. */
export function parseTtl(text: string): number | null {
  const match = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (!match) return null;
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[match[2] as '' | 's' | 'm' | 'h' | 'd'];
  const seconds = Number(match[1]) * unit;
  return seconds > 0 && Number.isSafeInteger(seconds) ? seconds : null;
}

/** Mints an HS256 token for `subject`, valid for `ttlSeconds`, with optional autoprox claims. */
export async function mintToken(
  secret: string,
  subject: string,
  ttlSeconds: number,
  now = new Date(),
  claims: Record<string, unknown> = {},
): Promise<string> {
  const issuedAt = Math.floor(now.getTime() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(subject)
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + ttlSeconds)
    .sign(new TextEncoder().encode(secret));
}

/** The per-IP failed-authentication limits, as the request authentication needs them. */
export interface AuthFailureLimits {
  authBlocked(client: string): Promise<number | null>;
  authFailed(client: string): Promise<void>;
}

/**
 * A request's token, verified, under the failed-authentication limits: a blocked address gets
 * 429 before its token is looked at, and every 401 counts against its address.
 */
export async function authenticateRequest(
  req: IncomingMessage,
  query: URLSearchParams,
  client: string,
  verifier: Verifier,
  limits: AuthFailureLimits,
): Promise<JWTPayload | Refusal> {
  const blocked = await limits.authBlocked(client);
  if (blocked !== null) {
    return new Refusal(429, 'rate_limited', 'too many failed authentications from this address: blocked for a while', {
      'Retry-After': String(blocked),
    });
  }
  const token = extractToken(req, query);
  if (token instanceof Refusal) return token;
  const claims = await authenticate(verifier, token);
  if (claims instanceof Refusal && claims.status === 401) await limits.authFailed(client);
  return claims;
}
