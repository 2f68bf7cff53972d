/**
 * The session statechart as a test model: the REAL session machine (its IO actors swapped for
 * no-ops through `.provide`), traversed by `xstate/graph` with an alphabet of realistic events
 * and an abstraction of its snapshots that makes traversal terminate.
 *
 * Symbols stand for real things the replay creates: peer sessions `S1`..`S3` (salts of the
 * scripted peer), peer endpoints `home6`/`home4` (the candidates the client names, one port on
 * both families), `alt6`/`alt4` (the ports the peer moves to when its NAT rebinds) and `relay4`
 * (the server's `--relay`: a second socket of the peer's own, so that to the server a datagram
 * from it comes "through the relay"; it answers the server's binding, and shows the server's end
 * the peer's end paired there at `alt4` when a path says so: `relay.peers`).
 */
import { fromCallback, fromPromise, type EventObject, type SnapshotFrom } from 'xstate';
import { sessionMachine } from '../../machines/session.machine.js';
import type {
  BridgeCommand,
  BridgeInput,
  Endpoint,
  Family,
  PeerHeartbeatEvent,
  ResolvedTargets,
  ResolveInput,
  SessionEvent,
  SessionInput,
  SessionTiming,
} from '../../machines/types.js';

/**
 * Timings of the model and of the real server it is replayed against (`--punch-ms` ...): short
 * enough for a fast suite, long enough that the steps of a path fit between two timers on a busy
 * 2-core machine.
 */
export const TIMING: SessionTiming = {
  punchMs: 20,
  heartbeatMs: 40,
  peerTimeoutMs: 300,
  fallbackMs: 250,
  punchTimeoutMs: 1000,
  // After the fallback, before the punch timeout: ipv6 -> ipv4 -> relay, each with time to act.
  relayAfterMs: 550,
};

/** The real session machine with no-op IO: what the graph traversal runs. */
export const modelMachine = sessionMachine.provide({
  actors: {
    bridge: fromCallback<BridgeCommand, BridgeInput>(() => {}),
    resolveTargets: fromPromise<ResolvedTargets, ResolveInput>(() => new Promise<never>(() => {})),
  },
});

export type ModelSnapshot = SnapshotFrom<typeof modelMachine>;

/**
 * What the graph traversal runs: the real machine, except that a step that changes nothing still
 * yields a new snapshot object, because the model keeps a little history per snapshot object
 * (see `History`) and an ignored event is part of that history (a CLOSE the machine did not
 * act upon is still a CLOSE).
 */
export const traversedMachine: typeof modelMachine = Object.create(modelMachine, {
  transition: {
    value: (snapshot: ModelSnapshot, event: EventObject, scope: unknown) => distinct(snapshot, modelMachine.transition(snapshot, event as never, scope as never)),
  },
});

/** `next`, or a copy of it when it is `prev` itself. */
export function distinct(prev: ModelSnapshot, next: ModelSnapshot): ModelSnapshot {
  return next === prev ? { ...next } : next;
}

export const MODEL_INPUT: SessionInput = {
  id: 'model',
  // The traversal's bridge does nothing: no IO behind it.
  io: { attach: () => {}, handle: () => {}, detach: () => {}, deny: () => null },
  hosts: ['dual.test'],
  port: 7000,
  families: ['ipv6', 'ipv4'],
  timing: TIMING,
  relays: [{ family: 'ipv4', address: '127.0.0.1', port: 7034 }],
};

// ---- symbols ----

export const ENDPOINT_NAMES = ['home6', 'home4', 'alt6', 'alt4', 'relay4'] as const;
export type EndpointName = (typeof ENDPOINT_NAMES)[number];
/** The relay's symbol: the server is started with `--relay` at its real port. */
export const RELAY: EndpointName = 'relay4';
/** The server's `--relay-secret` (the model relay signs its answers with it). */
export const RELAY_SECRET = 'x';
/**
 * Where the model relay says the peer server is (the source of the end paired with the
 * server's there): the peer's rebound port, so that it is a place the peer really listens on.
 */
