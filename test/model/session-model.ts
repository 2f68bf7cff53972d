/**
 * The session statechart as a test model: the REAL session machine (its IO actors swapped for
 * no-ops through `.provide`), traversed by `xstate/graph` with an alphabet of realistic events
 * and an abstraction of its snapshots that makes traversal terminate.
 *
 * Symbols stand for real things the replay creates: peer sessions `S1`..`S3` (salts of the
 * scripted peer), peer endpoints `home6`/`home4` (the candidates the client names, one port on
 * both families) and `alt6`/`alt4` (the ports the peer moves to when its NAT rebinds).
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
};

/** The real session machine with no-op IO: what the graph traversal runs. */
export const modelMachine = sessionMachine.provide({
  actors: {
    bridge: fromCallback<BridgeCommand, BridgeInput>(() => {}),
    resolveTargets: fromPromise<ResolvedTargets, ResolveInput>(() => new Promise<never>(() => {})),
  },
});

export type ModelSnapshot = SnapshotFrom<typeof modelMachine>;

export const MODEL_INPUT: SessionInput = {
  id: 'model',
  hosts: ['dual.test'],
  port: 7000,
  families: ['ipv6', 'ipv4'],
  timing: TIMING,
};

// ---- symbols ----

export const ENDPOINT_NAMES = ['home6', 'home4', 'alt6', 'alt4'] as const;
export type EndpointName = (typeof ENDPOINT_NAMES)[number];

/** Model endpoints: the homes share the candidate port on both families; alt ports are rebindings. */
export const MODEL_ENDPOINTS: Record<EndpointName, Endpoint> = {
  home6: { family: 'ipv6', address: '::1', port: MODEL_INPUT.port },
  home4: { family: 'ipv4', address: '127.0.0.1', port: MODEL_INPUT.port },
  alt6: { family: 'ipv6', address: '::1', port: 7006 },
  alt4: { family: 'ipv4', address: '127.0.0.1', port: 7004 },
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

export const DELAYS = ['punchInterval', 'heartbeatInterval', 'fallbackDelay', 'peerTimeout', 'punchTimeout'] as const;
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
  const d = event && parseDelay(event.type);
  return d?.delay === 'peerTimeout' ? TIMING.peerTimeoutMs : 0;
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
 * Model age of a snapshot (ms of timers that fired on the way to it), capped. Kept beside the
 * snapshots (they are immutable objects) and filled in by `serializeState`, which the traversal
 * calls with each new snapshot and the one it came from.
 */
const ages = new WeakMap<object, number>();
const OLD_MS = TIMING.peerTimeoutMs;

export function ageOf(snapshot: ModelSnapshot): number {
  return ages.get(snapshot) ?? 0;
}

/** Old enough that a peer can echo one of our heartbeats older than the peer timeout. */
export function isOld(snapshot: ModelSnapshot): boolean {
  return ageOf(snapshot) >= OLD_MS;
}

function recordAge(snapshot: ModelSnapshot, event: EventObject | undefined, prev: ModelSnapshot | undefined): void {
  if (!ages.has(snapshot)) ages.set(snapshot, Math.min(OLD_MS, (prev ? ageOf(prev) : 0) + timeOf(event)));
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
  recordAge(snapshot, event, prev);
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
  });
}

