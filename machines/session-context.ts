/**
 * What a session knows (its context) and the pure rules over it that the session statechart
 * uses: which endpoints to punch, what a status frame says, when a heartbeat proves the path.
 * Pure: no XState, no IO.
 */
import { formatEndpoint, sameEndpoint } from './endpoint.js';
import type {
  BridgeCommand,
  CloseReason,
  Echo,
  Endpoint,
  Family,
  LinkStatus,
  PathKind,
  PeerHeartbeatEvent,
  SessionPort,
  SessionTiming,
  StatusFrame,
  WaitReason,
} from './types.js';

/** Endpoints learned from authenticated heartbeats (peer-reflexive candidates) kept at most. */
export const MAX_LEARNED_ENDPOINTS = 4;
/** Peer sessions that said CLOSE, remembered so a replay of them is never adopted again. */
export const MAX_RETIRED_PEERS = 16;
/**
 * Punches a punching phase sends at the full rate (one per punch interval: 2 s at the default
 * 200 ms). After that the interval doubles with each punch up to the heartbeat interval, as a
 * STUN client backs off its retransmissions (RFC 8489, section 6.2.1): a session whose peer is
 * not there yet costs no more than an established one, so thousands of sessions that lose their
 * paths at once (an overloaded machine) do not flood both servers with five punches a second
 * each and keep them from ever re-establishing. A peer that turns up later is still heard at
 * once: its first heartbeat is answered straight away (a new voice), and its own phase starts at
 * the full rate.
 * @see https://www.rfc-editor.org/rfc/rfc8489#section-6.2.1
 */
export const PUNCHES_AT_FULL_RATE = 10;
/**
 * How long a waiting session punches directly without proof before it also tries its relays
 * (ms), when SessionTiming gives none (`--relay-after-ms`'s default): a direct path between two
 * endpoint-independent NATs proves itself within a few round trips, well inside this.
 */
export const DEFAULT_RELAY_AFTER_MS = 2000;

export interface PeerPath {
  salt: string;
  endpoint: Endpoint;
  rttMs: number;
}

export interface LearnedEndpoint {
  endpoint: Endpoint;
  /** Heartbeats it may still get; null: proven, no limit. */
  credit: number | null;
}

export interface SessionContext {
  id: string;
  /** The session's IO (handed in with the input; the bridge connects to it). */
  io: SessionPort;
  hosts: string[];
  port: number;
  families: Family[];
  timing: SessionTiming;
  /** The relays' endpoints this session can send to (`--relay`, of its families), in order of preference. */
  relays: Endpoint[];
  candidates: Endpoint[];
  /**
   * Sources of authenticated heartbeats (peer-reflexive candidates): punched too, whatever their
   * family. An unproven source earns one heartbeat per heartbeat it sent (`credit`), so a
   * replayed or spoofed datagram can never make the server send more than it received; a
   * proven one (the last path) is punched every tick (`credit: null`).
   */
  learned: LearnedEndpoint[];
  peer: PeerPath | null;
  /** What our heartbeats echo. */
  heard: Echo | null;
  retired: string[];
  /** Punches sent in the current punching phase (it paces the next one: `punchDelayMs`). */
  punches: number;
  /** Why we are waiting again, or why we closed. */
  waitReason: WaitReason | null;
  closeReason: CloseReason | null;
  closeMessage: string | null;
}

export const MESSAGES: Record<CloseReason | WaitReason, (timing: SessionTiming) => string> = {
  client_closed: () => 'the client closed the WebSocket',
  server_shutdown: () => 'the server is shutting down',
  punch_timeout: (t) => `punching failed: no authenticated heartbeat from the peer within ${t.punchTimeoutMs} ms`,
  no_candidates: () => 'no usable peer address',
  token_expired: () => 'the token of this session expired',
  peer_timeout: (t) => `no heartbeat from the peer that shows it still hears us for ${t.peerTimeoutMs} ms`,
  peer_closed: () => 'the peer session closed',
};

export function frame(context: SessionContext, status: LinkStatus, extra: Partial<StatusFrame> = {}): BridgeCommand {
  return { type: 'status', frame: { type: 'status', status, session: context.id, ...extra } };
}

export function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

export function establishedFrame(context: SessionContext): BridgeCommand {
  const peer = context.peer!;
  const path: PathKind = isRelay(context, peer.endpoint) ? 'relay' : 'direct';
  return frame(context, 'UDP_ESTABLISHED', {
    family: peer.endpoint.family,
    peer: formatEndpoint(peer.endpoint),
    rttMs: roundMs(peer.rttMs),
    path,
    ...(path === 'relay' ? { relay: formatEndpoint(peer.endpoint) } : {}),
  });
}

/** One of the relays: datagrams from it come from the peer through the relay. */
export function isRelay(context: SessionContext, endpoint: Endpoint): boolean {
  return context.relays.some((r) => sameEndpoint(r, endpoint));
}

/** The relay a path falls back to when its direct path dies: the one of the path's family, else the first. */
export function relayFor(context: SessionContext, family: Family): Endpoint {
  return context.relays.find((r) => r.family === family) ?? context.relays[0]!;
}

export function relayAfterMs(timing: SessionTiming): number {
  return timing.relayAfterMs ?? DEFAULT_RELAY_AFTER_MS;
}