export const RELAY_PEER: EndpointName = 'alt4';

/** Model endpoints: the homes share the candidate port on both families; alt ports are rebindings; relay4 is the relay. */
export const MODEL_ENDPOINTS: Record<EndpointName, Endpoint> = {
  home6: { family: 'ipv6', address: '::1', port: MODEL_INPUT.port },
  home4: { family: 'ipv4', address: '127.0.0.1', port: MODEL_INPUT.port },
  alt6: { family: 'ipv6', address: '::1', port: 7006 },
  alt4: { family: 'ipv4', address: '127.0.0.1', port: 7004 },
  relay4: MODEL_INPUT.relays![0]!,
};

export function endpointName(endpoint: Endpoint): EndpointName {
  const name = ENDPOINT_NAMES.find((n) => {
    const e = MODEL_ENDPOINTS[n];
    return e.family === endpoint.family && e.address === endpoint.address && e.port === endpoint.port;
  });
  if (!name) throw new Error(`not a model endpoint: ${JSON.stringify(endpoint)}`);
  return name;
}

/** Peer sessions (salts) the model may use; a bound so that traversal terminates. */
export const SALTS = ['S1', 'S2', 'S3'] as const;

// ---- events ----

/** What the client's hosts resolve to; `error` is a resolver that fails (an injected fault). */
export const RESOLUTIONS = ['dual', 'ipv4', 'ipv6', 'none', 'error'] as const;
export type Resolution = (typeof RESOLUTIONS)[number];

/** The DNS name the client gives for each resolution (the replay's fake DNS answers them). */
export const RESOLUTION_HOSTS: Record<Resolution, string> = {
  dual: 'dual.test',
  ipv4: 'v4.test',
  ipv6: 'v6.test',
  none: 'nowhere.test',
  error: 'dual.test',
};

export const RESOLVER_ID: string = sessionMachine.root.states.connected!.invoke[0]!.id;

const RESOLVED: Record<Exclude<Resolution, 'error'>, ResolvedTargets> = {
  dual: { candidates: [MODEL_ENDPOINTS.home6, MODEL_ENDPOINTS.home4], problems: [] },
  ipv4: { candidates: [MODEL_ENDPOINTS.home4], problems: [] },
  ipv6: { candidates: [MODEL_ENDPOINTS.home6], problems: [] },
  none: { candidates: [], problems: ['nowhere.test: ENOTFOUND'] },
};

export type Echo = 'fresh' | 'stale' | 'none';
export const ECHOES: readonly Echo[] = ['fresh', 'stale', 'none'];

export interface ResolvedEvent {
  type: `xstate.done.actor.${string}`;
  actorId: string;
  output: ResolvedTargets;
}
export interface ResolveFailedEvent {
  type: `xstate.error.actor.${string}`;
  actorId: string;
  error: string;
}
export interface DelayEvent {
  type: `xstate.after.${string}`;
}
/** Every event of the model: the machine's own, plus the resolver's outcome and its timers. */
export type ModelEvent = SessionEvent | ResolvedEvent | ResolveFailedEvent | DelayEvent;

/** The machine's own timers (an established path's heartbeats and watchdog are its IO's: `peer.silent`). */
export const DELAYS = ['punchInterval', 'fallbackDelay', 'punchTimeout', 'relayAfter'] as const;
export type DelayName = (typeof DELAYS)[number];

export function delayEvent(delay: DelayName, stateId: string): DelayEvent {
  return { type: `xstate.after.${delay}.${stateId}` };
}

/** `xstate.after.<delay>.<state id>` -> its parts, or null. */
export function parseDelay(type: string): { delay: DelayName; stateId: string } | null {
  const m = /^xstate\.after\.([^.]+)\.(.+)$/.exec(type);
  if (!m || !(DELAYS as readonly string[]).includes(m[1]!)) return null;
  return { delay: m[1] as DelayName, stateId: m[2]! };
}

