/**
 * The sessions of one pre-shared key on this server, and what they share: the heartbeat keys of
 * the peer sessions they hear (derived once per salt, cached), and which of them owns which
 * salt (its own, or its path's peer). Every datagram of the channel is decided here once:
 * - a salt of one of our sessions that no other session of ours takes: our own packet come back;
 * - DATA or CLOSE from the peer of an established path: that session, no pre-auth budget;
 * - DATA or CLOSE from a peer session some session heard: the pre-auth budget, then that session;
 * - HEARTBEAT from an established path's peer: that session alone (and a waiting one of ours
 *   it echoes), no pre-auth budget;
 * - HEARTBEAT from another peer session: the pre-auth budget, one open for the whole channel
 *   (heartbeats are sealed by their sender alone), then every waiting session that wants it.
 *   An established session listens to its path's peer only, so a datagram costs the same
 *   whether a key has one session or ten thousand (a fleet sharing one pre-shared key).
 * Drops decided here, before any session, are counted in the plane's drops.
 */
import type { KeyObject } from 'node:crypto';
import type { Endpoint } from '../../machines/endpoint.js';
import { KeySchedule, open } from '../protocol/crypto.js';
import { decodeHeartbeat, type Heartbeat } from '../protocol/heartbeat.js';
import { freshHex, type HexNamer } from '../protocol/hex-names.js';
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
  /** Every session of the channel -> the own salts routed to it. */
  readonly #members = new Map<Member, readonly string[]>();
  /** Sessions without an established path: the ones that listen to any peer session. */
  readonly #waiting = new Set<Member>();
  /** Own salt -> the session that sends with it. */
  readonly #own = new Map<string, Member>();
  /**
   * Peer salt -> the sessions whose established path that peer session is (one, as a rule: a
   * peer session echoes one of ours at a time, but two of ours may both have adopted it while
   * it was deciding, until one of them hears no more fresh echoes), and back.
   */
  readonly #paths = new Map<string, Member[]>();
  readonly #pathOf = new Map<Member, string>();
  readonly #heartbeatKeys = new Map<string, KeyObject>();
  /** The keys of this channel's pre-shared key. */
  readonly keys: KeySchedule;

  constructor(
    readonly id: string,
    readonly psk: Buffer,
    private readonly drops: ChannelDrops,
    private readonly gate: PreauthGate,
    /** Where salts get their hex: the server's one cache (hex-names.ts), so routing keys are the same strings. */
    readonly names: HexNamer = freshHex,
  ) {
    this.keys = new KeySchedule(psk);
  }

  get size(): number {
    return this.#members.size;
  }

  /** A session joins (waiting). Every change below costs the same at any channel size. */
  join(member: Member): void {
    if (this.#members.has(member)) return;
    this.#members.set(member, []);
    this.#waiting.add(member);
    this.ownSaltsChanged(member);
  }

  leave(member: Member): void {
    const salts = this.#members.get(member);
    if (!salts) return;
    for (const salt of salts) if (this.#own.get(salt) === member) this.#own.delete(salt);
    const peerSalt = this.#pathOf.get(member);
    if (peerSalt !== undefined) this.pathDown(peerSalt, member);
    this.#members.delete(member);
    this.#waiting.delete(member);
  }

  /** A member picked a new salt (or joined): route its salts to it, and only its current ones. */
  ownSaltsChanged(member: Member): void {
    const before = this.#members.get(member);
    if (!before) return;
    const now = member.ownSalts;
    for (const salt of before) if (!now.includes(salt) && this.#own.get(salt) === member) this.#own.delete(salt);
    for (const salt of now) this.#own.set(salt, member);
    this.#members.set(member, [...now]);
  }

  pathUp(peerSalt: string, member: Member): void {
    const before = this.#pathOf.get(member);
    if (before !== undefined && before !== peerSalt) this.pathDown(before, member);
    const owners = this.#paths.get(peerSalt);
    if (!owners) this.#paths.set(peerSalt, [member]);
    else if (!owners.includes(member)) owners.push(member);
    this.#pathOf.set(member, peerSalt);
    this.#waiting.delete(member);
  }

  pathDown(peerSalt: string, member: Member): void {
    const owners = this.#paths.get(peerSalt);
    if (owners?.includes(member)) {
      if (owners.length === 1) this.#paths.delete(peerSalt);
      else owners.splice(owners.indexOf(member), 1);
    }
    if (this.#pathOf.get(member) !== peerSalt) return;
    this.#pathOf.delete(member);
    if (this.#members.has(member)) this.#waiting.add(member);
  }

  receive(header: PacketHeader, datagram: Buffer, from: Endpoint, at: number): void {
    switch (header.type) {
      case PacketType.HEARTBEAT:
        return this.#heartbeat(header, datagram, from, at);
      case PacketType.DATA:
      case PacketType.CLOSE:
        return this.#bound(header, datagram, from, at);
    }
  }

  #admit(from: Endpoint, at: number): boolean {
    const verdict = this.gate.admit(from.family, from.address, at);
    if (verdict === 'ok') return true;
    this.drops[verdict]++;
    return false;
  }

  /** DATA and CLOSE: sealed for one session of ours, which must have heard the sender. */
  #bound(header: PacketHeader, datagram: Buffer, from: Endpoint, at: number): void {
    const owners = this.#paths.get(header.salt);
    if (owners) {
      // The established peer: authenticated cheaply by its salt and tag, no pre-auth budget.
      if (owners.length === 1) {
        const result = take(owners[0]!, header, datagram);
        if (typeof result === 'string') owners[0]!.dropped(result);
      } else {
        this.#tryEach(owners, header, datagram);
      }
      return;
    }
    // DATA from a peer session that is not a path's peer can only be held by a waiting session
    // (an established one drops it); a CLOSE retires that peer session in any session of ours.
    let heard: Member[] | null = null;
    for (const m of header.type === PacketType.DATA ? this.#waiting : this.#members.keys()) {
      if (m.knows(header.salt)) (heard ??= []).push(m);
    }
    if (heard === null) {
      this.#nobodyWants(header.salt, 'unknown_peer');
      return;
    }
    if (!this.#admit(from, at)) return;
    if (heard.length === 1) {
      const result = take(heard[0]!, header, datagram);
      if (typeof result === 'string') heard[0]!.dropped(result);
      return;
    }
    this.#tryEach(heard, header, datagram);
  }

  /** Several sessions of ours heard that peer session: the packet is sealed for one of them. */
  #tryEach(members: Member[], header: PacketHeader, datagram: Buffer): void {
    let replayed = false;
    for (const m of members) {
      const result = take(m, header, datagram);
      if (typeof result !== 'string') return;
      replayed ||= result === 'replay';
    }
    this.drops[replayed ? 'replay' : 'auth_failed']++;
  }

  #heartbeat(header: PacketHeader, datagram: Buffer, from: Endpoint, at: number): void {
    const owners = this.#paths.get(header.salt);
    const sender = this.#own.get(header.salt);
    const waiting = this.#waiting.size - (sender && this.#waiting.has(sender) ? 1 : 0);
    if (!owners && waiting === 0) {
      // Our own heartbeat come back, or a peer session no session of ours listens to now: no
      // budget spent, no open.
      this.#nobodyWants(header.salt, 'unknown_peer');
      return;
    }
    // Replay check first (cheap): a replay for every session that would take it costs no open.
    let wanting: Member[] | null = null;
    for (const m of owners ?? this.#waiting) {
      if (m === sender || !m.wantsHeartbeat(header.salt, header.counter)) continue;
      (wanting ??= []).push(m);
    }
    if (owners) {
      // A path's peer: no budget, unless its owners do not want this one (a replay) and it can
      // only be for a waiting session the peer answers (below): then it pays like a stranger.
      if (wanting === null && (waiting === 0 || !this.#admit(from, at))) {
        if (waiting === 0) this.#nobodyWants(header.salt, 'replay');
        return;
      }
    } else {
      if (!this.#admit(from, at)) return;
      if (wanting === null) {
        this.#nobodyWants(header.salt, 'replay');
        return;
      }
    }
    const key = this.#keyOf(header.salt, owners?.[0]);
    const plaintext = open(key, datagram);
    if (!plaintext) {
      this.drops.auth_failed++;
      return;
    }
    const heartbeat = decodeHeartbeat(plaintext, this.names);
    if (typeof heartbeat === 'string') {
      this.drops.malformed++;
      return;
    }
    if (owners && heartbeat.echoSalt !== null) {
      // A peer session already on a path of ours may be answering another session of ours that
      // is still waiting (it answered both while it decided): that session hears it too.
      const echoed = this.#own.get(heartbeat.echoSalt);
      if (echoed && echoed !== sender && this.#waiting.has(echoed) && echoed.wantsHeartbeat(header.salt, header.counter)) (wanting ??= []).push(echoed);
    }
    if (wanting === null) {
      this.drops.replay++;
      return;
    }
    for (const m of wanting) m.takeHeartbeat(header, key, heartbeat, from, at);
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

/** DATA or CLOSE to one session (a function, not a closure per datagram). */
function take(member: ChannelMember, header: PacketHeader, datagram: Buffer): OpenResult {
  return header.type === PacketType.DATA ? member.takeData(header, datagram) : member.takeClose(header, datagram);
}
