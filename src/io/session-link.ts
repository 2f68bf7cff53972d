/**
 * The IO of one session: its WebSocket, its keys and counters, and its datagrams.
 *
 * Control goes through the session statechart: authenticated heartbeats and CLOSEs become
 * SessionEvents, and the machine's BridgeCommands come back here. Data does not: a client
 * message is sealed and sent, and a peer DATA datagram is opened and delivered, right here,
 * because a statechart macrostep per message (about 1 us each, measured) would cost more than
 * the relay itself and would flood the inspector. The machine decides when data may flow
 * (`path.up` / `path.down`); until then client messages wait in a bounded queue.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import type { BridgeCommand, Echo, SessionEvent, StatusFrame } from '../../machines/types.js';
import { formatEndpoint, sameEndpoint, type Endpoint } from '../net/endpoint.js';
import { deriveChannelId, derivePacketKey, seal } from '../protocol/crypto.js';
import { decodeHeartbeat, encodeHeartbeat } from '../protocol/heartbeat.js';
import { encodeHeader, MAX_COUNTER, PacketType, SALT_BYTES, type PacketHeader } from '../protocol/packet.js';
import { bucketOrNull, type TokenBucket } from '../limits/token-bucket.js';
import type { PreauthGate } from '../limits/preauth-gate.js';
import { corkForBurst } from './burst-cork.js';
import { ClientReports } from './client-reports.js';
import { openChecked, PeerKeyring, type PeerKeys } from './peer-keyring.js';
import type { RoutedLink, Switchboard } from './switchboard.js';

/** Client messages held while the path is not established, at most (count). */
export const QUEUE_MAX_MESSAGES = 256;
/** ... and at most (bytes of payload). */
export const QUEUE_MAX_BYTES = 256 * 1024;
/**
 * DATA from a peer session that has been heard (an authenticated heartbeat) but not adopted yet
 * is held, at most this many datagrams, until the session adopts that peer. The two sides
 * establish a moment apart: the first side to establish may send before the other has.
 */
export const EARLY_DATA_MAX_DATAGRAMS = 32;
/** setTimeout's longest delay (ms); longer token lifetimes are waited out in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export type LinkDropCause =
  | 'auth_failed'
  | 'replay'
  | 'malformed'
  | 'unknown_peer'
  | 'early_overflow'
  | 'preauth_limited'
  | 'policy'
  | 'client_backpressure'
  | 'udp_ceiling'
  | 'own_packet'
  | 'no_socket';

export interface LinkStats {
  /** Authenticated datagrams received, and datagrams sent (heartbeats included). */
  datagramsIn: number;
  datagramsOut: number;
  /** Peer DATA authenticated (delivered or dropped for backpressure), and client messages sent as DATA. */
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  messagesRejected: number;
  drops: Record<LinkDropCause, number>;
}

interface Path {
  salt: string;
  endpoint: Endpoint;
  peer: PeerKeys;
}

/** Per-session limits (0 = off). */
export interface LinkLimits {
  clientMsgsPerS: number;
  clientBytesPerS: number;
  udpOutPerS: number;
}

export interface SessionLinkOptions {
  id: string;
  ws: WebSocket;
  /** The WebSocket's TCP socket: corked per burst of peer data (see burst-cork.ts). */
  socket: Duplex;
  psk: Buffer;
  maxPayload: number;
  switchboard: Switchboard<SessionLink>;
  log: Logger;
  limits: LinkLimits;
  preauth: PreauthGate;
  /** Why this session may not send to an endpoint (target policy + the token's targets), or null. */
  deny: (endpoint: Endpoint) => string | null;
  /** When the session's token expires (ms since the epoch), or null to let it outlive the token. */
  tokenExpiresAtMs: number | null;
}

const toHex = (latin1: string) => Buffer.from(latin1, 'latin1').toString('hex');
const fromHex = (hex: string) => Buffer.from(hex, 'hex').toString('latin1');

