/**
 * Events, commands and frames shared by the statecharts and the IO actors that drive them.
 * Pure types and constants; nothing here touches a socket.
 */
import type { Endpoint, Family } from './endpoint.js';

export type { Endpoint, Family };

/** The link status a WebSocket client sees, in `{"type":"status"}` frames. */
export type LinkStatus = 'CONNECTED' | 'UDP_WAITING' | 'UDP_ESTABLISHED' | 'CLOSED';

/** Why a session closed (CLOSED frames) or went back to waiting (UDP_WAITING frames). */
export type CloseReason = 'client_closed' | 'server_shutdown' | 'punch_timeout' | 'no_candidates' | 'token_expired';
export type WaitReason = 'peer_timeout' | 'peer_closed';

/** WebSocket close code for each way a session can end. 4xxx are autoprox's own. */
export const CLOSE_CODES: Record<CloseReason, number> = {
  client_closed: 1000,
  server_shutdown: 1001,
  punch_timeout: 4000,
  no_candidates: 4001,
  token_expired: 4003,
};

export interface StatusFrame {
  type: 'status';
  status: LinkStatus;
  session: string;
  family?: Family;
  /** "addr:port" or "[v6]:port". */
  peer?: string;
  rttMs?: number;
  /** UDP_ESTABLISHED: whether the datagrams go straight to the peer or through a relay. */
  path?: PathKind;
  /** UDP_ESTABLISHED on a relayed path: the relay's endpoint (the same as `peer`). */
  relay?: string;
  reason?: CloseReason | WaitReason;
  /** A sentence for people, next to the stable `reason` code. */
  message?: string;
}

/** How an established path goes: straight to the peer server, or through a relay (`--relay`). */
export type PathKind = 'direct' | 'relay';

/** Timings of one session, all in milliseconds. */
export interface SessionTiming {
  /** Heartbeat interval while waiting (punching). */
  punchMs: number;
  /** Heartbeat interval while established. */
  heartbeatMs: number;
  /** Silence from the established peer after which the session goes back to waiting. */
  peerTimeoutMs: number;
  /** How long IPv6 candidates are tried alone before IPv4 candidates are punched. */
  fallbackMs: number;
  /** How long one waiting period may last before the session closes; 0 = for ever. */
  punchTimeoutMs: number;
  /**
   * How long a waiting session punches directly without proof before it also tries its relays
   * (0 = at once). Only with relays; absent: DEFAULT_RELAY_AFTER_MS.
   */
  relayAfterMs?: number;
}

/** What our heartbeats echo: the latest heartbeat heard from a peer session. */
export interface Echo {
  /** Hex salt of the peer session. */
  salt: string;
  /** Its sentAt, in the peer's clock. */
  sentAt: number;
  /** When we received it, in our clock (ms, monotonic). */
  at: number;
}

/** Result of resolving the client's `host` parameters into candidate endpoints. */
export interface ResolvedTargets {
  /** IPv6 first, then IPv4; only families this server can send on. */
  candidates: Endpoint[];
  /** One line per host that gave nothing usable. */
  problems: string[];
}

export interface ResolveInput {
  sessionId: string;
  hosts: string[];
  port: number;
  families: Family[];
  /** Why the session may not send to an endpoint (target policy, its token's targets), or null. */
  deny?: (endpoint: Endpoint) => string | null;
}

// ---- events into a session ----

/** An authenticated, replay-checked heartbeat from a peer session. */
export interface PeerHeartbeatEvent {
  type: 'peer.heartbeat';
  /** Hex salt of the sending peer session. */
  peerSalt: string;
  from: Endpoint;
  sentAt: number;
  /** When it arrived, our clock (ms). */
  at: number;
  /** True when it echoes this session's current salt: the peer has heard us. */
  echoesUs: boolean;
  /** When `echoesUs`: how old the echoed heartbeat of ours is (ms). */
  echoAgeMs: number | null;
  /** When `echoesUs`: round-trip time, echo hold time excluded (ms). */
  rttMs: number | null;
}

export type SessionEvent =
  | PeerHeartbeatEvent
  | { type: 'peer.close'; peerSalt: string }
  /**
   * The established path's watchdog (kept by the IO): no heartbeat of the peer echoed us freshly
   * for the peer timeout. `heard`: the peer's latest heartbeat, what the session echoes from now.
   */
  | { type: 'peer.silent'; heard: Echo | null }
  | { type: 'ws.closed'; code: number }
  | { type: 'server.shutdown' }
  /** The client's token expired (the IO edge keeps the clock). */
  | { type: 'token.expired' }
  /**
   * The peer servers' current public endpoints as a relay sees them (the ends paired with this
   * server's end of the channel there, each proven by a holder of the PSK), whenever they change:
   * learned endpoints, punched and probed like the sources of heartbeats.
   */
  | { type: 'relay.peers'; endpoints: Endpoint[] };

// ---- commands from a session to its bridge (the session's IO) ----

export type BridgeCommand =
  | { type: 'status'; frame: StatusFrame }
  | { type: 'heartbeat'; to: Endpoint[]; echo: Echo | null }
  /**
   * While established (relayed): heartbeats to `to` as well as to the path, echoing what the path
   * heard last (the IO keeps that), so a direct path can prove itself.
   */
  | { type: 'probe'; to: Endpoint[] }
  /** The session wants its channel bound at the relays (the IO binds, once per channel and relay). */
  | { type: 'relay.want' }
  /**
   * Data may flow to the peer session `peerSalt` at `endpoint` (adopted, or moved there). The IO
   * keeps the path from here: a heartbeat at once (before queued data) and every heartbeat
   * interval, echoing `echo` until the peer's next; the watchdog (`peer.silent`).
   */
  | { type: 'path.up'; peerSalt: string; endpoint: Endpoint; echo: Echo | null; rttMs: number }
  | { type: 'path.down' }
  | { type: 'close'; code: number; reason: CloseReason };

/**
 * A session's IO as its machine sees it, handed in with the session's input (no lookup by id):
 * the `bridge` actor connects the machine to it, and the resolver asks it what is allowed.
 */
export interface SessionPort {
  /** From now on the IO sends the machine its events. */
  attach(emit: (event: SessionEvent) => void): void;
  /** A command of the machine. */
  handle(command: BridgeCommand): void;
  /** The machine let go of its IO (it stopped): release everything. */
  detach(): void;
  /** Why the session may not send to an endpoint (target policy, its token's targets), or null. */
  deny(endpoint: Endpoint): string | null;
}

export interface BridgeInput {
  sessionId: string;
  io: SessionPort;
}

// ---- supervisor ----

/** What the server asks for each accepted WebSocket: a session with its IO. */
export interface SessionSpec {
  id: string;
  hosts: string[];
  port: number;
  io: SessionPort;
}

export interface SessionInput extends SessionSpec {
  families: Family[];
  timing: SessionTiming;
  /** The relays' endpoints (`--relay`, resolved), in order of preference; none: no relay step. */
  relays?: Endpoint[];
}

export interface SessionOutput {
  id: string;
  reason: CloseReason;
}

export interface UdpSocketInput {
  family: Family;
  address: string;
  port: number;
}

export type UdpSocketEvent =
  | { type: 'udp.bound'; family: Family; port: number }
  | { type: 'udp.failed'; family: Family; code: string; message: string }
  /** A bound socket failed (an error, or closed by something else than the server): it is closed. */
  | { type: 'udp.error'; family: Family; code: string; message: string };
