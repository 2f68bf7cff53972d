/**
 * The peer side of one session: its salt and keys, what it knows of the peer sessions it hears
 * (keyring and replay windows), its path, DATA held before the path is up, and sealing and
 * sending. Authenticated heartbeats and CLOSEs become events of the session machine; DATA goes
 * straight to the client side (no statechart work per datagram).
 *
 * The session's salt is its identity on the wire. It changes whenever the session loses an
 * established path (`path.down`): everything a peer sealed for the old salt can never be opened
 * again, so replay windows need to outlive nothing but the salt they were kept for, and a
 * recording of this session's traffic is worthless once its path is gone.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { Echo, PeerHeartbeatEvent, SessionEvent } from '../../machines/types.js';
import { formatEndpoint, sameEndpoint, type Endpoint } from '../../machines/endpoint.js';
import { seal, type KeySchedule } from '../protocol/crypto.js';
import { encodeHeartbeatEcho, type Heartbeat } from '../protocol/heartbeat.js';
import { headerPrefix, MAX_COUNTER, PacketType, SALT_BYTES, stampHeader, type PacketHeader } from '../protocol/packet.js';
import { bucketOrNull, type TokenBucket } from '../limits/token-bucket.js';
import type { Clock } from '../clock.js';
import type { Channel, ChannelMember } from './channel.js';
import type { HeartbeatWheel } from './heartbeat-wheel.js';
import { PathTimers, type PathTiming } from './path-timers.js';
import type { LinkStats } from './link-stats.js';
import { EarlyData } from './early-data.js';
import { PeerKeyring, type OpenResult, type PeerEntry } from './peer-keyring.js';

/** Earlier salts of a session still recognised as its own (packets of it in flight). */
export const PREVIOUS_SALTS_KEPT = 3;

export { EARLY_DATA_MAX_DATAGRAMS } from './early-data.js';
export { newLinkStats, type LinkDropCause, type LinkStats } from './link-stats.js';

/** Where packets leave: the switchboard. */
export interface PacketSender {
  send(to: Endpoint, pieces: Buffer[]): boolean;
}

export interface PeerLinkOptions {
  id: string;
  channel: Channel<PeerLink>;
  sender: PacketSender;
  log: Logger;
  /** Why this session may not send to an endpoint (target policy + the token's targets), or null. */
  deny: (endpoint: Endpoint) => string | null;
  /** Ceiling on datagrams sent per second (0 = off). */
  udpOutPerS: number;
  stats: LinkStats;
  /** Authenticated peer DATA, in order, for the client. */
  deliver: (payload: Buffer) => void;
  clock: Clock;
  /** The server's one timer for established paths (heartbeats, watchdogs). */
  wheel: HeartbeatWheel;
  timing: PathTiming;
  /** Each round trip a heartbeat of the path's peer measured (ms), for the metrics. */
  onRtt?: (rttMs: number) => void;
}

export type SendResult = 'sent' | 'udp_ceiling' | 'no_socket';

interface Path {
  salt: string;
  endpoint: Endpoint;
  entry: PeerEntry;
  /** Seals DATA and CLOSE from our salt to the peer's. */
  txKey: KeyObject;
  /** Our salt when the path came up (CLOSE is sealed under it, even after it changed). */
  txSalt: Buffer;
  /** The fixed part of our DATA headers on this path (packet.ts headerPrefix). */
  dataHeader: Buffer;
  /** The peer's latest heartbeat: what ours echo. Owned by the path (updated in place): copied before it leaves. */
  heard: Echo | null;
  /** The latest round trip measured (ms). */
  rttMs: number;
  timers: PathTimers;
  /** The watchdog said the peer went silent (the timers are off the wheel until the path moves). */
  silenced: boolean;
}

/** Our salt, as bytes and hex, the key our heartbeats are sealed with, and their fixed header part. */
interface Identity {
  salt: Buffer;
  hex: string;
  heartbeatKey: KeyObject;
  heartbeatHeader: Buffer;
}

export class PeerLink implements ChannelMember {
  readonly #options: PeerLinkOptions;
  readonly #keys: KeySchedule;
  readonly #channelId: Buffer;
  readonly #peers: PeerKeyring;
  readonly #udpOut: TokenBucket | null;
  #me: Identity;
  #ownSalts: string[];
  #counter = 0;
  #path: Path | null = null;
  /** The last established path, kept after path.down so a closing session can still say CLOSE. */
  #lastPath: Path | null = null;
  readonly #early: EarlyData;
  #joined = false;
  /** Sends events to the session machine (set once the machine is attached). */
  emit: (event: SessionEvent) => void = () => {};

