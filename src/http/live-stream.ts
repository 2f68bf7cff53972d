/**
 * `GET /v0/sessions/events`: the live sessions as server-sent events. A `sessions` event with the
 * full list at once, on every change (at most one per turn of the event loop), and every second
 * while sessions are open; a slow reader skips updates until it catches up (the next one it
 * takes carries the whole state anyway); the stream ends when its token does.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../clock.js';
import type { SessionRegistry } from '../observe/registry.js';

/** Sessions listed at most per response and per live update. */
export const MAX_LISTED_SESSIONS = 1000;
/** Live updates: at most one per this interval, plus one per interval while anything is open (ms). */
export const LIVE_UPDATE_MS = 1000;
/** A live stream whose client reads slower than this (bytes waiting) skips updates until it catches up. */
export const STREAM_MAX_BUFFERED_BYTES = 1024 * 1024;

export interface StreamDeps {
  sessions: SessionRegistry;
  clock: Clock;
  /** When the token of the request expires (s since the epoch: the JWT's `exp`). */
  expiresAtS: number;
}

export function streamSessions(req: IncomingMessage, res: ServerResponse, deps: StreamDeps): void {
  const { sessions, clock } = deps;
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
  let dirty = true;
  const send = () => {
    if (!dirty && sessions.size === 0) return;
    if (res.writableLength > STREAM_MAX_BUFFERED_BYTES) {
      dirty = true;
      return;
    }
    dirty = false;
    res.write(`event: sessions\ndata: ${JSON.stringify({ total: sessions.size, sessions: sessions.list(MAX_LISTED_SESSIONS) })}\n\n`);
  };
  // Changes go out at once (the page sees every state), at most one per tick of the event loop.
  let scheduled = false;
  const off = sessions.on((event) => {
    if (event.type !== 'changed' && event.type !== 'removed') return;
    dirty = true;
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      send();
    });
  });
  const timer = clock.every(LIVE_UPDATE_MS, send);
  // However far away that is (a 30-day token: see Clock.after).
  const expiry = clock.after(deps.expiresAtS * 1000 - clock.wallMs(), () => res.end());
  send();
  req.on('close', () => {
    off();
    timer.cancel();
    expiry.cancel();
  });
}