/**
 * How much model time an event stands for (ms), as far as the abstraction keeps it: only the
 * peer timeout counts (so "old" is a function of the abstract state and the event, and the
 * abstraction stays a congruence); ticks and the fallback delay count 0, an under-estimate that
 * keeps "old enough for a stale echo" sound (real age >= model age).
 */
function timeOf(event: EventObject | undefined): number {
  return event?.type === 'peer.silent' ? TIMING.peerTimeoutMs : 0;
}

const ECHO_AGE: Record<Exclude<Echo, 'none'>, number> = { fresh: 1, stale: TIMING.peerTimeoutMs + 50 };

/** A model heartbeat; `sentAt`/`at` are abstract (0): the replay uses real ones. */
export function heartbeatEvent(salt: string, from: EndpointName, echo: Echo): PeerHeartbeatEvent {
  return {
    type: 'peer.heartbeat',
    peerSalt: salt,
    from: MODEL_ENDPOINTS[from],
    sentAt: 0,
    at: 0,
    echoesUs: echo !== 'none',
    echoAgeMs: echo === 'none' ? null : ECHO_AGE[echo],
    rttMs: echo === 'none' ? null : 1,
  };
}

/** The relay shows the server's end the peer server's end, paired, at RELAY_PEER (`relay.peers`). */
export function relayPeersEvent(): SessionEvent {
  return { type: 'relay.peers', endpoints: [MODEL_ENDPOINTS[RELAY_PEER]] };
}

export function resolutionEvent(resolution: Resolution): ResolvedEvent | ResolveFailedEvent {
  if (resolution === 'error') {
    return { type: `xstate.error.actor.${RESOLVER_ID}`, actorId: RESOLVER_ID, error: 'resolver failed' };
  }
  return { type: `xstate.done.actor.${RESOLVER_ID}`, actorId: RESOLVER_ID, output: RESOLVED[resolution] };
}

export function resolutionOf(event: ModelEvent): Resolution | null {
  if (event.type.startsWith('xstate.error.actor.')) return 'error';
  if (!event.type.startsWith('xstate.done.actor.')) return null;
  const output = (event as ResolvedEvent).output;
  return (Object.keys(RESOLVED) as Array<keyof typeof RESOLVED>).find((r) => RESOLVED[r] === output) ?? null;
}

// ---- abstraction ----

/**
 * What a snapshot's history adds to its context, kept beside the snapshots (immutable objects)
 * and filled in by `serializeState`, which the traversal calls with each new snapshot and the one
 * it came from:
 * - age: model time of the timers that fired on the way (capped), for stale echoes;
 * - known: the peer sessions that sent a heartbeat so far. The server holds keys for them, so
 *   their CLOSE reaches the machine (the context only remembers the latest voice);
 * - closed: the peer sessions that sent CLOSE so far, which the contract says are never adopted
 *   again (whatever the machine remembers: that is what the contract check verifies).
 */
interface History {
  ageMs: number;
  known: string[];
  closed: string[];
}
const histories = new WeakMap<object, History>();
const OLD_MS = TIMING.peerTimeoutMs;

const NO_HISTORY: History = { ageMs: 0, known: [], closed: [] };

function historyOf(snapshot: ModelSnapshot): History {
  return histories.get(snapshot) ?? NO_HISTORY;
}

/** Old enough that a peer can echo one of our heartbeats older than the peer timeout. */
export function isOld(snapshot: ModelSnapshot): boolean {
  return historyOf(snapshot).ageMs >= OLD_MS;
}

/** Peer sessions whose heartbeats the server has taken: it can open their CLOSE. */
export function knownSalts(snapshot: ModelSnapshot): string[] {
  return historyOf(snapshot).known;
}

/** Peer sessions that said CLOSE on the way to this snapshot. */
export function closedSalts(snapshot: ModelSnapshot): string[] {
  return historyOf(snapshot).closed;
}