export class SessionLink implements RoutedLink {
  readonly id: string;
  readonly channel: string;
  readonly stats: LinkStats = {
    datagramsIn: 0,
    datagramsOut: 0,
    messagesIn: 0,
    messagesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    messagesRejected: 0,
    drops: {
      auth_failed: 0,
      replay: 0,
      malformed: 0,
      unknown_peer: 0,
      early_overflow: 0,
      preauth_limited: 0,
      policy: 0,
      client_backpressure: 0,
      udp_ceiling: 0,
      own_packet: 0,
      no_socket: 0,
    },
  };
  /** Set by the WebSocket ping sweep. */
  alive = true;

  readonly #ws: WebSocket;
  readonly #channelId: Buffer;
  readonly #salt = randomBytes(SALT_BYTES);
  readonly #saltKey: string;
  readonly #txKey: KeyObject;
  #txCounter = 0;
  readonly #peers: PeerKeyring;
  #path: Path | null = null;
  /** The last established path, kept after path.down so a closing session can still say CLOSE. */
  #lastPath: Path | null = null;
  #queue: Buffer[] = [];
  #queuedBytes = 0;
  #early: Array<{ header: PacketHeader; datagram: Buffer }> = [];
  readonly #options: SessionLinkOptions;
  readonly #reports: ClientReports;
  readonly #clientMsgs: TokenBucket | null;
  readonly #clientBytes: TokenBucket | null;
  readonly #udpOut: TokenBucket | null;
  #tokenTimer: NodeJS.Timeout | null = null;
  #emit: (event: SessionEvent) => void = () => {};
  #wsClosed = false;
  /**
   * The last salt converted to hex and back: a session hears one peer session almost always,
   * and the machine's events name peers in hex, so each heartbeat would convert it again.
   */
  #saltHex = { latin1: '', hex: '' };

  constructor(options: SessionLinkOptions) {
    this.#options = options;
    this.id = options.id;
    this.#ws = options.ws;
    this.#channelId = deriveChannelId(options.psk);
    this.channel = this.#channelId.toString('latin1');
    this.#saltKey = this.#salt.toString('latin1');
    this.#txKey = derivePacketKey(options.psk, this.#salt);
    this.#peers = new PeerKeyring(options.psk);
    this.#reports = new ClientReports(options.ws);
    const now = performance.now();
    this.#clientMsgs = bucketOrNull(options.limits.clientMsgsPerS, now);
    this.#clientBytes = bucketOrNull(options.limits.clientBytesPerS, now, Math.max(options.limits.clientBytesPerS, options.maxPayload));
    this.#udpOut = bucketOrNull(options.limits.udpOutPerS, now);
    this.#ws.on('message', this.#onMessage);
    this.#ws.on('close', this.#onClose);
    this.#ws.on('pong', this.#onPong);
    this.#ws.on('error', this.#onError);
  }

