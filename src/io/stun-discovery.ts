/**
 * Public endpoint discovery: Binding requests to each STUN server on each family this host has
 * a socket for, sent from the server's own peer sockets (so the endpoint found is the one peers
 * must punch to). Answers are handed over by the UDP plane (switchboard.ts) and count only when
 * they carry the transaction id of an outstanding request and come from the server it went to:
 * anything else is counted and dropped without state. Asked at start, every STUN_REFRESH_MS,
 * and when asked (refresh()).
 *
 * Every send is its own transaction (a fresh random id), so a round trip is always measured
 * from the request it answers, retransmissions included (RFC 8489 section 6.2.1's timing:
 * an RTO doubling from STUN_RTO_MS).
 */
import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import type { Logger } from 'pino';
import type { Endpoint, Family } from '../../machines/endpoint.js';
import type { Clock, Timer } from '../clock.js';
import { normalizeAddress } from '../net/address.js';
import type { HostPort } from '../net/host-port.js';
import { endpointsFrame, type EndpointsFrame, type StunResult } from '../net/nat-mapping.js';
import { bindingAnswerOf, decodeStun, encodeBindingRequest, TRANSACTION_ID_BYTES } from '../protocol/stun.js';

/** How often the public endpoints are asked again (ms): NAT mappings expire and change. */
export const STUN_REFRESH_MS = 60_000;
/** The first retransmission timeout (ms); it doubles with each retransmission (RFC 8489: 500 ms). */
export const STUN_RTO_MS = 500;
/** Requests per server and family in one round, the first included. */
export const STUN_MAX_SENDS = 4;
/** A server that has not answered this long after the first request of a round has failed it (ms). */
export const STUN_TIMEOUT_MS = 5_000;

export interface StunTiming {
  rtoMs: number;
  maxSends: number;
  timeoutMs: number;
  /** 0: no periodic rounds (a one-shot check). */
  refreshMs: number;
}

export const SERVER_STUN_TIMING: StunTiming = { rtoMs: STUN_RTO_MS, maxSends: STUN_MAX_SENDS, timeoutMs: STUN_TIMEOUT_MS, refreshMs: STUN_REFRESH_MS };

/** Where requests go out: the UDP plane's sockets (or netcheck's own). */
export interface StunSender {
  send(to: Endpoint, pieces: Buffer[]): boolean;
  families(): Family[];
}

export type Resolve = (host: string) => Promise<Array<{ family: Family; address: string }>>;

/** STUN datagrams seen, by what they were (the `autoprox_stun_datagrams_total` counter). */
export interface StunCounts {
  /** Binding requests sent, retransmissions included. */
  request_sent: number;
  /** Answers that matched an outstanding request from the server it went to. */
  answer: number;
  /** Well-formed STUN answers matching nothing outstanding (late, forged, or from elsewhere). */
  unsolicited: number;
  /** STUN-looking datagrams that do not decode, or whose FINGERPRINT is wrong. */
  malformed: number;
  /** STUN requests and indications sent to this server: not answered here. */
  ignored: number;
}

export interface StunDiscoveryOptions {
  /** In order of preference: the first answering server's endpoint is the one reported. */
  servers: readonly HostPort[];
  sender: StunSender;
  clock: Clock;
  log: Logger;
  timing?: StunTiming;
  /** DNS (default: the system resolver, every address). */
  resolve?: Resolve;
  /** 12 random bytes per request (default: node:crypto). */
  transactionId?: () => Buffer;
  /** The relay this server would use (the `relay` field of the frame); none yet. */
  relay?: () => string | null;
}

/** What GET /v0/endpoints returns: the frame's fields and each server's answer. */
export interface EndpointsView {
  ipv4: string | null;
  ipv6: string | null;
  nat: EndpointsFrame['nat'];
  relay: string | null;
  servers: Array<{ server: string; family: Family; address: string | null; mapped: string | null; rttMs: number | null; error: string | null }>;
}

interface Probe {
  server: HostPort;
  family: Family;
  to: Endpoint;
  firstAt: number;
  sends: number;
  ids: string[];
  timer: Timer | null;
  settle: (result: StunResult) => void;
}

const systemResolve: Resolve = async (host) => {
  const literal = normalizeAddress(host);
  if (literal) return [literal];
  const found = await lookup(host, { all: true });
  return found.flatMap((a) => {
    const n = normalizeAddress(a.address);
    return n ? [n] : [];
  });
};

export class StunDiscovery {
  readonly counts: StunCounts = { request_sent: 0, answer: 0, unsolicited: 0, malformed: 0, ignored: 0 };
  readonly #options: StunDiscoveryOptions;
  readonly #timing: StunTiming;
  readonly #resolve: Resolve;
  readonly #newId: () => Buffer;
  /** Transaction id (hex) -> its probe and when that request went out. */
  readonly #outstanding = new Map<string, { probe: Probe; sentAt: number }>();
  readonly #listeners = new Set<(frame: EndpointsFrame) => void>();
  #results: StunResult[] = [];
  #rounds = 0;
  #round: Promise<void> | null = null;
  #published: string | null = null;
  #refreshTimer: Timer | null = null;
  #stopped = false;

  constructor(options: StunDiscoveryOptions) {
    this.#options = options;
    this.#timing = options.timing ?? SERVER_STUN_TIMING;
    this.#resolve = options.resolve ?? systemResolve;
    this.#newId = options.transactionId ?? (() => randomBytes(TRANSACTION_ID_BYTES));
  }

  get servers(): readonly HostPort[] {
    return this.#options.servers;
  }

  /** A first round has completed (every server answered or failed). */
  get ready(): boolean {
    return this.#rounds > 0;
  }