function withSalt(salts: string[], salt: string | null): string[] {
  return salt && !salts.includes(salt) ? [...salts, salt].sort() : salts;
}

function recordHistory(snapshot: ModelSnapshot, event: EventObject | undefined, prev: ModelSnapshot | undefined): void {
  if (histories.has(snapshot)) return;
  const before = prev ? historyOf(prev) : NO_HISTORY;
  const salt = (event as { peerSalt?: string } | undefined)?.peerSalt ?? null;
  histories.set(snapshot, {
    ageMs: Math.min(OLD_MS, before.ageMs + timeOf(event)),
    known: event?.type === 'peer.heartbeat' ? withSalt(before.known, salt) : before.known,
    closed: event?.type === 'peer.close' ? withSalt(before.closed, salt) : before.closed,
  });
}

export function candidateFamilies(snapshot: ModelSnapshot): Family[] {
  return (['ipv6', 'ipv4'] as const).filter((f) => snapshot.context.candidates.some((c) => c.family === f));
}

/**
 * The fine abstraction: state value plus the context facts that decide what happens next and
 * what the client and the peer see. Left out as noise: heard sentAt/at, rtt, learned endpoints
 * (they only add punch targets: the replay checks them from the real snapshot of each path).
 */
export function serializeFine(snapshot: ModelSnapshot, event?: EventObject, prev?: ModelSnapshot): string {
  recordHistory(snapshot, event, prev);
  let key = fineKeys.get(snapshot);
  if (key === undefined) {
    key = fineKey(snapshot);
    fineKeys.set(snapshot, key);
  }
  return key;
}

const fineKeys = new WeakMap<object, string>();

function fineKey(snapshot: ModelSnapshot): string {
  const c = snapshot.context;
  if (snapshot.status !== 'active') return JSON.stringify({ done: c.closeReason });
  return JSON.stringify({
    v: snapshot.value,
    c: candidateFamilies(snapshot),
    p: c.peer ? `${c.peer.salt}@${endpointName(c.peer.endpoint)}` : null,
    h: c.heard?.salt ?? null,
    r: [...c.retired].sort(),
    w: c.waitReason,
    old: isOld(snapshot),
    k: knownSalts(snapshot),
    x: closedSalts(snapshot),
  });
}

/** The coarse abstraction for simple paths: where the session is, and why. */
export function serializeCoarse(snapshot: ModelSnapshot, event?: EventObject, prev?: ModelSnapshot): string {
  recordHistory(snapshot, event, prev);
  const c = snapshot.context;
  if (snapshot.status !== 'active') return JSON.stringify({ done: c.closeReason });
  return JSON.stringify({ v: snapshot.value, c: candidateFamilies(snapshot), w: c.waitReason });
}

// ---- the events of a snapshot ----

export function waitingFamily(snapshot: ModelSnapshot): Family | null {
  if (snapshot.matches({ udp_waiting: 'ipv6' })) return 'ipv6';
  if (snapshot.matches({ udp_waiting: 'ipv4' })) return 'ipv4';
  return null;
}

/** The first model salt the server never heard: a new peer session, or null when all are used. */
function newSalt(snapshot: ModelSnapshot): string | null {
  const known = knownSalts(snapshot);
  return SALTS.find((s) => !known.includes(s)) ?? null;
}

function uniq<T>(values: Array<T | null | undefined>): T[] {
  return [...new Set(values.filter((v): v is T => v !== null && v !== undefined))];
}

/**
 * Every event that can really happen in this snapshot, with realistic payloads: heartbeats from
 * every peer session heard so far and one new one, from every endpoint, with every echo that can
 * be; CLOSE from every peer session the server has heard (it cannot open anyone else's), once
 * the session has punched (a CLOSE is sealed for it, so its sender must have heard it); the
 * client closing; shutdown; timers only in the order real time lets them fire (the fallback before
 * the punch timeout when there is an IPv4 candidate).
 */