  /** Connects the link to its session machine. */
  attach(emit: (event: SessionEvent) => void): void {
    this.#emit = emit;
    if (this.#wsClosed) emit({ type: 'ws.closed', code: 1006 });
    if (this.#options.tokenExpiresAtMs !== null) this.#watchToken(this.#options.tokenExpiresAtMs);
  }

  /** Stops routing, drops listeners and closes the WebSocket if the machine did not. */
  dispose(): void {
    this.#options.switchboard.release(this);
    this.#options.log.info({ session: this.id, stats: this.stats }, 'session ended');
    this.#ws.off('message', this.#onMessage);
    this.#ws.off('pong', this.#onPong);
    this.#emit = () => {};
    if (this.#tokenTimer) clearTimeout(this.#tokenTimer);
    this.#reports.dispose();
    this.#queue = [];
    this.#queuedBytes = 0;
    this.stats.drops.unknown_peer += this.#early.length;
    this.#early = [];
    if (this.#ws.readyState === this.#ws.OPEN || this.#ws.readyState === this.#ws.CONNECTING) {
      this.#ws.close(1011, 'internal_error');
    }
  }

  /** What this session holds in memory, by structure (bounded each). */
  footprint(): { peerKeys: number; early: number; queued: number; queuedBytes: number; wsBuffered: number } {
    return {
      peerKeys: this.#peers.size,
      early: this.#early.length,
      queued: this.#queue.length,
      queuedBytes: this.#queuedBytes,
      wsBuffered: this.#ws.bufferedAmount,
    };
  }

  /** WebSocket keepalive, called every ping interval: a client that missed the last ping is dropped. */
  ping(): void {
    if (!this.alive) {
      this.#ws.terminate();
      return;
    }
    this.alive = false;
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.ping();
  }

  /** Executes a command of the session machine. */
  handle(command: BridgeCommand): void {
    switch (command.type) {
      case 'status':
        return this.#sendStatus(command.frame);
      case 'heartbeat':
        for (const to of command.to) this.#sendHeartbeat(to, command.echo);
        return;
      case 'path.up':
        return this.#openPath(this.#fromHex(command.peerSalt), command.endpoint);
      case 'path.down':
        this.#path = null;
        return;
      case 'close':
        return this.#close(command.code, command.reason);
    }
  }

  /** A datagram of this link's channel, from the switchboard. */
  receive(header: PacketHeader, datagram: Buffer, from: Endpoint, at: number): void {
    if (header.salt === this.#saltKey) {
      // Our own packet, come back (through this server's own port, or reflected by someone).
      this.stats.drops.own_packet++;
      return;
    }
    const path = this.#path;
    if (path && header.salt === path.salt && header.type !== PacketType.CLOSE) {
      // The established peer: authenticated cheaply by its salt and tag, no pre-auth budget.
      if (header.type === PacketType.DATA) this.#deliverData(path.peer, header, datagram);
      else this.#receiveHeartbeat(path.peer, header, datagram, from, at);
      return;
    }
    if (!this.#options.preauth.admit(from.address, at)) {
      this.stats.drops.preauth_limited++;
      return;
    }
    switch (header.type) {
      case PacketType.DATA:
        return this.#holdEarlyData(header, datagram);
      case PacketType.HEARTBEAT:
        return this.#receiveHeartbeat(this.#peers.lookup(header.salt), header, datagram, from, at);
      case PacketType.CLOSE:
        return this.#receiveClose(header, datagram);
    }
  }

  #toHex(latin1: string): string {
    if (this.#saltHex.latin1 !== latin1) this.#saltHex = { latin1, hex: toHex(latin1) };
    return this.#saltHex.hex;
  }

  #fromHex(hex: string): string {
    if (this.#saltHex.hex !== hex) this.#saltHex = { latin1: fromHex(hex), hex };
    return this.#saltHex.latin1;
  }

  #count(result: Buffer | 'replay' | 'auth_failed'): result is Buffer {
    if (typeof result === 'string') {
      this.stats.drops[result]++;
      return false;
    }
    this.stats.datagramsIn++;
    return true;
  }

  #receiveHeartbeat(peer: PeerKeys, header: PacketHeader, datagram: Buffer, from: Endpoint, at: number): void {
    const plaintext = openChecked(peer, header, datagram);
    if (!this.#count(plaintext)) return;
    this.#peers.remember(header.salt, peer, this.#path?.salt ?? null);
    const heartbeat = decodeHeartbeat(plaintext);
    if (typeof heartbeat === 'string') {
      this.stats.drops.malformed++;
      return;
    }
    if (this.#options.deny(from) !== null) {
      // An authenticated peer at a place this session may not send to: never learn it.
      this.stats.drops.policy++;
      return;
    }
    const echoesUs = heartbeat.echoSalt === this.#saltKey;
    this.#emit({
      type: 'peer.heartbeat',
      peerSalt: this.#toHex(header.salt),
      from,
      sentAt: heartbeat.sentAt,
      at,
      echoesUs,
      echoAgeMs: echoesUs ? at - heartbeat.echoSentAt : null,
      rttMs: echoesUs ? Math.max(0, at - heartbeat.echoSentAt - heartbeat.echoDelayMs) : null,
    });
  }

