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
import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import type { BridgeCommand, Echo, SessionEvent, StatusFrame } from '../../machines/types.js';
import type { ClientErrorCode, ErrorFrame } from '../errors.js';
import { formatEndpoint, sameEndpoint, type Endpoint } from '../net/endpoint.js';
import { deriveChannelId, derivePacketKey, open, seal } from '../protocol/crypto.js';
import { decodeHeartbeat, encodeHeartbeat } from '../protocol/heartbeat.js';
import { encodeHeader, MAX_COUNTER, PacketType, SALT_BYTES, type PacketHeader } from '../protocol/packet.js';
import { ReplayWindow } from '../protocol/replay-window.js';
import type { RoutedLink, Switchboard } from './switchboard.js';

/** Client messages held while the path is not established, at most (count). */
export const QUEUE_MAX_MESSAGES = 256;
/** ... and at most (bytes of payload). */
export const QUEUE_MAX_BYTES = 256 * 1024;
/** Peer sessions whose keys and replay windows are kept per session. */
export const MAX_PEER_KEYS = 8;
/**
 * DATA from a peer session that has been heard (an authenticated heartbeat) but not adopted yet
 * is held, at most this many datagrams, until the session adopts that peer. The two sides
 * establish a moment apart: the first side to establish may send before the other has.
 */
export const EARLY_DATA_MAX_DATAGRAMS = 32;
/** Above this many bytes waiting in the WebSocket's send buffer, peer data is dropped (and counted). */
export const WS_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

export type LinkDropCause =
  | 'auth_failed'
  | 'replay'
  | 'malformed'
  | 'unknown_peer'
  | 'early_overflow'
  | 'client_backpressure'
  | 'no_socket';

export interface LinkStats {
  datagramsIn: number;
  datagramsOut: number;
  bytesIn: number;
  bytesOut: number;
  messagesRejected: number;
  drops: Record<LinkDropCause, number>;
}

interface PeerKeys {
  key: KeyObject;
  window: ReplayWindow;
}

interface Path {
  salt: string;
  endpoint: Endpoint;
  peer: PeerKeys;
}

export interface SessionLinkOptions {
  id: string;
  ws: WebSocket;
  psk: Buffer;
  maxPayload: number;
  switchboard: Switchboard<SessionLink>;
  log: Logger;
}

const toHex = (latin1: string) => Buffer.from(latin1, 'latin1').toString('hex');
const fromHex = (hex: string) => Buffer.from(hex, 'hex').toString('latin1');

export class SessionLink implements RoutedLink {
  readonly id: string;
  readonly channel: string;
  readonly stats: LinkStats = {
    datagramsIn: 0,
    datagramsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    messagesRejected: 0,
    drops: { auth_failed: 0, replay: 0, malformed: 0, unknown_peer: 0, early_overflow: 0, client_backpressure: 0, no_socket: 0 },
  };
  /** Set by the WebSocket ping sweep. */
  alive = true;

  readonly #ws: WebSocket;
  readonly #psk: Buffer;
  readonly #channelId: Buffer;
  readonly #salt = randomBytes(SALT_BYTES);
  readonly #saltKey: string;
  readonly #txKey: KeyObject;
  #txCounter = 0;
  readonly #peers = new Map<string, PeerKeys>();
  #path: Path | null = null;
  /** The last established path, kept after path.down so a closing session can still say CLOSE. */
  #lastPath: Path | null = null;
  #queue: Buffer[] = [];
  #early: Array<{ header: PacketHeader; datagram: Buffer }> = [];
  #queuedBytes = 0;
  readonly #maxPayload: number;
  readonly #switchboard: Switchboard<SessionLink>;
  readonly #log: Logger;
  #emit: (event: SessionEvent) => void = () => {};
  #wsClosed = false;

  constructor(options: SessionLinkOptions) {
    this.id = options.id;
    this.#ws = options.ws;
    this.#psk = options.psk;
    this.#channelId = deriveChannelId(options.psk);
    this.channel = this.#channelId.toString('latin1');
    this.#saltKey = this.#salt.toString('latin1');
    this.#txKey = derivePacketKey(options.psk, this.#salt);
    this.#maxPayload = options.maxPayload;
    this.#switchboard = options.switchboard;
    this.#log = options.log;
    this.#ws.on('message', this.#onMessage);
    this.#ws.on('close', this.#onClose);
    this.#ws.on('pong', this.#onPong);
    this.#ws.on('error', this.#onError);
  }