/** The coarse abstraction for simple paths: where the session is, and why. */
export function serializeCoarse(snapshot: ModelSnapshot, event?: EventObject, prev?: ModelSnapshot): string {
  recordAge(snapshot, event, prev);
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

/** The smallest model salt the session has no memory of: a new peer session. */
function newSalt(snapshot: ModelSnapshot): string | null {
  const c = snapshot.context;
  return SALTS.find((s) => s !== c.peer?.salt && s !== c.heard?.salt && !c.retired.includes(s)) ?? null;
}

function uniq<T>(values: Array<T | null | undefined>): T[] {
  return [...new Set(values.filter((v): v is T => v !== null && v !== undefined))];
}

/**
 * Every event that can really happen in this snapshot, with realistic payloads. Timers are
 * offered only in the order real time lets them fire (fallback before the punch timeout when
 * there is an IPv4 candidate); a stale echo only once the session is older than the peer timeout;
 * CLOSE only from a peer session the server has heard (it cannot open anyone else's).
 */
export function eventsOf(snapshot: ModelSnapshot, options: { coarse?: boolean } = {}): ModelEvent[] {
  if (snapshot.status !== 'active') return [];
  const c = snapshot.context;
  const out: ModelEvent[] = [];
  const echoes = ECHOES.filter((e) => e !== 'stale' || isOld(snapshot));
  const heartbeats = (salts: string[]) => {
    for (const salt of salts) {
      for (const from of ENDPOINT_NAMES) for (const echo of echoes) out.push(heartbeatEvent(salt, from, echo));
    }
  };
  if (snapshot.matches('connected')) {
    for (const r of RESOLUTIONS) out.push(resolutionEvent(r));
  }
  const family = waitingFamily(snapshot);
  if (family) {
    const known = uniq([c.heard?.salt, ...c.retired]);
    const hasIpv4 = c.candidates.some((e) => e.family === 'ipv4');
    if (options.coarse) {
      const salt = c.heard?.salt ?? newSalt(snapshot) ?? 'S1';
      out.push(heartbeatEvent(salt, family === 'ipv6' ? 'home6' : 'home4', 'fresh'));
      out.push(heartbeatEvent(salt, family === 'ipv6' ? 'home6' : 'home4', 'none'));
    } else {
      heartbeats(uniq([...known, newSalt(snapshot)]));
    }
    for (const salt of known) out.push({ type: 'peer.close', peerSalt: salt });
    out.push(delayEvent('punchInterval', `session.udp_waiting.${family}.tick`));
    if (family === 'ipv6' && hasIpv4) out.push(delayEvent('fallbackDelay', 'session.udp_waiting.ipv6'));
    if (family === 'ipv4' || !hasIpv4) out.push(delayEvent('punchTimeout', 'session.udp_waiting'));
  }
  if (snapshot.matches('udp_established')) {
    const peer = c.peer!;
    const retired = c.retired.filter((s) => s !== peer.salt);
    if (options.coarse) {
      out.push(heartbeatEvent(peer.salt, endpointName(peer.endpoint), 'fresh'));
    } else {
      heartbeats(uniq([peer.salt, ...retired, newSalt(snapshot)]));
    }
    for (const salt of [peer.salt, ...retired]) out.push({ type: 'peer.close', peerSalt: salt });
    out.push(delayEvent('heartbeatInterval', 'session.udp_established.heartbeat.tick'));
    out.push(delayEvent('peerTimeout', 'session.udp_established.watchdog.alive'));
  }
  out.push({ type: 'ws.closed', code: 1000 }, { type: 'server.shutdown' });
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
    default:
      return event.type;
  }
}

/** The leaf a snapshot is in, for variant classes: connected, udp_waiting.ipv6, ... */
export function leafOf(snapshot: ModelSnapshot): string {
  if (snapshot.status !== 'active') return 'closed';
  if (snapshot.matches('connected')) return 'connected';
  if (snapshot.matches('udp_established')) return 'udp_established';
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
    } else if (c.retired.includes(e.peerSalt)) who = 'closed session';
    else if (c.heard?.salt === e.peerSalt) who = 'heard session';
    else who = 'new session';
    return `${leaf}: heartbeat, ${who}, ${e.from.family}, echo ${echo}`;
  }
  if (event.type === 'peer.close') {
    const salt = (event as { peerSalt: string }).peerSalt;
    const who = c.peer?.salt === salt ? 'peer' : c.retired.includes(salt) ? 'closed session' : 'heard session';
    return `${leaf}: CLOSE from ${who}`;
  }
  return `${leaf}: ${eventLabel(event)}`;
}
