/**
 * Replays one model path against a real server: a real `ws` client on an in-process server
 * (real HTTP upgrade, real jose token, real UDP sockets, the real session machine), and a
 * model peer speaking the wire protocol on loopback.
 *
 * Each event of the path has a real cause (the resolver answers, the peer sends a heartbeat or a
 * CLOSE, the client closes its WebSocket, the server shuts down, time passes). After each step:
 * - conformance: the real session actor took the event and is where the model is (state value
 *   and the context facts the model keeps, symbols mapped to real salts and ports);
 * - the contract (README): the model's state and the client's status frames and close code are
 *   what contract.ts says;
 * - the peer: heartbeats arrive where the session punches (or only at the established peer),
 *   echoing what the session heard; at once where the contract says so; CLOSE when the session
 *   ends after a path;
 * - data: a client message sent whenever the session starts waiting is queued, and reaches the
 *   peer (in order, after the heartbeat that proves the path) when the path is established, or
 *   is reported `not_delivered` before CLOSED; a probe message reaches the peer wherever the path
 *   is established or moved.
 *
 * Time is real (the server's own timers, shortened by config) and every wait is bounded.
 * The inspection API of the server's actor system is used to know when the session has taken
 * an event (no sleeps) and which transitions it took (coverage).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import type { AnyStateNode, EventObject, InspectionEvent } from 'xstate';
import { directTargets, punchDelayMs, punchTargets, relayPunchTargets, type SessionContext } from '../../machines/session.machine.js';
import type { Endpoint, PeerHeartbeatEvent, ResolvedTargets, ResolveInput, StatusFrame } from '../../machines/types.js';
import { hs256Verifier, mintToken } from '../../src/auth/token.js';
import { resolveConfig } from '../../src/config.js';
import { resolveTargets, type Lookup } from '../../src/io/resolve-targets.js';
import { createLogger } from '../../src/log.js';
import { formatEndpoint, sameEndpoint } from '../../machines/endpoint.js';
import { PacketType } from '../../src/protocol/packet.js';
import { startServer, type ServerHandle } from '../../src/server.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { Waiter } from '../helpers/waiter.js';
import { TestClient } from '../helpers/ws-client.js';
import { Contract, type ContractStep, type ExpectedFrame } from './contract.js';
import { ModelPeer, type FromServer } from './model-peer.js';
import { describePath, type ModelPath } from './plan.js';
import {
  ENDPOINT_NAMES,
  endpointName,
  eventLabel,
  leafOf,
  parseDelay,
  RELAY,
  RELAY_SECRET,
  RESOLUTION_HOSTS,
  resolutionOf,
  TIMING,
  waitingFamily,
  type EndpointName,
  type ModelEvent,
  type ModelSnapshot,
  type Resolution,
} from './session-model.js';
import { transitionKey, type TransitionLike } from './transitions.js';

/** What the replays exercised on the real server, shared by all paths of a run. */
export interface Coverage {
  /** transitionKey -> times taken by a session actor on a path step. */
  sessionTransitions: Map<string, number>;
  /** State node ids a session actor was in on a path step (microsteps included). */
  sessionNodes: Set<string>;
  /** transitionKey -> times taken by the supervisor while a path ran. */
  supervisorTransitions: Map<string, number>;
  /** Plan items (plan.ts) of the paths whose replay passed. */
  items: Set<string>;
  /** Paths replayed, and how many passed. */
  replayed: number;
  passed: number;
}

export function newCoverage(): Coverage {
  return { sessionTransitions: new Map(), sessionNodes: new Set(), supervisorTransitions: new Map(), items: new Set(), replayed: 0, passed: 0 };
}

/** Bound on waits for something that follows at once (a frame, a datagram, an event): ms. */
const PROMPT_MS = 2000;
/** A timer fires at its due time; on a busy machine, allow this much lateness: ms. */
const LATE_MS = 1500;
/** A fresh echo answers a server heartbeat at most this old (the server takes up to the peer timeout): ms. */
const FRESH_MS = 100;

/** The close code of a client that closed its own WebSocket. */
const CLIENT_CLOSED = 1000;
/** The lifetime of the token of a path that ends with `token.expired` (s: JWT times are whole seconds). */
const TOKEN_EXPIRY_S = 2;

