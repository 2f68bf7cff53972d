/**
 * The contract of README.md ("Status frames", "Close codes", "Wire protocol") as an oracle,
 * written from the README and not from the machine: given what happened (a model event), what
 * must the WebSocket client see, and where must the session be?
 *
 * The replay checks the model's next state against this oracle (the machine keeps the contract)
 * and the real client's frames against it (the server keeps the contract).
 */
import type { CloseReason, Family, PeerHeartbeatEvent, WaitReason } from '../../machines/types.js';
import { endpointName, parseDelay, resolutionOf, TIMING, type EndpointName, type ModelEvent } from './session-model.js';

export type ContractLeaf = 'connected' | 'udp_waiting.ipv6' | 'udp_waiting.ipv4' | 'udp_established' | 'closed';

/** A status frame as the contract describes it; `peer` is a model endpoint, formatted by the replay. */
export interface ExpectedFrame {
  status: 'CONNECTED' | 'UDP_WAITING' | 'UDP_ESTABLISHED' | 'CLOSED';
  family?: Family;
  peer?: EndpointName;
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
  candidates: Family[] = [];
  readonly #heard = new Set<string>();
  /** "A peer session that said CLOSE is never adopted again." */
  readonly #closed = new Set<string>();
  #lostBecause: WaitReason | null = null;

  /** The family punched first: "IPv6 first, falling back to IPv4" (IPv4 when there is no IPv6 candidate). */
  /** An independent copy, to follow two continuations of one history. */
  clone(): Contract {
    const copy = new Contract();
    copy.leaf = this.leaf;
    copy.frames.splice(0, copy.frames.length, ...this.frames);
    copy.closeCode = this.closeCode;
    copy.peer = this.peer;
    copy.lastPath = this.lastPath;
    for (const s of this.sources) copy.sources.add(s);
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
      case 'peer.silent':
        // "no heartbeat from the peer that shows it still hears us for --peer-timeout-ms"
        if (this.leaf === 'udp_established') this.#lose('peer_timeout');
        return out;
      case 'peer.close': {
        // "A peer session that said CLOSE is never adopted again", whenever it says it.
        const { peerSalt } = event as { peerSalt: string };
        this.#closed.add(peerSalt);
        if (this.leaf === 'udp_established' && this.peer?.salt === peerSalt) this.#lose('peer_closed');
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
        if (this.leaf === 'udp_established') {
          if (this.peer?.salt === hb.peerSalt && this.peer.at !== from && fresh) {
            this.peer = { salt: hb.peerSalt, at: from };
            this.lastPath = from;
            this.frames.push({ status: 'UDP_ESTABLISHED', family: hb.from.family, peer: from });
            out.pathChanged = true;
          }
          return out;
        }
        const proves = fresh && !this.#closed.has(hb.peerSalt);
        if (proves) {
          this.leaf = 'udp_established';
          this.peer = { salt: hb.peerSalt, at: from };
          this.lastPath = from;
          this.#lostBecause = null;
          this.frames.push({ status: 'UDP_ESTABLISHED', family: hb.from.family, peer: from });
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
