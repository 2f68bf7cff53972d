/**
 * Whether an upgrade request may open a session, checked in this order, each refusal an HTTP
 * status before the 101: path and method, capacity, per-IP upgrade rate, auth-failure block,
 * token, token claims, query parameters, target policy for literal hosts, per-subject sessions.
 */
import type { IncomingMessage } from 'node:http';
import type { Grants } from '../auth/claims.js';
import { grantsOf } from '../auth/claims.js';
import { authenticateRequest } from '../auth/token.js';
import type { Verifier } from '../auth/verifier.js';
import { Refusal } from '../errors.js';
import type { RequestLimits } from '../limits/request-limits.js';
import type { SessionCounter } from '../limits/session-counter.js';
import { normalizeAddress } from '../net/address.js';
import type { TargetPolicy } from '../net/target-policy.js';
import { parseProxyParams, type ProxyParams } from './proxy-params.js';

export const PROXY_PATH = '/v0/ws/proxy';

export interface Admitted {
  id: string;
  params: ProxyParams;
  grants: Grants;
  client: string;
  /** Gives back what admission took (a server slot, a per-subject slot): call once, at the end. */
  release: () => void;
}

export interface AdmissionDeps {
  verifier: Verifier;
  limits: RequestLimits;
  sessions: SessionCounter;
  policy: TargetPolicy;
  maxSessionsPerSubject: number;
  /** Takes a server-wide session slot at once (no await before it): its release, or the refusal. */
  reserve: () => (() => void) | Refusal;
}

const tooMany = (code: 'rate_limited' | 'too_many_sessions', message: string, retryAfterS: number) =>
  new Refusal(429, code, message, { 'Retry-After': String(retryAfterS) });

/** What is wrong with the WebSocket handshake headers (RFC 6455 section 4.2.1), checked before any work. */
function handshakeProblem(req: IncomingMessage): string | null {
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return 'the Upgrade header must be "websocket"';
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !/^[+/0-9A-Za-z]{22}==$/.test(key)) return 'Sec-WebSocket-Key must be 16 bytes in base64';
  const version = req.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') return 'Sec-WebSocket-Version must be 13';
  return null;
}


/** Seconds a client over its per-subject session limit is asked to wait before retrying. */
const SESSION_LIMIT_RETRY_S = 5;

export async function admit(req: IncomingMessage, client: string, id: string, deps: AdmissionDeps): Promise<Admitted | Refusal> {
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://autoprox.invalid');
  } catch {
    return new Refusal(400, 'bad_parameter', 'the request URL cannot be parsed');
  }
  if (url.pathname !== PROXY_PATH) return new Refusal(404, 'not_found', `no such path: ${url.pathname}`);
  if (req.method !== 'GET') return new Refusal(405, 'method_not_allowed', 'use GET to open a session', { Allow: 'GET' });
  const handshake = handshakeProblem(req);
  if (handshake) return new Refusal(400, 'bad_handshake', handshake);
  const slot = deps.reserve();
  if (slot instanceof Refusal) return slot;
  let admitted = false;
  try {
    const result = await check(req, url, client, id, deps, slot);
    admitted = !(result instanceof Refusal);
    return result;
  } finally {
    // Refused, or something threw on the way: the slot goes back (an admitted one is the session's).
    if (!admitted) slot();
  }
}

async function check(
  req: IncomingMessage,
  url: URL,
  client: string,
  id: string,
  deps: AdmissionDeps,
  slot: () => void,
): Promise<Admitted | Refusal> {
  const wait = await deps.limits.upgradeAttempt(client);
  if (wait !== null) return tooMany('rate_limited', 'too many upgrade attempts from this address', wait);
  const claims = await authenticateRequest(req, url.searchParams, client, deps.verifier, deps.limits);
  if (claims instanceof Refusal) return claims;
  const grants = grantsOf(claims);
  if (grants instanceof Refusal) return grants;

  const params = parseProxyParams(url.searchParams);
  if (params instanceof Refusal) return params;
  for (const host of params.hosts) {
    const literal = normalizeAddress(host);
    if (!literal) continue; // names are resolved, and checked, by the session
    const why = deps.policy.deny({ ...literal, port: params.port }, grants.targets);
    if (why) return new Refusal(403, 'target_denied', `host: ${why}`);
  }

  const limit = Math.min(grants.maxSessions ?? Infinity, deps.maxSessionsPerSubject > 0 ? deps.maxSessionsPerSubject : Infinity);
  if (!Number.isFinite(limit)) return { id, params, grants, client, release: slot };
  if (!(await deps.sessions.acquire(grants.subject, id, limit))) {
    return tooMany('too_many_sessions', `subject "${grants.subject}" already has ${limit} open session(s)`, SESSION_LIMIT_RETRY_S);
  }
  const release = () => {
    slot();
    deps.sessions.release(grants.subject, id);
  };
  return { id, params, grants, client, release };
}
