/**
 * The plain HTTP side: health, readiness, metrics, the sessions API (admin token), its live
 * event stream, the live page and its diagram. Every refusal is a JSON error body.
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JWTPayload } from 'jose';
import { CLAIM_ADMIN } from '../auth/claims.js';
import { authenticate, extractToken } from '../auth/token.js';
import type { Verifier } from '../auth/verifier.js';
import { Refusal } from '../errors.js';
import type { Metrics } from '../observe/metrics.js';
import type { SessionRegistry } from '../observe/registry.js';
import { LIVE_PAGE_HTML } from '../web/live-page.js';
import { PROXY_PATH } from './admission.js';
import { sendJson, sendRefusal } from './respond.js';

/** Sessions listed at most per response and per live update. */
export const MAX_LISTED_SESSIONS = 1000;
/** Live updates: at most one per this interval, plus one per interval while anything is open (ms). */
export const LIVE_UPDATE_MS = 1000;
/** The diagram the live page highlights. */
const SESSION_DIAGRAM = new URL('../../../visualizations/session.svg', import.meta.url);

export interface RouteDeps {
  verifier: Verifier;
  sessions: SessionRegistry;
  metrics: Metrics;
  /** 'ready', or why not. */
  readiness: () => 'ready' | 'starting' | 'draining';
  onRefusal: (refusal: Refusal) => void;
}

async function admin(req: IncomingMessage, url: URL, deps: RouteDeps): Promise<JWTPayload | Refusal> {
  const token = extractToken(req, url.searchParams);
  if (token instanceof Refusal) return token;
  const claims = await authenticate(deps.verifier, token);
  if (claims instanceof Refusal) return claims;
  if (claims[CLAIM_ADMIN] !== true) return new Refusal(403, 'forbidden', `this needs a token with the ${CLAIM_ADMIN}: true claim`);
  return claims;
}

export function createRoutes(deps: RouteDeps) {
  let diagram: Promise<string> | null = null;
  const refuse = (res: ServerResponse, refusal: Refusal) => {
    deps.onRefusal(refusal);
    sendRefusal(res, refusal);
  };

  const stream = (req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
    let dirty = true;
    const send = () => {
      if (!dirty && deps.sessions.size === 0) return;
      dirty = false;
      res.write(`event: sessions\ndata: ${JSON.stringify({ total: deps.sessions.size, sessions: deps.sessions.list(MAX_LISTED_SESSIONS) })}\n\n`);
    };
    // Changes go out at once (the page sees every state), at most one per tick of the event loop.
    let scheduled = false;
    const off = deps.sessions.on((event) => {
      if (event.type !== 'changed' && event.type !== 'removed') return;
      dirty = true;
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        send();
      });
    });
    const timer = setInterval(send, LIVE_UPDATE_MS);
    send();
    req.on('close', () => {
      off();
      clearInterval(timer);
    });
  };

  return async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://autoprox.invalid');
    } catch {
      refuse(res, new Refusal(400, 'bad_parameter', 'the request URL cannot be parsed'));
      return;
    }
    const path = url.pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      refuse(res, new Refusal(405, 'method_not_allowed', `${req.method} is not served here`, { Allow: 'GET, HEAD' }));
      return;
    }
    if (path === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (path === '/readyz') {
      const state = deps.readiness();
      return sendJson(res, state === 'ready' ? 200 : 503, { status: state });
    }
    if (path === '/metrics') {
      const text = await deps.metrics.text();
      res.writeHead(200, { 'Content-Type': deps.metrics.contentType, 'Cache-Control': 'no-store' });
      res.end(text);
      return;
    }
    if (path === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Security-Policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'" });
      res.end(LIVE_PAGE_HTML);
      return;
    }
    if (path === '/v0/diagram/session.svg') {
      diagram ??= readFile(SESSION_DIAGRAM, 'utf8');
      const svg = await diagram.catch(() => null);
      if (svg === null) return refuse(res, new Refusal(404, 'not_found', 'the session diagram is not installed (visualizations/session.svg)'));
      res.writeHead(200, { 'Content-Type': 'image/svg+xml', 'Cache-Control': 'max-age=3600' });
      res.end(svg);
      return;
    }
    if (path === PROXY_PATH) {
      return refuse(res, new Refusal(426, 'upgrade_required', 'this endpoint speaks WebSocket only', { Upgrade: 'websocket' }));
    }
    if (path === '/v0/sessions' || path === '/v0/sessions/events' || path.startsWith('/v0/sessions/')) {
      const claims = await admin(req, url, deps);
      if (claims instanceof Refusal) return refuse(res, claims);
      if (path === '/v0/sessions') return sendJson(res, 200, { total: deps.sessions.size, sessions: deps.sessions.list(MAX_LISTED_SESSIONS) });
      if (path === '/v0/sessions/events') return stream(req, res);
      const id = decodeURIComponent(path.slice('/v0/sessions/'.length));
      const session = deps.sessions.get(id);
      if (!session) return refuse(res, new Refusal(404, 'not_found', `no live session ${id}`));
      return sendJson(res, 200, session);
    }
    refuse(res, new Refusal(404, 'not_found', `no such path: ${path}`));
  };
}
