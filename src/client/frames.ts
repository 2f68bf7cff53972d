/**
 * What an autoprox server sends a WebSocket client, as the client library types it: the
 * contract of README's "The WebSocket API", written down once for programs. Pure: no Node
 * built-ins (the browser build imports this file).
 */

/** The server's four, and `RECONNECTING`: the library's own, before each reconnect attempt (never sent by a server). */
export type LinkStatus = 'CONNECTED' | 'UDP_WAITING' | 'UDP_ESTABLISHED' | 'CLOSED' | 'RECONNECTING';
export type Family = 'ipv4' | 'ipv6';

/** Why a session closed (`CLOSED`), or why it waits again after it had a peer (`UDP_WAITING`). */
export type StatusReason = 'client_closed' | 'server_shutdown' | 'punch_timeout' | 'no_candidates' | 'token_expired' | 'peer_timeout' | 'peer_closed' | (string & {});

export interface StatusFrame {
  type: 'status';
  status: LinkStatus;
  /** The session id (a UUID), the same in every frame of one session and in the server's logs. */
  session: string;
  /** `UDP_WAITING`: the family being punched; `UDP_ESTABLISHED`: the path's. */
  family?: Family;
  /** `UDP_ESTABLISHED`: the endpoint datagrams go to, `addr:port` or `[v6]:port`. */
  peer?: string;
  /** `UDP_ESTABLISHED`: `direct`, or `relay` when the datagrams go through a relay (servers with `--relay`). */
  path?: 'direct' | 'relay';
  /** `UDP_ESTABLISHED` on a relayed path: the relay's endpoint. */
  relay?: string;
  /** `UDP_ESTABLISHED`: round-trip time of the heartbeat that established (or moved) the path, ms. */
  rttMs?: number;
  /** A stable code: `CLOSED`, and `UDP_WAITING` after losing the peer. */
  reason?: StatusReason;
  /** The same, for people. */
  message?: string;
  /** `RECONNECTING`: which attempt (1, 2, ...) and how long the library waits before it (ms). */
  attempt?: number;
  delayMs?: number;
}

/** Why the server rejected a message or dropped data (the session goes on). */
export type ServerErrorCode = 'payload_too_large' | 'text_not_supported' | 'queue_full' | 'not_delivered' | 'rate_limited' | 'client_backpressure' | (string & {});

export interface ErrorFrame {
  type: 'error';
  code: ServerErrorCode;
  message: string;
  /** How many events this frame reports, when more than one. */
  count?: number;
}

/** This server's public endpoints as STUN servers see them (servers with `--stun` or `--relay`). */
export interface EndpointsFrame {
  type: 'endpoints';
  ipv4: string | null;
  ipv6: string | null;
  nat: 'endpoint-independent' | 'endpoint-dependent' | 'unknown';
  relay: string | null;
}

export type ServerFrame = StatusFrame | ErrorFrame | EndpointsFrame;

const STATUSES: ReadonlySet<string> = new Set(['CONNECTED', 'UDP_WAITING', 'UDP_ESTABLISHED', 'CLOSED']);

/**
 * A text frame from the server, checked against the contract; null for anything else (a newer
 * server's frame of a type this library does not know, or garbage): the caller decides.
 */
export function parseServerFrame(text: string): ServerFrame | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const frame = value as Record<string, unknown>;
  switch (frame.type) {
    case 'status':
      return typeof frame.status === 'string' && STATUSES.has(frame.status) && typeof frame.session === 'string' ? (frame as unknown as StatusFrame) : null;
    case 'error':
      return typeof frame.code === 'string' && typeof frame.message === 'string' ? (frame as unknown as ErrorFrame) : null;
    case 'endpoints':
      return 'nat' in frame ? (frame as unknown as EndpointsFrame) : null;
    default:
      return null;
  }
}