  constructor(options: PeerLinkOptions) {
    this.#options = options;
    this.#keys = options.channel.keys;
    this.#channelId = Buffer.from(options.channel.id, 'hex');
    this.#peers = new PeerKeyring(this.#keys);
    this.#early = new EarlyData(options.stats);
    this.#udpOut = bucketOrNull(options.udpOutPerS, options.clock.now());
    this.#me = this.#newIdentity();
    this.#ownSalts = [this.#me.hex];
  }

  /** Starts taking the channel's datagrams, with the session machine listening. */
  join(emit: (event: SessionEvent) => void): void {
    this.emit = emit;
    if (!this.#joined) this.#options.channel.join(this);
    this.#joined = true;
  }

  /** Our current salt, hex. */
  get salt(): string {
    return this.#me.hex;
  }

  get ownSalts(): readonly string[] {
    return this.#ownSalts;
  }

  get established(): boolean {
    return this.#path !== null;
  }

  /** The latest round trip of the established path (ms), or null. */
  get rttMs(): number | null {
    return this.#path?.rttMs ?? null;
  }

  /** What this side holds in memory, by structure (bounded each). */
  footprint(): { peerKeys: number; early: number } {
    return { peerKeys: this.#peers.size, early: this.#early.size };
  }

  dispose(): void {
    if (this.#joined) this.#options.channel.leave(this);
    this.#joined = false;
    this.emit = () => {};
    this.#early.discard();
    if (this.#path) this.#options.wheel.remove(this.#path.timers);
    this.#path = null;
  }

  #newIdentity(): Identity {
    const salt = randomBytes(SALT_BYTES);
    // Named by the channel's cache: the very string its routing maps and the peer's echoes use.
    return {
      salt,
      hex: this.#options.channel.names.name(salt, 0, SALT_BYTES),
      heartbeatKey: this.#keys.heartbeatKey(salt),
      heartbeatHeader: headerPrefix(PacketType.HEARTBEAT, this.#channelId, salt),
    };
  }

  /** A new salt: what peers sealed for the old one can no longer be opened (see the file comment). */
  #rotate(): void {
    this.#me = this.#newIdentity();
    this.#ownSalts = [this.#me.hex, ...this.#ownSalts].slice(0, PREVIOUS_SALTS_KEPT + 1);
    this.#peers.forgetData();
    this.#early.discard();
    this.#options.channel.ownSaltsChanged(this);
  }

  // ---- from the channel ----

  dropped(cause: 'own_packet' | 'replay' | 'auth_failed'): void {
    this.#options.stats.drops[cause]++;
  }

  knows(salt: string): boolean {
    return this.#peers.has(salt);
  }

  heartbeatKeyOf(salt: string): KeyObject | undefined {
    return this.#peers.get(salt)?.heartbeatKey;
  }

  wantsHeartbeat(salt: string, counter: number): boolean {
    const entry = this.#peers.get(salt);
    return entry === undefined || entry.heartbeatWindow.check(counter);
  }

  takeHeartbeat(header: PacketHeader, key: KeyObject, heartbeat: Heartbeat, from: Endpoint, at: number): void {
    const path = this.#path;
    if (path !== null) {
      // The channel hands an established session its path's peer only.
      if (header.salt === path.salt) this.#pathHeartbeat(path, header, heartbeat, from, at);
      return;
    }
    const { stats, deny } = this.#options;
    if (deny(from) !== null) {
      // An authenticated peer at a place this session may not send to: never learn it.
      stats.drops.policy++;
      return;
    }
    // Kept only now that it authenticated, decoded and passed the policy: nothing else evicts keys.
    const entry = this.#peers.remember(header.salt, key);
    // The channel checked the window (wantsHeartbeat) before it opened the datagram.
    entry?.heartbeatWindow.mark(header.counter);
    stats.datagramsIn++;
    this.emit(this.#heartbeatEvent(header, heartbeat, from, at));
  }

  /**
   * A heartbeat of the established path's peer: this path's bookkeeping, once a second per
   * session, so no event, no policy check and nothing allocated but the echo unless the peer
   * moved (its endpoint passed the policy when adopted, and does with every heartbeat we send).
   */
  #pathHeartbeat(path: Path, header: PacketHeader, heartbeat: Heartbeat, from: Endpoint, at: number): void {
    const { stats, deny, timing } = this.#options;
    const moved = !sameEndpoint(path.endpoint, from);
    if (moved && deny(from) !== null) {
      stats.drops.policy++;
      return;
    }
    path.entry.heartbeatWindow.mark(header.counter);
    stats.datagramsIn++;
    // The path's own record, rewritten in place (no object per heartbeat); the machine gets copies.
    const heard = path.heard;
    if (heard === null) path.heard = { salt: header.salt, sentAt: heartbeat.sentAt, at };
    else {
      heard.salt = header.salt;
      heard.sentAt = heartbeat.sentAt;
      heard.at = at;
    }
    if (heartbeat.echoSalt !== this.#me.hex) return;
    const echoAgeMs = at - heartbeat.echoSentAt;
    if (echoAgeMs > timing.peerTimeoutMs) return;
    path.timers.proven(at);
    path.rttMs = Math.max(0, echoAgeMs - heartbeat.echoDelayMs);
    this.#options.onRtt?.(path.rttMs);
    // Only a move changes the session's state: the machine decides whether to follow it.
    if (moved) this.emit(this.#heartbeatEvent(header, heartbeat, from, at));
  }

  #heartbeatEvent(header: PacketHeader, heartbeat: Heartbeat, from: Endpoint, at: number): PeerHeartbeatEvent {
    const echoesUs = heartbeat.echoSalt === this.#me.hex;
    return {
      type: 'peer.heartbeat',
      peerSalt: header.salt,
      from,
      sentAt: heartbeat.sentAt,
      at,
      echoesUs,
      echoAgeMs: echoesUs ? at - heartbeat.echoSentAt : null,
      rttMs: echoesUs ? Math.max(0, at - heartbeat.echoSentAt - heartbeat.echoDelayMs) : null,
    };
  }

  takeData(header: PacketHeader, datagram: Buffer): OpenResult {
    const path = this.#path;
    const entry = path && path.salt === header.salt ? path.entry : this.#peers.get(header.salt);
    if (!entry) return 'auth_failed';
    const payload = this.#peers.openData(entry, this.#me.salt, header, datagram);
    if (typeof payload === 'string') return payload;
    const { stats } = this.#options;
    stats.datagramsIn++;
    if (path && path.entry === entry) {
      this.#options.deliver(payload);
    } else if (path) {
      // Another peer session while established: it can never be adopted under this salt.
      stats.drops.unknown_peer++;
    } else {
      this.#early.hold(header.salt, payload);
    }
    return payload;
  }

  takeClose(header: PacketHeader, datagram: Buffer): OpenResult {
    const entry = this.#peers.get(header.salt);
    if (!entry) return 'auth_failed';
    const result = this.#peers.openData(entry, this.#me.salt, header, datagram);
    if (typeof result === 'string') return result;
    this.#options.stats.datagramsIn++;
    this.emit({ type: 'peer.close', peerSalt: header.salt });
    return result;
  }

  // ---- from the machine (through the session link) ----

  /**
   * The machine adopted `salt` at `endpoint`, having heard `echo` (or the path moved there). A
   * heartbeat goes at once, before any queued data, so that a peer not established yet hears
   * the proof first; then one every heartbeat interval (path-timers.ts).
   */
  openPath(salt: string, endpoint: Endpoint, echo: Echo | null, rttMs: number): void {
    const { channel, log, clock, wheel, timing } = this.#options;
    if (this.#path?.salt === salt) {
      // The same peer session at a new endpoint (NAT rebinding, or between direct and a relay):
      // same keys, windows and timers.
      const path = this.#path;
      if (!sameEndpoint(path.endpoint, endpoint)) log.info({ session: this.#options.id, peer: formatEndpoint(endpoint) }, 'peer endpoint moved');
      path.endpoint = endpoint;
      if (path.silenced) {
        // The direct path went silent and the machine moved it to a relay: the watchdog starts
        // again from now, and the relay hears a heartbeat at once.
        path.silenced = false;
        path.timers = new PathTimers(timing, { beat: () => this.#beat(), silent: () => this.#silent() }, clock.now());
        this.#beat();
        wheel.add(path.timers, path.timers.nextDue);
      }
      return;
    }
    // The machine adopts only peers whose heartbeat authenticated here; the path always has an entry.
    const entry = this.#peers.get(salt) ?? this.#peers.remember(salt, this.#keys.heartbeatKey(Buffer.from(salt, 'hex')), true)!;
    entry.bound = true;
    if (this.#path) this.#leavePath();
    const timers = new PathTimers(timing, { beat: () => this.#beat(), silent: () => this.#silent() }, clock.now());
    this.#path = { salt, endpoint, entry, txKey: this.#keys.dataKey(this.#me.salt, entry.saltBytes), txSalt: this.#me.salt, dataHeader: headerPrefix(PacketType.DATA, this.#channelId, this.#me.salt), heard: echo && { ...echo }, rttMs, timers, silenced: false };
    this.#lastPath = this.#path;
    channel.pathUp(salt, this);
    this.#options.onRtt?.(rttMs);
    this.#beat();
    wheel.add(timers, timers.nextDue);
    this.#early.adopt(salt, this.#options.deliver);
  }

  /** The path is lost (or the session ends): a new salt from here on. */
  closePath(): void {
    if (!this.#path) return;
    this.#leavePath();
    this.#path = null;
    this.#rotate();
  }

  #leavePath(): void {
    const path = this.#path!;
    this.#options.channel.pathDown(path.salt, this);
    this.#options.wheel.remove(path.timers);
  }

  #beat(): void {
    const path = this.#path;
    if (path) this.sendHeartbeat(path.endpoint, path.heard);
  }

  /** The watchdog: the machine decides what silence means, and learns what to echo from here. */
  #silent(): void {
    const path = this.#path;
    if (!path) return;
    path.silenced = true;
    this.emit({ type: 'peer.silent', heard: path.heard && { ...path.heard } });
  }

  /** Relayed: a heartbeat to a direct place too, echoing what the path heard last (so the peer can prove it). */
  sendProbe(to: Endpoint): void {
    this.sendHeartbeat(to, this.#path?.heard ?? null);
  }

  sendHeartbeat(to: Endpoint, echo: Echo | null): void {
    const { deny, stats, clock } = this.#options;
    if (deny(to) !== null) {
      stats.drops.policy++;
      return;
    }
    const sentAt = clock.now();
    const body = echo
      ? encodeHeartbeatEcho(sentAt, this.#saltBytes(echo.salt), echo.sentAt, Math.max(0, sentAt - echo.at))
      : encodeHeartbeatEcho(sentAt, null, 0, 0);
    this.#send(to, this.#me.heartbeatKey, this.#me.heartbeatHeader, body);
  }

  /** A peer salt's bytes: kept for the path's peer and every peer we hold keys for. */
  #saltBytes(salt: string): Buffer {
    const path = this.#path;
    if (path !== null && path.salt === salt) return path.entry.saltBytes;
    return this.#peers.get(salt)?.saltBytes ?? Buffer.from(salt, 'hex');
  }

  /** Seals one client message as DATA to the path's peer. */
  sendData(payload: Buffer): SendResult {
    const path = this.#path!;
    return this.#send(path.endpoint, path.txKey, path.dataHeader, payload);
  }

  /** The endpoint's family the path is on, for messages. */
  get pathFamily(): string | null {
    return this.#path?.endpoint.family ?? null;
  }

  /** Tells the last path's peer that this session ended (sealed as that path was). */
  sendClose(): void {
    const last = this.#lastPath;
    this.#lastPath = null;
    if (last) this.#send(last.endpoint, last.txKey, headerPrefix(PacketType.CLOSE, this.#channelId, last.txSalt), Buffer.alloc(0));
  }

  /** Seals `plaintext` under `key` with the next counter stamped into `prefix` (packet.ts headerPrefix), and sends it. */
  #send(to: Endpoint, key: KeyObject, prefix: Buffer, plaintext: Buffer): SendResult {
    const { stats, sender, clock } = this.#options;
    if (this.#udpOut && !this.#udpOut.take(1, clock.now())) {
      stats.drops.udp_ceiling++;
      return 'udp_ceiling';
    }
    // One counter per session across all its keys: a (key, nonce) pair never repeats. 2^53
    // packets is out of reach; refuse rather than wrap.
    if (this.#counter >= MAX_COUNTER) throw new Error('packet counter exhausted');
    const header = stampHeader(prefix, this.#counter++);
    if (!sender.send(to, seal(key, header, plaintext))) {
      stats.drops.no_socket++;
      return 'no_socket';
    }
    stats.datagramsOut++;
    return 'sent';
  }
}
