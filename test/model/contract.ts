/**
 * The contract of README.md ("Status frames", "Close codes", "Wire protocol") as an oracle,
 * written from the README and not from the machine: given what happened (a model event), what
 * must the WebSocket client see, and where must the session be?
 *
 * The replay checks the model's next state against this oracle (the machine keeps the contract)
 * and the real client's frames against it (the server keeps the contract).
 */
import type { CloseReason, Endpoint, Family, PeerHeartbeatEvent, WaitReason } from '../../machines/types.js';
import { endpointName, MODEL_ENDPOINTS, parseDelay, RELAY, resolutionOf, TIMING, type EndpointName, type ModelEvent } from './session-model.js';

export type ContractLeaf =
  | 'connected'
  | 'udp_waiting.ipv6'
  | 'udp_waiting.ipv4'
  | 'udp_waiting.relay'
  | 'udp_established'
  | 'udp_established.relayed'
  | 'closed';

/** A status frame as the contract describes it; `peer` is a model endpoint, formatted by the replay. */
export interface ExpectedFrame {
  status: 'CONNECTED' | 'UDP_WAITING' | 'UDP_ESTABLISHED' | 'CLOSED';
  family?: Family;
  peer?: EndpointName;
  /** UDP_ESTABLISHED: "path": "direct" | "relay"; on a relayed path, "relay" repeats `peer`. */
  path?: 'direct' | 'relay';
  relay?: EndpointName;
  reason?: CloseReason | WaitReason;
}

const CLOSE_CODE: Record<CloseReason, number> = {
  client_closed: 1000,
  server_shutdown: 1001,
  punch_timeout: 4000,
  no_candidates: 4001,
  token_expired: 4003,
};

export interface ContractStep {
  /** "heartbeats ... at once when a new peer session is first heard or the path is established". */
  heartbeatAtOnce: boolean;
  /** The path was established or moved: client data must now reach the peer there. */
  pathChanged: boolean;
}

export class Contract {
  leaf: ContractLeaf = 'connected';
  readonly frames: ExpectedFrame[] = [{ status: 'CONNECTED' }];
  closeCode: number | null = null;
  /** The established peer session and where it is. */
  peer: { salt: string; at: EndpointName } | null = null;
  /** Where the session last had a path: CLOSE goes there when the session ends. */
  lastPath: EndpointName | null = null;
  /** Sources of authenticated heartbeats: the only places besides candidates worth punching. */
  readonly sources = new Set<EndpointName>();
  /**
   * Where the relay says the peer server is ("tells the peer its current endpoints through the
   * relay so both sides punch again"): worth punching and probing too, never the relay itself.
   */
  readonly relayPeers = new Set<EndpointName>();
  candidates: Family[] = [];
  readonly #heard = new Set<string>();
  /** "A peer session that said CLOSE is never adopted again." */
  readonly #closed = new Set<string>();
  #lostBecause: WaitReason | null = null;
  /** The server runs with `--relay` (the model's relay, RELAY). */
  readonly relays: boolean;

  constructor(relays = true) {
    this.relays = relays;
  }

