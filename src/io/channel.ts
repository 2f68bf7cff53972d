/**
 * The sessions of one pre-shared key on this server, and what they share: the heartbeat keys of
 * the peer sessions they hear (derived once per salt, cached), and which of them owns which
 * salt (its own, or its path's peer). Every datagram of the channel is decided here once:
 * - a salt of one of our sessions that no other session of ours takes: our own packet come back;
 * - DATA or CLOSE from the peer of an established path: that session, no pre-auth budget;
 * - DATA or CLOSE from a peer session some session heard: the pre-auth budget, then that session;
 * - HEARTBEAT: the pre-auth budget unless it is an established path's peer, one open for the
 *   whole channel (heartbeats are sealed by their sender alone), then every session that wants it.
 * Drops decided here, before any session, are counted in the plane's drops.
 */
import type { KeyObject } from 'node:crypto';
import type { Endpoint } from '../../machines/endpoint.js';
import { KeySchedule, open } from '../protocol/crypto.js';
import { decodeHeartbeat, type Heartbeat } from '../protocol/heartbeat.js';
import { PacketType, type PacketHeader } from '../protocol/packet.js';
import type { PreauthGate } from '../limits/preauth-gate.js';
import type { OpenResult } from './peer-keyring.js';

/** Heartbeat keys of peer salts kept per channel, at most (the least recent goes first). */
export const HEARTBEAT_KEYS_CACHED = 256;

/** Datagrams a channel drops before they reach any session, by cause (part of the plane's drops). */
export interface ChannelDrops {
  preauth_limited: number;
  preauth_budget: number;
  auth_failed: number;
  replay: number;
  malformed: number;
  unknown_peer: number;
}

/** What a channel asks of a session's peer side. */
export interface ChannelMember {
  /** Salts this session sends with: its current one and a few recent ones. */
  readonly ownSalts: readonly string[];
  /** A datagram of this session's was dropped here, for this cause. */
  dropped(cause: 'own_packet' | 'replay' | 'auth_failed'): void;
  /** Has this session heard the peer session `salt` (it holds keys for it)? */
  knows(salt: string): boolean;
  /** The heartbeat key of a peer it holds (saves a derivation), or undefined. */
  heartbeatKeyOf(salt: string): KeyObject | undefined;
  /** Would it take a heartbeat of `salt` with this counter (not a replay for it)? */
  wantsHeartbeat(salt: string, counter: number): boolean;
  takeHeartbeat(header: PacketHeader, key: KeyObject, heartbeat: Heartbeat, from: Endpoint, at: number): void;
  /**
   * DATA from its path's peer (the fast path) or from a heard peer (held until adopted), and
   * CLOSE: opened and acted upon, or why not (the channel counts that).
   */
  takeData(header: PacketHeader, datagram: Buffer): OpenResult;
  takeClose(header: PacketHeader, datagram: Buffer): OpenResult;
}

export class Channel<Member extends ChannelMember = ChannelMember> {
  readonly #members: Member[] = [];
  /** Own salt -> the session that sends with it. */
  readonly #own = new Map<string, Member>();
  /** Peer salt -> the session whose established path that peer is. */
  readonly #paths = new Map<string, Member>();
  readonly #heartbeatKeys = new Map<string, KeyObject>();
  /** The keys of this channel's pre-shared key. */
  readonly keys: KeySchedule;

  constructor(
    readonly id: string,
    readonly psk: Buffer,
    private readonly drops: ChannelDrops,
    private readonly gate: PreauthGate,
  ) {
    this.keys = new KeySchedule(psk);
  }

  get size(): number {
    return this.#members.length;
  }

  join(member: Member): void {
    this.#members.push(member);
    this.ownSaltsChanged(member);
  }