export function eventsOf(snapshot: ModelSnapshot, options: { coarse?: boolean } = {}): ModelEvent[] {
  if (snapshot.status !== 'active') return [];
  const c = snapshot.context;
  const out: ModelEvent[] = [];
  const known = knownSalts(snapshot);
  const salts = uniq([...known, newSalt(snapshot)]);
  const heartbeats = (echoes: readonly Echo[], endpoints: readonly EndpointName[] = ENDPOINT_NAMES) => {
    for (const salt of salts) {
      for (const from of endpoints) for (const echo of echoes) out.push(heartbeatEvent(salt, from, echo));
    }
  };
  // A peer can echo a heartbeat of ours only once we have sent one (not while resolving), and
  // an old one only once the session is older than the peer timeout.
  const echoes = ECHOES.filter((e) => e !== 'stale' || isOld(snapshot));
  const family = waitingFamily(snapshot);
  const relayStep = snapshot.matches({ udp_waiting: 'relay' });
  const hasRelays = c.relays.length > 0;
  if (snapshot.matches('connected')) {
    for (const r of RESOLUTIONS) out.push(resolutionEvent(r));
    // The peer may punch us before our DNS answered (one peer session, from its home).
    if (!options.coarse && known.length === 0) heartbeats(['none'], ['home6', 'home4']);
  } else if (family || relayStep) {
    const hasIpv4 = c.candidates.some((e) => e.family === 'ipv4');
    if (options.coarse) {
      const salt = c.heard?.salt ?? newSalt(snapshot) ?? 'S1';
      const from: EndpointName = relayStep ? RELAY : family === 'ipv6' ? 'home6' : 'home4';
      out.push(heartbeatEvent(salt, from, 'fresh'));
      out.push(heartbeatEvent(salt, from, 'none'));
    } else {
      heartbeats(echoes);
    }
    // Bound at the relay (the relay step), the server may hear where the peer server is from there.
    if (relayStep && !options.coarse) out.push(relayPeersEvent());
    out.push(delayEvent('punchInterval', `session.udp_waiting.${relayStep ? 'relay' : family}.tick`));
    // Real time orders the timers of a waiting period: the fallback (IPv6 with an IPv4
    // candidate), then the relay step (with relays), then the punch timeout.
    if (family === 'ipv6' && hasIpv4) out.push(delayEvent('fallbackDelay', 'session.udp_waiting.ipv6'));
    else if (family && hasRelays) out.push(delayEvent('relayAfter', 'session.udp_waiting'));
    else out.push(delayEvent('punchTimeout', 'session.udp_waiting'));
  } else if (snapshot.matches('udp_established')) {
    // Established, only what changes the state reaches the machine (issue 13): the peer echoing
    // us freshly from somewhere else (a move, or through the relay), and the IO's watchdog
    // (peer.silent). The path's own heartbeats, the peer's at its endpoint and other sessions'
    // are the IO's (test/io). Relayed, the session also probes the direct places on a timer.
    const peer = c.peer!;
    if (!options.coarse) {
      for (const from of ENDPOINT_NAMES) if (from !== endpointName(peer.endpoint)) out.push(heartbeatEvent(peer.salt, from, 'fresh'));
    } else if (snapshot.matches({ udp_established: 'relayed' })) {
      out.push(heartbeatEvent(peer.salt, 'home4', 'fresh'));
    }
    if (snapshot.matches({ udp_established: 'relayed' })) out.push(delayEvent('punchInterval', 'session.udp_established.relayed.tick'));
    // Established (with relays), the channel is bound at the relay: the peer's place from there.
    if (hasRelays && !options.coarse) out.push(relayPeersEvent());
    out.push({ type: 'peer.silent', heard: c.heard });
  }
  // A CLOSE is sealed for the session it is said to (protocol v1): a peer can say it only once
  // it has heard this session, that is once the session has punched (not while resolving).
  const closers = snapshot.matches('connected') ? [] : options.coarse ? known.filter((s) => s === c.heard?.salt || s === c.peer?.salt) : known;
  for (const salt of closers) out.push({ type: 'peer.close', peerSalt: salt });
  out.push({ type: 'ws.closed', code: 1000 }, { type: 'server.shutdown' });
  // The token's expiry is a root transition like the two above. It is offered while resolving
  // only: a real token expires on a whole second, so the replay gives such a path a token that
  // expires two seconds after the session opens, and nothing else may happen first.
  if (snapshot.matches('connected')) out.push({ type: 'token.expired' });
  return out;
}