  /** The family punched first: "IPv6 first, falling back to IPv4" (IPv4 when there is no IPv6 candidate). */
  /** An independent copy, to follow two continuations of one history. */
  clone(): Contract {
    const copy = new Contract(this.relays);
    copy.leaf = this.leaf;
    copy.frames.splice(0, copy.frames.length, ...this.frames);
    copy.closeCode = this.closeCode;
    copy.peer = this.peer;
    copy.lastPath = this.lastPath;
    for (const s of this.sources) copy.sources.add(s);
    for (const s of this.relayPeers) copy.relayPeers.add(s);
    copy.candidates = this.candidates;
    for (const s of this.#heard) copy.#heard.add(s);
    for (const s of this.#closed) copy.#closed.add(s);
    copy.#lostBecause = this.#lostBecause;
    return copy;
  }

  get firstFamily(): Family {
    return this.candidates.includes('ipv6') ? 'ipv6' : 'ipv4';
  }

  #wait(family: Family): void {
    this.leaf = `udp_waiting.${family}`;
    this.frames.push({ status: 'UDP_WAITING', family, ...(this.#lostBecause ? { reason: this.#lostBecause } : {}) });
  }

  #close(reason: CloseReason, frame: boolean): void {
    this.leaf = 'closed';
    if (frame) this.frames.push({ status: 'CLOSED', reason });
    this.closeCode = CLOSE_CODE[reason];
  }

  get established(): boolean {
    return this.leaf === 'udp_established' || this.leaf === 'udp_established.relayed';
  }

  /**
   * "UDP_ESTABLISHED ... path: direct | relay. On a relayed path peer is the relay's endpoint
   * and relay repeats it"; a new frame whenever the path changes.
   */
  #establish(salt: string, at: EndpointName, family: Family): void {
    const relayed = at === RELAY;
    this.leaf = relayed ? 'udp_established.relayed' : 'udp_established';
    this.peer = { salt, at };
    this.lastPath = at;
    this.frames.push({ status: 'UDP_ESTABLISHED', family, peer: at, path: relayed ? 'relay' : 'direct', ...(relayed ? { relay: at } : {}) });
  }

  #lose(reason: WaitReason): void {
    this.#lostBecause = reason;
    this.peer = null;
    this.#wait(this.firstFamily);
  }

  step(event: ModelEvent): ContractStep {
    const out: ContractStep = { heartbeatAtOnce: false, pathChanged: false };
    const resolution = resolutionOf(event);
    if (resolution) {
      const families: Record<typeof resolution, Family[]> = { dual: ['ipv6', 'ipv4'], ipv4: ['ipv4'], ipv6: ['ipv6'], none: [], error: [] };
      this.candidates = families[resolution];
      if (this.candidates.length === 0) this.#close('no_candidates', true);
      else this.#wait(this.firstFamily);
      return out;
    }
    const delay = parseDelay(event.type);
    if (delay) {
      if (delay.delay === 'fallbackDelay') this.#wait('ipv4');
      // "when no direct path has proven itself within --relay-after-ms, also binds to a relay":
      // still UDP_WAITING, nothing new for the client.
      if (delay.delay === 'relayAfter' && this.relays) this.leaf = 'udp_waiting.relay';
      if (delay.delay === 'punchTimeout') this.#close('punch_timeout', true);
      return out;
    }
    switch (event.type) {
      case 'ws.closed':
        this.#close('client_closed', false);
        return out;
      case 'server.shutdown':
        this.#close('server_shutdown', true);
        return out;
      case 'token.expired':
        this.#close('token_expired', true);
        return out;
      case 'relay.peers':
        // Nothing the client sees; more places to punch.
        for (const e of (event as { endpoints: Endpoint[] }).endpoints) if (endpointName(e) !== RELAY) this.relayPeers.add(endpointName(e));
        return out;
      case 'peer.silent':
        // "When an established direct path dies, the session moves to the relay ... (no
        // UDP_WAITING in between)"; a relayed path that dies: "no heartbeat from the peer that
        // shows it still hears us for --peer-timeout-ms".
        if (this.leaf === 'udp_established' && this.relays) {
          this.#establish(this.peer!.salt, RELAY, MODEL_ENDPOINTS[RELAY].family);
          out.pathChanged = true;
        } else if (this.established) this.#lose('peer_timeout');
        return out;
      case 'peer.close': {
        // "A peer session that said CLOSE is never adopted again", whenever it says it.
        const { peerSalt } = event as { peerSalt: string };
        this.#closed.add(peerSalt);
        if (this.established && this.peer?.salt === peerSalt) this.#lose('peer_closed');
        return out;
      }
      case 'peer.heartbeat': {
        const hb = event as PeerHeartbeatEvent;
        const from = endpointName(hb.from);
        const firstHeard = !this.#heard.has(hb.peerSalt);
        this.#heard.add(hb.peerSalt);
        this.sources.add(from);
        if (this.leaf === 'connected') return out; // no candidates yet: nothing to punch, nothing proven
        // "Only a heartbeat that echoes us freshly adopts a peer, keeps a path alive or moves it."
        const fresh = hb.echoesUs && hb.echoAgeMs !== null && hb.echoAgeMs <= TIMING.peerTimeoutMs;
        if (this.established) {
          // "A heartbeat ... that echoes us freshly from a new address or port moves the
          // session there", except that a heartbeat through the relay never pulls a direct path
          // to it; a relayed path moves to direct "as soon as a direct path proves itself".
          if (this.peer?.salt === hb.peerSalt && this.peer.at !== from && fresh && !(from === RELAY && this.leaf === 'udp_established')) {
            this.#establish(hb.peerSalt, from, hb.from.family);
            out.pathChanged = true;
          }
          return out;
        }
        const proves = fresh && !this.#closed.has(hb.peerSalt);
        if (proves) {
          this.#establish(hb.peerSalt, from, hb.from.family);
          this.#lostBecause = null;
          out.heartbeatAtOnce = true;
          out.pathChanged = true;
        } else {
          out.heartbeatAtOnce = firstHeard;
        }
        return out;
      }
    }
    return out;
  }
}