  leave(member: Member): void {
    const at = this.#members.indexOf(member);
    if (at >= 0) this.#members.splice(at, 1);
    for (const [salt, m] of this.#own) if (m === member) this.#own.delete(salt);
    for (const [salt, m] of this.#paths) if (m === member) this.#paths.delete(salt);
  }

  /** A member picked a new salt (or joined): route its salts to it, and only its current ones. */
  ownSaltsChanged(member: Member): void {
    for (const [salt, m] of this.#own) if (m === member && !member.ownSalts.includes(salt)) this.#own.delete(salt);
    for (const salt of member.ownSalts) this.#own.set(salt, member);
  }

  pathUp(peerSalt: string, member: Member): void {
    this.#paths.set(peerSalt, member);
  }

  pathDown(peerSalt: string, member: Member): void {
    if (this.#paths.get(peerSalt) === member) this.#paths.delete(peerSalt);
  }

  receive(header: PacketHeader, datagram: Buffer, from: Endpoint, at: number): void {
    switch (header.type) {
      case PacketType.HEARTBEAT:
        return this.#heartbeat(header, datagram, from, at);
      case PacketType.DATA:
        return this.#bound(header, datagram, from, at, (m) => m.takeData(header, datagram));
      case PacketType.CLOSE:
        return this.#bound(header, datagram, from, at, (m) => m.takeClose(header, datagram));
    }
  }

  #admit(from: Endpoint, at: number): boolean {
    const verdict = this.gate.admit(from.family, from.address, at);
    if (verdict === 'ok') return true;
    this.drops[verdict]++;
    return false;
  }

  /** DATA and CLOSE: sealed for one session of ours, which must have heard the sender. */
  #bound(header: PacketHeader, datagram: Buffer, from: Endpoint, at: number, take: (m: Member) => OpenResult): void {
    const owner = this.#paths.get(header.salt);
    if (owner) {
      // The established peer: authenticated cheaply by its salt and tag, no pre-auth budget.
      const result = take(owner);
      if (typeof result === 'string') owner.dropped(result);
      return;
    }
    let heard: Member | Member[] | null = null;
    for (const m of this.#members) {
      if (!m.knows(header.salt)) continue;
      heard = heard === null ? m : Array.isArray(heard) ? [...heard, m] : [heard, m];
    }
    if (heard === null) {
      this.#nobodyWants(header.salt, 'unknown_peer');
      return;
    }
    if (!this.#admit(from, at)) return;
    if (!Array.isArray(heard)) {
      const result = take(heard);
      if (typeof result === 'string') heard.dropped(result);
      return;
    }
    // Several sessions of ours heard that peer session: the packet is sealed for one of them.
    let replayed = false;
    for (const m of heard) {
      const result = take(m);
      if (typeof result !== 'string') return;
      replayed ||= result === 'replay';
    }
    this.drops[replayed ? 'replay' : 'auth_failed']++;
  }

  #heartbeat(header: PacketHeader, datagram: Buffer, from: Endpoint, at: number): void {
    if (this.#members.length === 1 && this.#own.has(header.salt)) {
      this.#nobodyWants(header.salt, 'replay');
      return;
    }
    const owner = this.#paths.get(header.salt);
    if (!owner && !this.#admit(from, at)) return;
    // Replay check first (cheap), for every session: a replay for all of them costs no open.
    const sender = this.#own.get(header.salt);
    let wanting: Member | Member[] | null = null;
    for (const m of this.#members) {
      if (m === sender || !m.wantsHeartbeat(header.salt, header.counter)) continue;
      wanting = wanting === null ? m : Array.isArray(wanting) ? [...wanting, m] : [wanting, m];
    }
    if (wanting === null) {
      this.#nobodyWants(header.salt, 'replay');
      return;
    }
    const key = this.#keyOf(header.salt, owner);
    const plaintext = open(key, datagram);
    if (!plaintext) {
      this.drops.auth_failed++;
      return;
    }
    const heartbeat = decodeHeartbeat(plaintext);
    if (typeof heartbeat === 'string') {
      this.drops.malformed++;
      return;
    }
    if (!Array.isArray(wanting)) wanting.takeHeartbeat(header, key, heartbeat, from, at);
    else for (const m of wanting) m.takeHeartbeat(header, key, heartbeat, from, at);
  }

  /**
   * No session takes the datagram: our own packet come back (through this server's own port,
   * or reflected by someone), or `cause`.
   */
  #nobodyWants(salt: string, cause: 'unknown_peer' | 'replay'): void {
    const own = this.#own.get(salt);
    if (own) own.dropped('own_packet');
    else this.drops[cause]++;
  }

  /** The heartbeat key of a peer salt: from a session that holds it, the cache, or HKDF once. */
  #keyOf(salt: string, owner: Member | undefined): KeyObject {
    const held = owner?.heartbeatKeyOf(salt);
    if (held) return held;
    let key = this.#heartbeatKeys.get(salt);
    if (key) {
      this.#heartbeatKeys.delete(salt);
    } else {
      key = this.keys.heartbeatKey(Buffer.from(salt, 'hex'));
      if (this.#heartbeatKeys.size >= HEARTBEAT_KEYS_CACHED) this.#heartbeatKeys.delete(this.#heartbeatKeys.keys().next().value as string);
    }
    this.#heartbeatKeys.set(salt, key);
    return key;
  }
}