/** Answers for the names the client gives; anything else does not exist. */
const FAKE_DNS: Record<string, Array<{ address: string; family: number }>> = {
  'dual.test': [
    { address: '::1', family: 6 },
    { address: '127.0.0.1', family: 4 },
  ],
  'v4.test': [{ address: '127.0.0.1', family: 4 }],
  'v6.test': [{ address: '::1', family: 6 }],
};

const fakeLookup: Lookup = async (name) => {
  const records = FAKE_DNS[name];
  if (!records) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  return records;
};

/** One event the session actor took, as the inspection API reported it. */
interface Taken {
  event: EventObject & Record<string, unknown>;
  value: unknown;
  status: string;
  context: SessionContext;
  transitions: TransitionLike[];
  nodes: Set<string>;
  /** When the event was sent to the session (before it ran any action for it). */
  receivedAt: number;
  /** When the session had taken it. */
  doneAt: number;
}

interface Snap {
  value: unknown;
  status: string;
  context: SessionContext;
  _nodes?: AnyStateNode[];
}

function fail(message: string): never {
  throw new Error(message);
}

function ensure(condition: unknown, message: () => string): asserts condition {
  if (!condition) fail(message());
}

function ensureEqual(actual: unknown, expected: unknown, what: string): void {
  ensure(isDeepStrictEqual(actual, expected), () => `${what}:\n  expected ${JSON.stringify(expected)}\n  actual   ${JSON.stringify(actual)}`);
}

/** A resolver held until the path says it answers (DNS can take seconds; `connected` lasts that long). */
class Gate {
  #open!: (outcome: 'answer' | 'fail') => void;
  readonly outcome = new Promise<'answer' | 'fail'>((resolve) => {
    this.#open = resolve;
  });
  release(outcome: 'answer' | 'fail'): void {
    this.#open(outcome);
  }
}

export interface ReplayOptions {
  token: string;
  coverage: Coverage;
}

export async function replayPath(path: ModelPath, options: ReplayOptions): Promise<void> {
  const replay = new Replay(path, options);
  try {
    await replay.run();
  } finally {
    await replay.dispose();
  }
}

class Replay {
  readonly #path: ModelPath;
  readonly #options: ReplayOptions;
  readonly #gate = new Gate();
  readonly #contract = new Contract();
  readonly #taken: Taken[] = [];
  readonly #waiter = new Waiter();
  readonly #supervisorTaken: TransitionLike[] = [];
  #pending: Array<{ event: EventObject; at: number }> = [];
  #micro: { transitions: TransitionLike[]; nodes: Set<string> } = { transitions: [], nodes: new Set() };
  #server!: ServerHandle;
  #peer!: ModelPeer;
  #client!: TestClient;
  #closing: Promise<void> | null = null;
  #unsubscribe: (() => void) | null = null;
  /** While false, supervisor transitions count for coverage (the path is running). */
  #ended = false;
  /** What the session's heartbeats must echo: a peer heartbeat we sent (real salt, sentAt). */
  #echo: { salt: string; sentAt: number } | null = null;
  #probes = 0;
  /** Client messages sent while not established: queued by the server. */
  #queued: Buffer[] = [];
  /** Every text frame at the client, in order: `status CLOSED`, `error not_delivered`, ... */
  readonly #textFrames: string[] = [];

  constructor(path: ModelPath, options: ReplayOptions) {
    this.#path = path;
    this.#options = options;
  }