  /** Connects the link to its session machine. */
  attach(emit: (event: SessionEvent) => void): void {
    this.#emit = emit;
    if (this.#wsClosed) emit({ type: 'ws.closed', code: 1006 });
  }

  /** Stops routing, drops listeners and closes the WebSocket if the machine did not. */
  dispose(): void {
    this.#switchboard.release(this);
    this.#log.info({ session: this.id, stats: this.stats }, 'session ended');
    this.#ws.off('message', this.#onMessage);
    this.#ws.off('pong', this.#onPong);
    this.#emit = () => {};
    this.#queue = [];
    this.#queuedBytes = 0;
    this.stats.drops.unknown_peer += this.#early.length;
    this.#early = [];
    if (this.#ws.readyState === this.#ws.OPEN || this.#ws.readyState === this.#ws.CONNECTING) {
      this.#ws.close(1011, 'internal_error');
    }
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
        return this.#openPath(fromHex(command.peerSalt), command.endpoint);
      case 'path.down':
        this.#path = null;
        return;
      case 'close':
        return this.#close(command.code, command.reason);
    }
  }

  /** A datagram of this link's channel, from the switchboard. */
  receive(header: PacketHeader, datagram: Buffer, from: Endpoint, at: number): void {
    if (header.salt === this.#saltKey) return; // our own packet, looped back through this server's port
    if (header.type === PacketType.DATA) return this.#receiveData(header, datagram);
    const peer = header.type === PacketType.HEARTBEAT ? this.#keysFor(header.salt) : this.#peers.get(header.salt);
    if (!peer) {
      this.stats.drops.unknown_peer++;
      return;
    }
    const plaintext = this.#openChecked(peer, header, datagram);
    if (!plaintext) return;
    if (header.type === PacketType.CLOSE) {
      this.#emit({ type: 'peer.close', peerSalt: toHex(header.salt) });
      return;
    }
    const heartbeat = decodeHeartbeat(plaintext);
    if (typeof heartbeat === 'string') {
      this.stats.drops.malformed++;
      return;
    }
    const echoesUs = heartbeat.echoSalt === this.#saltKey;
    this.#emit({
      type: 'peer.heartbeat',
      peerSalt: toHex(header.salt),
      from,
      sentAt: heartbeat.sentAt,
      at,
      echoesUs,
      echoAgeMs: echoesUs ? at - heartbeat.echoSentAt : null,
      rttMs: echoesUs ? Math.max(0, at - heartbeat.echoSentAt - heartbeat.echoDelayMs) : null,
    });
  }

  #receiveData(header: PacketHeader, datagram: Buffer): void {
    const path = this.#path;
    if (path && header.salt === path.salt) {
      this.#deliverData(path, header, datagram);
      return;
    }
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

  #deliverData(path: Path, header: PacketHeader, datagram: Buffer): void {
    const payload = this.#openChecked(path.peer, header, datagram);
    if (!payload) return;
    if (this.#ws.bufferedAmount > WS_MAX_BUFFERED_BYTES) {
      this.stats.drops.client_backpressure++;
      return;
    }
    this.stats.bytesIn += payload.length;
    this.#ws.send(payload);
  }

  /** Replay check, authentication, then the window moves: in that order. */
  #openChecked(peer: PeerKeys, header: PacketHeader, datagram: Buffer): Buffer | null {
    if (!peer.window.check(header.counter)) {
      this.stats.drops.replay++;
      return null;
    }
    const plaintext = open(peer.key, datagram);
    if (!plaintext) {
      this.stats.drops.auth_failed++;
      return null;
    }
    peer.window.accept(header.counter);
    this.stats.datagramsIn++;
    return plaintext;
  }

  /** Keys for a peer session, derived on first contact; the least recent (not the path's) is evicted. */
  #keysFor(salt: string): PeerKeys {
    const known = this.#peers.get(salt);
    if (known) {
      this.#peers.delete(salt);
      this.#peers.set(salt, known);
      return known;
    }
    const keys = { key: derivePacketKey(this.#psk, Buffer.from(salt, 'latin1')), window: new ReplayWindow() };
    this.#peers.set(salt, keys);
    if (this.#peers.size > MAX_PEER_KEYS) {
      for (const old of this.#peers.keys()) {
        if (old !== this.#path?.salt) {
          this.#peers.delete(old);
          break;
        }
      }
    }
    return keys;
  }

  #openPath(salt: string, endpoint: Endpoint): void {
    const peer = this.#peers.get(salt) ?? this.#keysFor(salt);
    const moved = this.#path !== null && !sameEndpoint(this.#path.endpoint, endpoint);
    this.#path = { salt, endpoint, peer };
    this.#lastPath = this.#path;
    const early = this.#early;
    this.#early = [];
    for (const held of early) {
      if (held.header.salt === salt) this.#deliverData(this.#path, held.header, held.datagram);
      else this.stats.drops.unknown_peer++;
    }
    if (moved) this.#log.info({ session: this.id, peer: formatEndpoint(endpoint) }, 'peer endpoint moved');
    const queued = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    for (const payload of queued) this.#sendData(payload);
  }

  #nextHeader(type: PacketType): Buffer | null {
    if (this.#txCounter >= MAX_COUNTER) return null;
    return encodeHeader(type, this.#channelId, this.#salt, this.#txCounter++);
  }

  #sendPacket(type: PacketType, to: Endpoint, plaintext: Buffer): void {
    const header = this.#nextHeader(type);
    if (!header) return;
    if (!this.#switchboard.send(to, seal(this.#txKey, header, plaintext))) {
      this.stats.drops.no_socket++;
      return;
    }
    this.stats.datagramsOut++;
  }

  #sendData(payload: Buffer): void {
    const path = this.#path!;
    this.stats.bytesOut += payload.length;
    this.#sendPacket(PacketType.DATA, path.endpoint, payload);
  }

  #sendHeartbeat(to: Endpoint, echo: Echo | null): void {
    const now = performance.now();
    const body = encodeHeartbeat({
      sentAt: now,
      echoSalt: echo ? fromHex(echo.salt) : null,
      echoSentAt: echo?.sentAt ?? 0,
      echoDelayMs: echo ? Math.max(0, now - echo.at) : 0,
    });
    this.#sendPacket(PacketType.HEARTBEAT, to, body);
  }

  #sendStatus(frame: StatusFrame): void {
    if (frame.status === 'CLOSED') this.#reportUndelivered();
    this.#log.info(
      { session: this.id, status: frame.status, family: frame.family, peer: frame.peer, reason: frame.reason },
      'status',
    );
    this.#sendJson(frame);
  }

  #sendError(code: ClientErrorCode, message: string): void {
    this.stats.messagesRejected++;
    const frame: ErrorFrame = { type: 'error', code, message };
    this.#sendJson(frame);
  }

  #sendJson(value: object): void {
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(JSON.stringify(value));
  }

  #reportUndelivered(): void {
    if (this.#queue.length === 0) return;
    this.#sendError(
      'not_delivered',
      `${this.#queue.length} queued message(s) were not sent: the session closed before the path was established`,
    );
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

  readonly #onMessage = (data: RawData, isBinary: boolean): void => {
    if (!isBinary) {
      this.#sendError('text_not_supported', 'text frames are not relayed: send binary messages');
      return;
    }
    const payload = data as Buffer;
    if (payload.length > this.#maxPayload) {
      this.#sendError('payload_too_large', `message of ${payload.length} bytes is over the ${this.#maxPayload}-byte limit`);
      return;
    }
    if (this.#path) {
      this.#sendData(payload);
      return;
    }
    if (this.#queue.length >= QUEUE_MAX_MESSAGES || this.#queuedBytes + payload.length > QUEUE_MAX_BYTES) {
      this.#sendError(
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
    this.#log.warn({ session: this.id, err: err.message }, 'websocket error');
  };
}