/**
 * The wait before the next punch of a phase that has sent `punches` (ms): the punch interval for
 * the first PUNCHES_AT_FULL_RATE, then doubling up to the heartbeat interval (never below the
 * punch interval).
 */
export function punchDelayMs(timing: SessionTiming, punches: number): number {
  if (punches < PUNCHES_AT_FULL_RATE) return timing.punchMs;
  const ceiling = Math.max(timing.punchMs, timing.heartbeatMs);
  return Math.min(ceiling, timing.punchMs * 2 ** (punches - PUNCHES_AT_FULL_RATE + 1));
}

/** One more heartbeat owed to `endpoint` (it sent us one); a proven endpoint stays proven. */
export function credit(learned: LearnedEndpoint[], endpoint: Endpoint): LearnedEndpoint[] {
  const known = learned.find((l) => sameEndpoint(l.endpoint, endpoint));
  const entry: LearnedEndpoint = { endpoint, credit: known && known.credit === null ? null : 1 };
  return [entry, ...learned.filter((l) => l !== known)].slice(0, MAX_LEARNED_ENDPOINTS);
}

/**
 * Heartbeats an endpoint learned through a relay may get (the peer server's public endpoint as
 * the relay saw it): a full-rate punching phase's worth, so that both sides' punches overlap
 * long enough to open address-and-port-filtering NATs.
 */
export const RELAY_PEER_CREDIT = PUNCHES_AT_FULL_RATE;

/**
 * The peer servers' endpoints a relay told us (paired ends, proven by holders of the PSK): each
 * owed RELAY_PEER_CREDIT heartbeats (more, never less, than it had; a proven one stays proven),
 * the first listed first, still at most MAX_LEARNED_ENDPOINTS in all.
 */
export function creditFromRelay(learned: LearnedEndpoint[], endpoints: Endpoint[]): LearnedEndpoint[] {
  let out = learned;
  for (const endpoint of [...endpoints].reverse()) {
    const known = out.find((l) => sameEndpoint(l.endpoint, endpoint));
    const owed = known?.credit === null ? null : Math.max(RELAY_PEER_CREDIT, known?.credit ?? 0);
    out = [{ endpoint, credit: owed }, ...out.filter((l) => l !== known)];
  }
  return out.slice(0, MAX_LEARNED_ENDPOINTS);
}

/** `endpoint` has been the path: punch it every tick from now on. */
export function prove(learned: LearnedEndpoint[], endpoint: Endpoint): LearnedEndpoint[] {
  return [{ endpoint, credit: null }, ...learned.filter((l) => !sameEndpoint(l.endpoint, endpoint))].slice(0, MAX_LEARNED_ENDPOINTS);
}

/** The heartbeats sent to `targets` are paid for. */
export function spend(learned: LearnedEndpoint[], targets: Endpoint[]): LearnedEndpoint[] {
  return learned.map((l) =>
    l.credit !== null && l.credit > 0 && targets.some((t) => sameEndpoint(t, l.endpoint)) ? { ...l, credit: l.credit - 1 } : l,
  );
}

/** Where a waiting session sends heartbeats: this phase's candidates plus learned endpoints with credit. */
export function punchTargets(context: SessionContext, family: Family): Endpoint[] {
  const targets = context.candidates.filter((c) => c.family === family);
  for (const { endpoint, credit: owed } of context.learned) {
    if (owed !== null && owed <= 0) continue;
    if (context.families.includes(endpoint.family) && !targets.some((t) => sameEndpoint(t, endpoint))) {
      targets.push(endpoint);
    }
  }
  return targets;
}

/**
 * Where the relay step of a waiting session sends heartbeats: the candidates of every family,
 * learned endpoints with credit, and the relays (they forward to the peer once the binding is
 * paired).
 */
export function relayPunchTargets(context: SessionContext): Endpoint[] {
  const targets = directTargets(context);
  for (const relay of context.relays) if (!targets.some((t) => sameEndpoint(t, relay))) targets.push(relay);
  return targets;
}

/**
 * Where a relayed session probes for a direct path: the candidates of every family and the
 * learned endpoints with credit, never a relay.
 */
export function directTargets(context: SessionContext): Endpoint[] {
  const targets = [...context.candidates];
  for (const { endpoint, credit: owed } of context.learned) {
    if (owed !== null && owed <= 0) continue;
    if (isRelay(context, endpoint)) continue;
    if (context.families.includes(endpoint.family) && !targets.some((t) => sameEndpoint(t, endpoint))) targets.push(endpoint);
  }
  return targets;
}

/**
 * The heartbeat echoes one of ours younger than the peer timeout: the peer has heard this session
 * lately. Only such a heartbeat may adopt a peer, keep a path alive or move it (a recording, or
 * a peer that no longer hears us, cannot).
 */
export function echoesFreshly(context: SessionContext, event: PeerHeartbeatEvent): boolean {
  return event.echoesUs && event.echoAgeMs !== null && event.echoAgeMs <= context.timing.peerTimeoutMs;
}

export function echoOf(event: PeerHeartbeatEvent): Echo {
  return { salt: event.peerSalt, sentAt: event.sentAt, at: event.at };
}