  #receiveClose(header: PacketHeader, datagram: Buffer): void {
    const peer = this.#peers.get(header.salt);
    if (!peer) {
      this.stats.drops.unknown_peer++;
      return;
    }
    if (this.#count(openChecked(peer, header, datagram))) this.#emit({ type: 'peer.close', peerSalt: this.#toHex(header.salt) });
  }

  #holdEarlyData(header: PacketHeader, datagram: Buffer): void {
    if (!this.#peers.has(header.salt)) {
      this.stats.drops.unknown_peer++;
      return;
    }
    if (this.#early.length >= EARLY_DATA_MAX_DATAGRAMS) {
      this.#early.shift();
      this.stats.drops.early_overflow++;
    }
    this.#early.push({ header, datagram });
  }

  #deliverData(peer: PeerKeys, header: PacketHeader, datagram: Buffer): void {
    const payload = openChecked(peer, header, datagram);
    if (!this.#count(payload)) return;
    this.stats.messagesIn++;
    if (this.#reports.backedUp()) {
      this.stats.drops.client_backpressure++;
      this.#reports.defer('client_backpressure');
      return;
    }
    this.stats.bytesIn += payload.length;
    corkForBurst(this.#options.socket);
    this.#ws.send(payload);
  }

  #openPath(salt: string, endpoint: Endpoint): void {
    // The machine adopts only peers whose heartbeat authenticated here: their keys are known.
    const peer = this.#peers.lookup(salt);
    this.#peers.remember(salt, peer, salt);
    const moved = this.#path !== null && !sameEndpoint(this.#path.endpoint, endpoint);
    this.#path = { salt, endpoint, peer };
    this.#lastPath = this.#path;
    if (moved) this.#options.log.info({ session: this.id, peer: formatEndpoint(endpoint) }, 'peer endpoint moved');
    const early = this.#early;
    this.#early = [];
    for (const held of early) {
      if (held.header.salt === salt) this.#deliverData(peer, held.header, held.datagram);
      else this.stats.drops.unknown_peer++;
    }
    const queued = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    for (const payload of queued) this.#sendData(payload);
  }

  /** Seals and sends one packet; why not, when it was not sent (counted). */
  #sendPacket(type: PacketType, to: Endpoint, plaintext: Buffer): 'sent' | 'udp_ceiling' | 'no_socket' {
    if (this.#udpOut && !this.#udpOut.take(1, performance.now())) {
      this.stats.drops.udp_ceiling++;
      return 'udp_ceiling';
    }
    // 2^53 packets under one key: unreachable in practice, and never a repeated nonce.
    if (this.#txCounter >= MAX_COUNTER) throw new Error('packet counter exhausted');
    const header = encodeHeader(type, this.#channelId, this.#salt, this.#txCounter++);
    if (!this.#options.switchboard.send(to, seal(this.#txKey, header, plaintext))) {
      this.stats.drops.no_socket++;
      return 'no_socket';
    }
    this.stats.datagramsOut++;
    return 'sent';
  }

  #sendData(payload: Buffer): void {
    const result = this.#sendPacket(PacketType.DATA, this.#path!.endpoint, payload);
    if (result === 'udp_ceiling') {
      this.#reject('rate_limited', `message not sent: over this session's ceiling of ${this.#options.limits.udpOutPerS} datagrams/s`);
      return;
    }
    if (result === 'no_socket') {
      this.#reject('not_delivered', `message not sent: this server has no ${this.#path!.endpoint.family} socket`);
      return;
    }
    this.stats.messagesOut++;
    this.stats.bytesOut += payload.length;
  }

  #sendHeartbeat(to: Endpoint, echo: Echo | null): void {
    if (this.#options.deny(to) !== null) {
      this.stats.drops.policy++;
      return;
    }
    const now = performance.now();
    const body = encodeHeartbeat({
      sentAt: now,
      echoSalt: echo ? this.#fromHex(echo.salt) : null,
      echoSentAt: echo?.sentAt ?? 0,
      echoDelayMs: echo ? Math.max(0, now - echo.at) : 0,
    });
    this.#sendPacket(PacketType.HEARTBEAT, to, body);
  }

  #sendStatus(frame: StatusFrame): void {
    if (frame.status === 'CLOSED') this.#reportUndelivered();
    this.#options.log.info(
      { session: this.id, status: frame.status, family: frame.family, peer: frame.peer, reason: frame.reason },
      'status',
    );
    this.#reports.send(frame);
  }

  #reject(code: 'payload_too_large' | 'text_not_supported' | 'queue_full' | 'rate_limited' | 'not_delivered', message: string): void {
    this.stats.messagesRejected++;
    this.#reports.error(code, message);
  }

  #reportUndelivered(): void {
    if (this.#queue.length === 0) return;
    this.#reports.send({
      type: 'error',
      code: 'not_delivered',
      message: `${this.#queue.length} queued message(s) were not sent: the session closed before the path was established`,
      count: this.#queue.length,
    });
    this.#queue = [];
    this.#queuedBytes = 0;
  }

  #close(code: number, reason: string): void {
    if (this.#lastPath) this.#sendPacket(PacketType.CLOSE, this.#lastPath.endpoint, Buffer.alloc(0));
    this.#path = null;
    this.#lastPath = null;
    if (this.#ws.readyState === this.#ws.OPEN || this.#ws.readyState === this.#ws.CONNECTING) {
      this.#ws.close(code, reason);
    }
  }

  /** Tells the machine when the token expires; long lifetimes are waited out in steps. */
  #watchToken(expiresAtMs: number): void {
    const remaining = expiresAtMs - Date.now();
    if (remaining <= 0) {
      this.#emit({ type: 'token.expired' });
      return;
    }
    this.#tokenTimer = setTimeout(() => this.#watchToken(expiresAtMs), Math.min(remaining, MAX_TIMER_MS));
    this.#tokenTimer.unref();
  }

  readonly #onMessage = (data: RawData, isBinary: boolean): void => {
    if (!isBinary) {
      this.#reject('text_not_supported', 'text frames are not relayed: send binary messages');
      return;
    }
    const payload = data as Buffer;
    const { maxPayload, limits } = this.#options;
    if (payload.length > maxPayload) {
      this.#reject('payload_too_large', `message of ${payload.length} bytes is over the ${maxPayload}-byte limit`);
      return;
    }
    const now = performance.now();
    if (this.#clientMsgs && !this.#clientMsgs.take(1, now)) {
      this.#reject('rate_limited', `message not sent: over this session's limit of ${limits.clientMsgsPerS} messages/s`);
      return;
    }
    if (this.#clientBytes && !this.#clientBytes.take(payload.length, now)) {
      this.#reject('rate_limited', `message not sent: over this session's limit of ${limits.clientBytesPerS} bytes/s`);
      return;
    }
    if (this.#path) {
      this.#sendData(payload);
      return;
    }
    if (this.#queue.length >= QUEUE_MAX_MESSAGES || this.#queuedBytes + payload.length > QUEUE_MAX_BYTES) {
      this.#reject(
        'queue_full',
        `not established yet and ${this.#queue.length} messages (${this.#queuedBytes} bytes) already wait: message not queued`,
      );
      return;
    }
    this.#queue.push(payload);
    this.#queuedBytes += payload.length;
  };

  readonly #onClose = (code: number): void => {
    this.#wsClosed = true;
    this.#emit({ type: 'ws.closed', code });
  };

  readonly #onPong = (): void => {
    this.alive = true;
  };

  readonly #onError = (err: Error): void => {
    this.#options.log.warn({ session: this.id, err: err.message }, 'websocket error');
  };
}