  async run(): Promise<void> {
    const steps = this.#path.steps;
    // The client names the host whose resolution the path takes (any, if it never resolves).
    const resolution: Resolution = steps.map((s) => resolutionOf(s.event)).find((r) => r !== null) ?? 'dual';
    this.#peer = await ModelPeer.start(randomBytes(32));
    const psk = this.#peer.psk;
    // The relay: a socket of the peer's own (bound before the server, which is told its port).
    const relay = await this.#peer.endpoint(RELAY);
    this.#server = await startServer(
      resolveConfig({
        host: '127.0.0.1',
        port: '0',
        'udp-port': '0',
        'jwt-secret': TEST_SECRET,
        'log-level': 'silent',
        'punch-ms': String(TIMING.punchMs),
        'heartbeat-ms': String(TIMING.heartbeatMs),
        'peer-timeout-ms': String(TIMING.peerTimeoutMs),
        'fallback-ms': String(TIMING.fallbackMs),
        'punch-timeout-ms': String(TIMING.punchTimeoutMs),
        'relay-after-ms': String(TIMING.relayAfterMs),
        relay: formatEndpoint(relay),
        'relay-secret': RELAY_SECRET,
        'shutdown-grace-ms': '2000',
        // A token expiring on a whole second is the real cause of `token.expired`: no slack.
        'jwt-clock-tolerance-s': '0',
      }),
      {
        log: createLogger('silent'),
        verifier: hs256Verifier(TEST_SECRET),
        resolveTargets: (input) => this.#resolve(input),
        // The supervisor and every session (each the root of its own actor system) report here.
        inspect: { next: (e) => this.#inspect(e) },
      },
    );
    this.#unsubscribe = () => {};
    const wsUrl = `${this.#server.url.replace(/^http/, 'ws')}/v0/ws/proxy`;
    this.#client = new TestClient(wsUrl, {
      hosts: [RESOLUTION_HOSTS[resolution]],
      port: this.#peer.port,
      key: psk.toString('base64url'),
      token: steps.some((s) => s.event.type === 'token.expired')
        ? await mintToken(TEST_SECRET, 'model', TOKEN_EXPIRY_S)
        : this.#options.token,
    });
    this.#client.ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const frame = JSON.parse(data.toString()) as { type: string; status?: string; code?: string };
      // The endpoints frame (the relay serves as a STUN server; this one never answers) comes
      // whenever the first round ends: not part of the session's sequence.
      if (frame.type === 'endpoints') return;
      if (frame.code !== 'text_not_supported') this.#textFrames.push(`${frame.type} ${frame.status ?? frame.code}`);
    });
    await this.#client.opened;

    await this.#at(0, () => this.#checkInitial());
    for (let i = 1; i < steps.length; i++) await this.#at(i, () => this.#step(i));
    this.#ended = true;
    const { coverage } = this.#options;
    for (const t of this.#supervisorTaken) {
      const key = transitionKey(t);
      coverage.supervisorTransitions.set(key, (coverage.supervisorTransitions.get(key) ?? 0) + 1);
    }
  }

  async #at(index: number, run: () => Promise<void>): Promise<void> {
    try {
      await run();
    } catch (err) {
      if (!(err instanceof Error)) throw err;
      const label = index === 0 ? 'initial state' : eventLabel(this.#path.steps[index]!.event);
      err.message = `step ${index} (${label}) of path [${describePath(this.#path)}]:\n${err.message}\n` + this.#trace();
      throw err;
    }
  }

  #trace(): string {
    const events = this.#taken.map((t) => `  ${(t.receivedAt | 0).toString().padStart(7)} ${t.event.type} -> ${JSON.stringify(t.value)}`);
    const frames = this.#client?.statuses.map((f) => `  ${JSON.stringify(f)}`) ?? [];
    return `session events:\n${events.slice(-25).join('\n')}\nclient frames:\n${frames.join('\n')}`;
  }

  async #resolve(input: ResolveInput): Promise<ResolvedTargets> {
    if ((await this.#gate.outcome) === 'fail') throw new Error('resolver failed (injected fault)');
    return resolveTargets(input, fakeLookup);
  }

  #inspect(e: InspectionEvent): void {
    const ref = e.actorRef;
    // Events flow from the start, before startServer returns: recognise the supervisor by its machine.
    if ((ref as { logic?: { id?: string } }).logic?.id === 'supervisor') {
      if (e.type === '@xstate.microstep' && !this.#ended) {
        this.#supervisorTaken.push(...((e as unknown as { _transitions: TransitionLike[] })._transitions ?? []));
      }
      return;
    }
    if (!(ref as { id?: string }).id?.startsWith('session:')) return;
    const now = performance.now();
    if (e.type === '@xstate.event') {
      this.#pending.push({ event: e.event, at: now });
    } else if (e.type === '@xstate.microstep') {
      this.#micro.transitions.push(...((e as unknown as { _transitions: TransitionLike[] })._transitions ?? []));
      for (const n of (e.snapshot as unknown as Snap)._nodes ?? []) this.#micro.nodes.add(n.id);
    } else if (e.type === '@xstate.snapshot') {
      const index = this.#pending.findIndex((p) => p.event === e.event);
      const receivedAt = index >= 0 ? this.#pending[index]!.at : now;
      if (index >= 0) this.#pending = this.#pending.slice(index + 1);
      const snap = e.snapshot as unknown as Snap;
      for (const n of snap._nodes ?? []) this.#micro.nodes.add(n.id);
      this.#taken.push({
        event: e.event as Taken['event'],
        value: snap.value,
        status: snap.status,
        context: snap.context,
        transitions: this.#micro.transitions,
        nodes: this.#micro.nodes,
        receivedAt,
        doneAt: now,
      });
      this.#micro = { transitions: [], nodes: new Set() };
      this.#waiter.notify();
    }
  }

  /** The first event the session takes at or after `from` that `match`es. */
  async #taking(from: number, match: (t: Taken) => boolean, what: string, timeoutMs: number): Promise<Taken> {
    let found: Taken | undefined;
    const look = () => (found = this.#taken.slice(from).find(match)) !== undefined;
    await this.#waiter.until(look, timeoutMs, () => `the session to take ${what}`);
    return found!;
  }

  // ---- symbols -> real things ----

  #real(name: EndpointName): Endpoint {
    const e = this.#peer.boundEndpoint(name);
    if (!e) fail(`model endpoint ${name} is not bound`);
    return e;
  }

  #nameOf(endpoint: Endpoint): string {
    for (const name of ENDPOINT_NAMES) {
      const e = this.#peer.boundEndpoint(name);
      if (e && sameEndpoint(e, endpoint)) return name;
    }
    return formatEndpoint(endpoint);
  }

  /** The model facts of a session context, with real salts and endpoints put back to symbols. */
  #realFacts(c: SessionContext): unknown {
    const salt = (hex: string) => this.#peer.sessionName(hex) ?? hex;
    return {
      candidates: c.candidates.map((e) => this.#nameOf(e)),
      learned: c.learned.map((l) => `${this.#nameOf(l.endpoint)}:${l.credit ?? 'proven'}`),
      peer: c.peer ? `${salt(c.peer.salt)}@${this.#nameOf(c.peer.endpoint)}` : null,
      heard: c.heard ? salt(c.heard.salt) : null,
      retired: c.retired.map(salt),
      waitReason: c.waitReason,
      closeReason: c.closeReason,
    };
  }

  #modelFacts(c: SessionContext): unknown {
    return {
      candidates: c.candidates.map(endpointName),
      learned: c.learned.map((l) => `${endpointName(l.endpoint)}:${l.credit ?? 'proven'}`),
      peer: c.peer ? `${c.peer.salt}@${endpointName(c.peer.endpoint)}` : null,
      heard: c.heard?.salt ?? null,
      retired: [...c.retired],
      waitReason: c.waitReason,
      closeReason: c.closeReason,
    };
  }

  // ---- steps ----

  async #checkInitial(): Promise<void> {
    const expected = this.#path.steps[0]!.state;
    await this.#client.until(() => this.#client.statuses.length >= 1, 'CONNECTED', PROMPT_MS);
    const init = await this.#taking(0, (t) => t.event.type === 'xstate.init', 'xstate.init', PROMPT_MS);
    ensureEqual(init.value, expected.value, 'real session state after start');
    this.#record(init);
    this.#checkFrames();
    ensureEqual(this.#peer.received.length, 0, 'datagrams at the peer while resolving');
    await this.#queue();
  }

  /**
   * "Before UDP_ESTABLISHED, messages are queued": send one. Then a text frame, which the server
   * rejects with `text_not_supported`: once that error frame is back, the server has taken the
   * message (one WebSocket, in order).
   */
  async #queue(): Promise<void> {
    const payload = Buffer.from(`queued ${this.#queued.length}`);
    this.#queued.push(payload);
    this.#client.send(payload);
    const rejected = () => this.#client.errors.filter((e) => e.code === 'text_not_supported').length;
    const before = rejected();
    this.#client.send('sync');
    await this.#client.until(() => rejected() > before, 'text_not_supported for a text frame', PROMPT_MS);
  }

  async #step(i: number): Promise<void> {
    const prev = this.#path.steps[i - 1]!.state;
    const { event, state: next } = this.#path.steps[i]!;

    // The real session is still where the model was: no timer left the state behind our back.
    const last = this.#taken.at(-1)!;
    ensureEqual(last.value, prev.value, `real session state before the step (a timer fired early, or the replay was too slow)`);

    const mark = this.#taken.length;
    const { match, what, timeoutMs, sentAt } = await this.#cause(event, prev);
    const taken = await this.#taking(mark, match, what, timeoutMs);
    const between = this.#taken.slice(mark, this.#taken.indexOf(taken));
    for (const t of between) ensureEqual(t.value, prev.value, `state after ${t.event.type}, taken before the step's event`);
    this.#record(taken);

    // Conformance: the server's session machine went where the model went.
    ensureEqual(taken.value, next.value, 'real session state');
    ensureEqual(this.#realFacts(taken.context), this.#modelFacts(next.context), 'real session context (model symbols)');

    // Contract: the machine's decision, then what the client sees.
    const leafBefore = this.#contract.leaf;
    const contract = this.#contract.step(event);
    ensureEqual(leafOf(next), this.#contract.leaf, 'model state against the contract (README)');
    this.#trackEcho(prev, event, next, sentAt);
    await this.#client.until(
      () => this.#client.statuses.length >= this.#contract.frames.length,
      `${this.#contract.frames.length} status frames`,
      PROMPT_MS,
    );
    this.#checkFrames();

    // The peer.
    await this.#checkPeer(next, taken, contract, i, leafBefore);
    if (next.status !== 'active') await this.#checkClosed(taken);
    else if (this.#contract.leaf.startsWith('udp_waiting') && !leafBefore.startsWith('udp_waiting')) await this.#queue();
  }

  #record(taken: Taken): void {
    const { coverage } = this.#options;
    for (const t of taken.transitions) {
      const key = transitionKey(t);
      coverage.sessionTransitions.set(key, (coverage.sessionTransitions.get(key) ?? 0) + 1);
    }
    for (const n of taken.nodes) coverage.sessionNodes.add(n);
  }

  /** Makes `event` really happen; says how to recognise it when the session takes it. */
  async #cause(
    event: ModelEvent,
    prev: ModelSnapshot,
  ): Promise<{ match: (t: Taken) => boolean; what: string; timeoutMs: number; sentAt?: number }> {
    const byType = (what: string = event.type, timeoutMs = PROMPT_MS) => ({ match: (t: Taken) => t.event.type === event.type, what, timeoutMs });
    const resolution = resolutionOf(event);
    if (resolution) {
      this.#gate.release(resolution === 'error' ? 'fail' : 'answer');
      return byType();
    }
    const delay = parseDelay(event.type);
    if (delay) {
      const ms = {
        punchInterval: punchDelayMs(TIMING, prev.context.punches),
        fallbackDelay: TIMING.fallbackMs,
        punchTimeout: TIMING.punchTimeoutMs,
        relayAfter: TIMING.relayAfterMs!,
      }[delay.delay];
      return byType(`${delay.delay} to fire`, ms + LATE_MS);
    }
    switch (event.type) {
      case 'ws.closed':
        this.#client.ws.close(CLIENT_CLOSED);
        return byType();
      case 'relay.peers': {
        // The model relay shows the server's end the peer's, paired, at its (real) sources; the
        // peer listens there first, so the punches and probes that follow can be seen.
        const names = (event as { endpoints: Endpoint[] }).endpoints.map(endpointName);
        const sources = await Promise.all(names.map((n) => this.#peer.endpoint(n)));
        await this.#peer.until(() => this.#peer.relayBound, 'the server to bind its channel at the model relay', PROMPT_MS);
        this.#peer.relayPeers(sources);
        return byType('relay.peers (a BOUND from the model relay)');
      }
      case 'server.shutdown':
        this.#closing = this.#server.close();
        return byType();
      case 'token.expired':
        // Nothing to do but wait: the session's token runs out TOKEN_EXPIRY_S after it opened.
        return byType('the token to expire', (TOKEN_EXPIRY_S + 1) * 1000 + LATE_MS);
      case 'peer.silent':
        // Nothing to do but wait: the peer sends nothing more, and the path's IO notices.
        return byType('the IO to say the peer went silent', TIMING.peerTimeoutMs + LATE_MS);
      case 'peer.close': {
        const { peerSalt } = event as { peerSalt: string };
        const from: EndpointName = prev.context.peer?.salt === peerSalt ? endpointName(prev.context.peer.endpoint) : 'home6';
        this.#peer.close(peerSalt, from, this.#serverEndpoint(from));
        const hex = this.#peer.saltHex(peerSalt);
        return { match: (t) => t.event.type === 'peer.close' && t.event.peerSalt === hex, what: `CLOSE of ${peerSalt}`, timeoutMs: PROMPT_MS };
      }
      case 'peer.heartbeat': {
        const hb = event as PeerHeartbeatEvent;
        const from = endpointName(hb.from);
        await this.#peer.endpoint(from);
        const echo = await this.#echoFor(hb);
        const sentAt = this.#peer.heartbeat(hb.peerSalt, from, this.#serverEndpoint(from), echo);
        const hex = this.#peer.saltHex(hb.peerSalt);
        return {
          match: (t) => t.event.type === 'peer.heartbeat' && t.event.peerSalt === hex && t.event.sentAt === sentAt,
          what: `the heartbeat of ${hb.peerSalt} from ${from}`,
          timeoutMs: PROMPT_MS,
          sentAt,
        };
      }
    }
    return fail(`no real cause for ${event.type}`);
  }

  #serverEndpoint(from: EndpointName): Endpoint {
    const family = from.endsWith('6') ? 'ipv6' : 'ipv4';
    const port = this.#server.udp[family];
    ensure(port !== null, () => `the server has no ${family} socket`);
    return { family, address: family === 'ipv6' ? '::1' : '127.0.0.1', port };
  }

  /**
   * The server heartbeat a peer heartbeat answers: the latest one (fresh), one older than the
   * peer timeout (stale: the peer did not hear us since), or none.
   */
  async #echoFor(hb: PeerHeartbeatEvent): Promise<FromServer | null> {
    if (!hb.echoesUs) return null;
    if (hb.echoAgeMs! <= TIMING.peerTimeoutMs) {
      // The latest heartbeat the peer heard; if the event loop was slow, the next one.
      const young = () => {
        const latest = this.#peer.heartbeats().at(-1);
        return latest && performance.now() - latest.heartbeat!.sentAt < FRESH_MS ? latest : undefined;
      };
      await this.#peer.until(() => young() !== undefined, `a server heartbeat younger than ${FRESH_MS} ms to echo`, TIMING.heartbeatMs + LATE_MS);
      return young()!;
    }
    const oldest = this.#peer.heartbeats()[0];
    ensure(oldest, () => 'no server heartbeat to echo');
    const wanted = TIMING.peerTimeoutMs + 25;
    const age = performance.now() - oldest.heartbeat!.sentAt;
    ensure(age > wanted - 100, () => `the oldest server heartbeat is ${age.toFixed(0)} ms old: too young for a stale echo`);
    if (age <= wanted) await new Promise((resolve) => setTimeout(resolve, wanted - age + 1));
    return oldest;
  }

  /** What the session's heartbeats must echo after this step (the model says whose; we know when we sent it). */
  #trackEcho(prev: ModelSnapshot, event: ModelEvent, next: ModelSnapshot, sentAt: number | undefined): void {
    const heard = next.context.heard;
    if (!heard) this.#echo = null;
    else if (event.type === 'peer.silent') {
      // The IO's latest heartbeat of the peer: the last one this replay sent it (nothing else came).
      ensure(heard.salt === prev.context.heard?.salt, () => 'peer.silent brought another voice');
    } else if (heard !== prev.context.heard) {
      ensure(event.type === 'peer.heartbeat' && sentAt !== undefined && heard.salt === (event as PeerHeartbeatEvent).peerSalt, () => 'heard changed without a heartbeat');
      this.#echo = { salt: this.#peer.saltHex(heard.salt), sentAt };
    }
  }

  #checkFrames(): void {
    const frames = this.#client.statuses;
    const expected = this.#contract.frames.map((f) => this.#realFrame(f));
    const actual = frames.map((f) => {
      const out: Partial<StatusFrame> = { status: f.status };
      if (f.family !== undefined) out.family = f.family;
      if (f.peer !== undefined) out.peer = f.peer;
      if (f.path !== undefined) out.path = f.path;
      if (f.relay !== undefined) out.relay = f.relay;
      if (f.reason !== undefined) out.reason = f.reason;
      return out;
    });
    ensureEqual(actual, expected, 'status frames at the client');
    const session = frames[0]!.session;
    for (const f of frames) {
      ensure(f.session === session && /^[0-9a-f-]{36}$/.test(session), () => `session id ${f.session} (first ${session})`);
      ensure((f.reason === undefined) === (f.message === undefined), () => `message goes with reason: ${JSON.stringify(f)}`);
      if (f.status === 'UDP_ESTABLISHED') ensure(typeof f.rttMs === 'number' && f.rttMs >= 0, () => `rttMs in ${JSON.stringify(f)}`);
      else ensure(f.rttMs === undefined, () => `rttMs only when established: ${JSON.stringify(f)}`);
    }
  }

  #realFrame(f: ExpectedFrame): Partial<StatusFrame> {
    const out: Partial<StatusFrame> = { status: f.status };
    if (f.family) out.family = f.family;
    if (f.peer) out.peer = formatEndpoint(this.#real(f.peer));
    if (f.path) out.path = f.path;
    if (f.relay) out.relay = formatEndpoint(this.#real(f.relay));
    if (f.reason) out.reason = f.reason;
    return out;
  }

  /** Heartbeats the server sent after `since` (its clock is ours: same process). */
  #heartbeatsSince(since: number): FromServer[] {
    return this.#peer.heartbeats().filter((r) => r.heartbeat!.sentAt >= since);
  }

  async #checkPeer(next: ModelSnapshot, taken: Taken, contract: ContractStep, index: number, leafBefore: string): Promise<void> {
    const family = waitingFamily(next);
    let targets: EndpointName[];
    let interval: number;
    if (family) {
      targets = punchTargets(next.context, family).map(endpointName);
      interval = TIMING.punchMs;
      // The contract bounds what the machine computed: every candidate of the family being
      // punched, and nothing but candidates, sources of authenticated heartbeats and where the
      // last path was (a relayed one: the relay).
      const allowed = new Set<string>([...(family === 'ipv6' ? ['home6'] : ['home4']), ...this.#contract.sources, ...this.#contract.relayPeers]);
      if (this.#contract.lastPath) allowed.add(this.#contract.lastPath);
      const candidate = family === 'ipv6' ? 'home6' : 'home4';
      ensure(!this.#contract.candidates.includes(family) || targets.includes(candidate), () => `punch targets ${targets} miss the ${family} candidate`);
      ensure(targets.every((t) => allowed.has(t)), () => `punch targets ${targets} beyond candidates, heard sources and the relay's word ${[...allowed]}`);
    } else if (next.matches({ udp_waiting: 'relay' })) {
      // The relay step: both families' candidates, the heard sources, and the relay.
      targets = relayPunchTargets(next.context).map(endpointName);
      interval = TIMING.punchMs;
      const allowed = new Set<string>(['home6', 'home4', RELAY, ...this.#contract.sources, ...this.#contract.relayPeers]);
      for (const must of [RELAY, ...this.#contract.candidates.map((f) => (f === 'ipv6' ? 'home6' : 'home4'))]) {
        ensure(targets.includes(must as EndpointName), () => `relay-step punch targets ${targets} miss ${must}`);
      }
      ensure(targets.every((t) => allowed.has(t)), () => `relay-step punch targets ${targets} beyond candidates, heard sources, the relay's word and the relay`);
    } else if (next.matches('udp_established')) {
      const at = endpointName(next.context.peer!.endpoint);
      ensure(this.#contract.peer?.at === at, () => `established at ${at}, contract says ${this.#contract.peer?.at}`);
      targets = [at];
      interval = TIMING.heartbeatMs;
      if (next.matches({ udp_established: 'relayed' })) {
        // Relayed: the path's heartbeats go to the relay, and probes to the direct places.
        const probes = directTargets(next.context).map(endpointName);
        ensure(!probes.includes(RELAY), () => `probes ${probes} include the relay`);
        targets = [at, ...probes.filter((p) => p !== at)];
      }
    } else {
      return;
    }
    const since = taken.receivedAt;
    const arrived = (t: EndpointName) => this.#heartbeatsSince(since).some((r) => r.on === t);
    await this.#peer.until(
      () => targets.every(arrived),
      `heartbeats at ${targets.join(', ')} (got ${this.#heartbeatsSince(since).map((r) => r.on).join(', ') || 'none'})`,
      interval + LATE_MS,
    );
    // A heartbeat from a peer session may be answered at its source at once (paid for by the
    // heartbeat it answers), even where the next punch does not go.
    const answered = taken.event.type === 'peer.heartbeat' ? this.#nameOf((taken.event as unknown as PeerHeartbeatEvent).from) : null;
    const allowed: string[] = answered && !(targets as string[]).includes(answered) ? [...targets, answered] : targets;
    for (const r of this.#heartbeatsSince(since)) {
      ensure(allowed.includes(r.on), () => `a heartbeat at ${r.on}; the session should send only to ${allowed.join(', ')}`);
      const echo = { salt: r.heartbeat!.echoSalt, sentAt: r.heartbeat!.echoSalt === null ? null : r.heartbeat!.echoSentAt };
      const expected = this.#echo ? { salt: this.#echo.salt, sentAt: this.#echo.sentAt } : { salt: null, sentAt: null };
      ensureEqual(echo, expected, `echo of a heartbeat at ${r.on}`);
    }
    if (contract.heartbeatAtOnce) {
      // Sent at once (before the session was done with the event); it may arrive on another of
      // the peer's sockets after the heartbeats awaited above: wait for it, bounded.
      await this.#peer.until(
        () => this.#heartbeatsSince(since).some((r) => r.heartbeat!.sentAt <= taken.doneAt),
        'a heartbeat at once (the contract: at once when a new peer session is first heard or the path is established)',
        PROMPT_MS,
      );
    }
    if (contract.pathChanged) {
      const at = targets[0]!;
      const probe = Buffer.from(`probe ${index}.${this.#probes++}`);
      const expected = leafBefore === 'udp_established' ? [probe] : [...this.#queued, probe];
      this.#queued = [];
      this.#client.send(probe);
      const data = () => this.#peer.received.filter((r) => r.type === PacketType.DATA && r.at >= since);
      await this.#peer.until(
        () => data().some((r) => r.plaintext?.equals(probe)),
        `client data at ${at}`,
        PROMPT_MS,
      );
      ensureEqual(
        data().map((r) => `${r.plaintext?.toString()} at ${r.on}`),
        expected.map((p) => `${p.toString()} at ${at}`),
        'client data at the peer (queued messages in order, then the probe)',
      );
      if (expected.length > 1) {
        const proof = this.#peer.received.findIndex((r) => r.heartbeat !== null && r.heartbeat.sentAt >= since && r.on === at);
        const firstData = this.#peer.received.indexOf(data()[0]!);
        ensure(proof >= 0 && proof < firstData, () => 'queued data reached the peer before the heartbeat that proves the path');
      }
    }
  }

  async #checkClosed(taken: Taken): Promise<void> {
    const code = this.#contract.closeCode!;
    const lastPath = this.#contract.lastPath;
    const closes = () => this.#peer.received.filter((r) => r.type === PacketType.CLOSE && r.at >= taken.receivedAt);
    if (lastPath) {
      await this.#peer.until(() => closes().some((r) => r.on === lastPath), `CLOSE at ${lastPath}, where the path was`, PROMPT_MS);
    }
    await this.#client.until(() => this.#client.closeCode !== null, 'the WebSocket to close', PROMPT_MS + 2000);
    ensureEqual(this.#client.closeCode, code, 'WebSocket close code');
    // Quiet after the end: no heartbeat, no other CLOSE, no frame.
    await new Promise((resolve) => setTimeout(resolve, 2 * TIMING.heartbeatMs));
    ensureEqual(this.#heartbeatsSince(taken.doneAt).length, 0, 'heartbeats after the session closed');
    ensureEqual(closes().map((r) => r.on), lastPath ? [lastPath] : [], 'CLOSE datagrams at the peer');
    this.#checkFrames();
    if (code === CLIENT_CLOSED) {
      // The client closed its WebSocket: the server has nothing more to tell it.
      ensureEqual(this.#textFrames.filter((f) => f.startsWith('error')), [], 'error frames at the client');
    } else {
      // "If the session closes with messages still queued, the client gets one not_delivered
      // error frame saying how many, before CLOSED."
      const tail = [...(this.#queued.length ? ['error not_delivered'] : []), 'status CLOSED'];
      ensureEqual(this.#textFrames.slice(-tail.length), tail, 'last text frames at the client');
      const error = this.#client.errors.find((e) => e.code === 'not_delivered');
      ensure(!error || error.message.startsWith(`${this.#queued.length} queued message`), () => `not_delivered message: ${error?.message}`);
    }
    ensureEqual(
      this.#client.errors.filter((e) => e.code !== 'not_delivered' && e.code !== 'text_not_supported'),
      [],
      'error frames at the client',
    );
  }

  async dispose(): Promise<void> {
    this.#ended = true;
    const timeout = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());
    if (this.#client) await Promise.race([this.#client.close(), timeout(3000)]);
    this.#unsubscribe?.();
    if (this.#server) await (this.#closing ?? this.#server.close());
    this.#peer?.stop();
  }
}