  /** Asks now, then every refreshMs (if any). */
  start(): Promise<void> {
    if (this.#timing.refreshMs > 0 && !this.#refreshTimer) {
      this.#refreshTimer = this.#options.clock.every(this.#timing.refreshMs, () => void this.refresh());
    }
    return this.refresh();
  }

  /** Asks every server again; resolves when the round is over. A round under way is joined, not doubled. */
  refresh(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    this.#round ??= this.#runRound().finally(() => {
      this.#round = null;
    });
    return this.#round;
  }

  /** The `endpoints` frame, or null before the first round is over. */
  frame(): EndpointsFrame | null {
    return this.ready ? endpointsFrame(this.#results, this.#options.relay?.() ?? null) : null;
  }

  view(): EndpointsView {
    const { type: _type, ...frame } = endpointsFrame(this.#results, this.#options.relay?.() ?? null);
    const text = (e: Endpoint | null) => (e === null ? null : e.family === 'ipv6' ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`);
    return {
      ...frame,
      servers: this.#results.map((r) => ({ server: r.server, family: r.family, address: text(r.to), mapped: text(r.mapped), rttMs: r.rttMs, error: r.error })),
    };
  }

  get results(): readonly StunResult[] {
    return this.#results;
  }

  /** Called with each new frame: the first once a round is over, then whenever it changes. */
  subscribe(listener: (frame: EndpointsFrame) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** A STUN datagram from the UDP plane. Never throws, never answers. */
  receive(family: Family, datagram: Buffer, address: string, port: number): void {
    const message = decodeStun(datagram);
    if (typeof message === 'string') {
      this.counts.malformed++;
      return;
    }
    const answer = bindingAnswerOf(message);
    if (!answer) {
      this.counts.ignored++;
      return;
    }
    const id = answer.transactionId.toString('hex');
    const entry = this.#outstanding.get(id);
    if (!entry || entry.probe.family !== family || entry.probe.to.address !== address || entry.probe.to.port !== port) {
      this.counts.unsolicited++;
      return;
    }
    if (!answer.ok && answer.error === 'bad_fingerprint') {
      this.counts.malformed++;
      return;
    }
    this.counts.answer++;
    const { probe, sentAt } = entry;
    const rttMs = Math.max(0, this.#options.clock.now() - sentAt);
    probe.settle(
      answer.ok
        ? { server: probe.server.text, family, to: probe.to, mapped: { family: answer.mapped.family, address: answer.mapped.address, port: answer.mapped.port }, rttMs, error: null }
        : { server: probe.server.text, family, to: probe.to, mapped: null, rttMs, error: answer.error === 'no_address' ? 'no_mapped_address' : answer.error },
    );
  }

  /** Stops asking; what is outstanding is forgotten. */
  stop(): void {
    this.#stopped = true;
    this.#refreshTimer?.cancel();
    this.#refreshTimer = null;
    for (const { probe } of [...this.#outstanding.values()]) probe.settle({ server: probe.server.text, family: probe.family, to: probe.to, mapped: null, rttMs: null, error: 'stopped' });
    this.#listeners.clear();
  }

  async #runRound(): Promise<void> {
    const families = this.#options.sender.families();
    const perServer = await Promise.all(this.#options.servers.map((server) => this.#askServer(server, families)));
    if (this.#stopped) return;
    this.#results = perServer.flat();
    this.#rounds++;
    const frame = this.frame()!;
    const json = JSON.stringify(frame);
    if (json === this.#published) return;
    this.#published = json;
    this.#options.log.info({ endpoints: frame, servers: this.view().servers }, 'public endpoints (STUN)');
    for (const listener of [...this.#listeners]) listener(frame);
  }

  async #askServer(server: HostPort, families: Family[]): Promise<StunResult[]> {
    let addresses: Array<{ family: Family; address: string }>;
    try {
      addresses = await this.#resolve(server.host);
    } catch (err) {
      this.#options.log.debug({ server: server.text, err: (err as Error).message }, 'STUN server does not resolve');
      return families.map((family) => ({ server: server.text, family, to: null, mapped: null, rttMs: null, error: 'resolve_failed' }));
    }
    return Promise.all(
      families.map((family) => {
        const address = addresses.find((a) => a.family === family)?.address;
        if (address === undefined) return { server: server.text, family, to: null, mapped: null, rttMs: null, error: 'no_address' };
        return this.#probe(server, { family, address, port: server.port });
      }),
    );
  }

  #probe(server: HostPort, to: Endpoint): Promise<StunResult> {
    const { clock } = this.#options;
    return new Promise<StunResult>((resolve) => {
      const probe: Probe = {
        server, family: to.family, to, firstAt: clock.now(), sends: 0, ids: [], timer: null,
        settle: (result) => {
          probe.timer?.cancel();
          for (const id of probe.ids) this.#outstanding.delete(id);
          probe.settle = () => {};
          resolve(result);
        },
      };
      const fail = (error: string) => probe.settle({ server: server.text, family: to.family, to, mapped: null, rttMs: null, error });
      const send = (rtoMs: number) => {
        if (this.#stopped) return fail('stopped');
        const id = this.#newId();
        const key = id.toString('hex');
        probe.ids.push(key);
        probe.sends++;
        this.#outstanding.set(key, { probe, sentAt: clock.now() });
        this.counts.request_sent++;
        if (!this.#options.sender.send(to, [encodeBindingRequest(id)])) return fail('send_failed');
        const left = probe.firstAt + this.#timing.timeoutMs - clock.now();
        if (probe.sends < this.#timing.maxSends && rtoMs < left) probe.timer = clock.after(rtoMs, () => send(rtoMs * 2));
        else probe.timer = clock.after(Math.max(0, left), () => fail('timeout'));
      };
      send(this.#timing.rtoMs);
    });
  }
}