// ---- labels ----

/** A short human label of a model event. */
export function eventLabel(event: ModelEvent): string {
  const resolution = resolutionOf(event);
  if (resolution) return resolution === 'error' ? 'resolver fails' : `resolved ${resolution}`;
  const delay = parseDelay(event.type);
  if (delay) return `after ${delay.delay}`;
  switch (event.type) {
    case 'peer.heartbeat': {
      const e = event as PeerHeartbeatEvent;
      const echo = !e.echoesUs ? 'no echo' : e.echoAgeMs! > TIMING.peerTimeoutMs ? 'stale echo' : 'fresh echo';
      return `heartbeat ${e.peerSalt} from ${endpointName(e.from)}, ${echo}`;
    }
    case 'peer.close':
      return `CLOSE ${(event as { peerSalt: string }).peerSalt}`;
    case 'peer.silent':
      return 'peer silent';
    case 'relay.peers':
      return `relay says the peer is at ${(event as { endpoints: Endpoint[] }).endpoints.map(endpointName).join(', ')}`;
    default:
      return event.type;
  }
}

/** The leaf a snapshot is in, for variant classes: connected, udp_waiting.ipv6, ..., udp_established (direct), udp_established.relayed */
export function leafOf(snapshot: ModelSnapshot): string {
  if (snapshot.status !== 'active') return 'closed';
  if (snapshot.matches('connected')) return 'connected';
  if (snapshot.matches({ udp_established: 'relayed' })) return 'udp_established.relayed';
  if (snapshot.matches('udp_established')) return 'udp_established';
  if (snapshot.matches({ udp_waiting: 'relay' })) return 'udp_waiting.relay';
  return `udp_waiting.${waitingFamily(snapshot)}`;
}

/**
 * The class of an event in a snapshot, in the terms of the brief: whose heartbeat (the
 * established peer at its endpoint or moved, the voice we echo, a new session, a closed one), on
 * which family, with which echo.
 */
export function variantOf(snapshot: ModelSnapshot, event: ModelEvent): string {
  const leaf = leafOf(snapshot);
  const c = snapshot.context;
  if (event.type === 'peer.heartbeat') {
    const e = event as PeerHeartbeatEvent;
    const echo = !e.echoesUs ? 'none' : e.echoAgeMs! > TIMING.peerTimeoutMs ? 'stale' : 'fresh';
    let who: string;
    if (c.peer?.salt === e.peerSalt) {
      who = endpointName(c.peer.endpoint) === endpointName(e.from) ? 'peer at its endpoint' : 'peer moved';
    } else if (closedSalts(snapshot).includes(e.peerSalt)) who = 'closed session';
    else if (c.heard?.salt === e.peerSalt) who = 'heard session';
    else if (knownSalts(snapshot).includes(e.peerSalt)) who = 'earlier session';
    else who = 'new session';
    const via = endpointName(e.from) === RELAY ? 'via the relay' : e.from.family;
    return `${leaf}: heartbeat, ${who}, ${via}, echo ${echo}`;
  }
  if (event.type === 'peer.close') {
    const salt = (event as { peerSalt: string }).peerSalt;
    const who =
      c.peer?.salt === salt
        ? 'peer'
        : closedSalts(snapshot).includes(salt)
          ? 'closed session'
          : c.heard?.salt === salt
            ? 'heard session'
            : 'earlier session';
    return `${leaf}: CLOSE from ${who}`;
  }
  return `${leaf}: ${eventLabel(event)}`;
}
