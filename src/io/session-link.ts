/**
 * The IO of one session: its WebSocket (this file) and its peer side (peer-link.ts).
 *
 * Control goes through the session statechart: authenticated heartbeats and CLOSEs become
 * SessionEvents, and the machine's BridgeCommands come back here. Data does not: a client
 * message is sealed and sent, and a peer DATA datagram is opened and delivered, without the
 * machine, because a statechart macrostep per message (about 1 us each, measured) would cost
 * more than the relay itself and would flood the inspector. The machine decides when data may
 * flow (`path.up` / `path.down`); until then client messages wait in a bounded queue.
 */
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import type { BridgeCommand, SessionEvent, StatusFrame } from '../../machines/types.js';
import type { Endpoint } from '../net/endpoint.js';
import { bucketOrNull, type TokenBucket } from '../limits/token-bucket.js';
import { corkForBurst } from './burst-cork.js';
import { ClientReports } from './client-reports.js';
import { newLinkStats, PeerLink, type LinkStats } from './peer-link.js';
import type { Channel } from './channel.js';
import type { Switchboard } from './switchboard.js';
import { setLongTimeout, type LongTimer } from '../timers.js';

export { EARLY_DATA_MAX_DATAGRAMS, type LinkDropCause, type LinkStats } from './peer-link.js';

/** Client messages held while the path is not established, at most (count). */
export const QUEUE_MAX_MESSAGES = 256;
/** ... and at most (bytes of payload). */
export const QUEUE_MAX_BYTES = 256 * 1024;

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
  switchboard: Switchboard<PeerLink>;
  log: Logger;
  limits: LinkLimits;
  /** Why this session may not send to an endpoint (target policy + the token's targets), or null. */
  deny: (endpoint: Endpoint) => string | null;
  /** When the session's token expires (ms since the epoch), or null to let it outlive the token. */
  tokenExpiresAtMs: number | null;
}

const now = () => performance.now();

export class SessionLink {
  readonly id: string;
  readonly stats: LinkStats = newLinkStats();
  /** Set by the WebSocket ping sweep. */
  alive = true;

  readonly #ws: WebSocket;
  readonly #peer: PeerLink;
  readonly #channel: Channel<PeerLink>;
  #queue: Buffer[] = [];
  #queuedBytes = 0;
  readonly #options: SessionLinkOptions;
  readonly #reports: ClientReports;
  readonly #clientMsgs: TokenBucket | null;
  readonly #clientBytes: TokenBucket | null;
  #tokenTimer: LongTimer | null = null;
  #emit: (event: SessionEvent) => void = () => {};
  #wsClosed = false;
  #disposed = false;

  constructor(options: SessionLinkOptions) {
    this.#options = options;
    this.id = options.id;
    this.#ws = options.ws;
    this.#reports = new ClientReports(options.ws);
    this.#channel = options.switchboard.channelFor(options.psk);
    this.#peer = new PeerLink({
      id: options.id,
      channel: this.#channel,
      sender: options.switchboard,
      log: options.log,
      deny: options.deny,
      udpOutPerS: options.limits.udpOutPerS,
      stats: this.stats,
      deliver: (payload) => this.#deliver(payload),
      now,
    });
    const start = now();
    this.#clientMsgs = bucketOrNull(options.limits.clientMsgsPerS, start);
    this.#clientBytes = bucketOrNull(options.limits.clientBytesPerS, start, Math.max(options.limits.clientBytesPerS, options.maxPayload));
    this.#ws.on('message', this.#onMessage);
    this.#ws.on('close', this.#onClose);
    this.#ws.on('pong', this.#onPong);
    this.#ws.on('error', this.#onError);
  }

  /** Connects the link to its session machine: from now on its channel's datagrams reach it. */
  attach(emit: (event: SessionEvent) => void): void {
    this.#emit = emit;
    this.#peer.join(emit);
    if (this.#wsClosed) emit({ type: 'ws.closed', code: 1006 });
    const expires = this.#options.tokenExpiresAtMs;
    if (expires !== null) this.#tokenTimer = setLongTimeout(() => this.#emit({ type: 'token.expired' }), expires - Date.now());
  }

  /** Stops routing, drops listeners and closes the WebSocket if the machine did not. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#peer.dispose();
    this.#options.switchboard.release(this.#channel);
    this.#options.log.info({ session: this.id, stats: this.stats }, 'session ended');
    this.#ws.off('message', this.#onMessage);
    this.#ws.off('pong', this.#onPong);
    this.#emit = () => {};
    this.#tokenTimer?.clear();
    this.#reports.dispose();
    this.#queue = [];
    this.#queuedBytes = 0;
    if (this.#ws.readyState === this.#ws.OPEN || this.#ws.readyState === this.#ws.CONNECTING) {
      this.#ws.close(1011, 'internal_error');
    }
  }

  /** What this session holds in memory, by structure (bounded each). */
  footprint(): { peerKeys: number; early: number; queued: number; queuedBytes: number; wsBuffered: number } {
    return {
      ...this.#peer.footprint(),
      queued: this.#queue.length,
      queuedBytes: this.#queuedBytes,
      wsBuffered: this.#ws.bufferedAmount,
    };
  }

  /** The session's current salt on the wire (hex). */
  get salt(): string {
    return this.#peer.salt;
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
        for (const to of command.to) this.#peer.sendHeartbeat(to, command.echo);
        return;
      case 'path.up':
        this.#peer.openPath(command.peerSalt, command.endpoint);
        return this.#flushQueue();
      case 'path.down':
        return this.#peer.closePath();
      case 'close':
        return this.#close(command.code, command.reason);
    }
  }

  #deliver(payload: Buffer): void {
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

  #flushQueue(): void {
    const queued = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    for (const payload of queued) this.#sendData(payload);
  }

  #sendData(payload: Buffer): void {
    const result = this.#peer.sendData(payload);
    if (result === 'udp_ceiling') {
      this.#reject('rate_limited', `message not sent: over this session's ceiling of ${this.#options.limits.udpOutPerS} datagrams/s`);
      return;
    }
    if (result === 'no_socket') {
      this.#reject('not_delivered', `message not sent: this server has no ${this.#peer.pathFamily} socket`);
      return;
    }
    this.stats.messagesOut++;
    this.stats.bytesOut += payload.length;
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
    this.#peer.sendClose();
    if (this.#ws.readyState === this.#ws.OPEN || this.#ws.readyState === this.#ws.CONNECTING) {
      this.#ws.close(code, reason);
    }
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
    const at = now();
    if (this.#clientMsgs && !this.#clientMsgs.take(1, at)) {
      this.#reject('rate_limited', `message not sent: over this session's limit of ${limits.clientMsgsPerS} messages/s`);
      return;
    }
    if (this.#clientBytes && !this.#clientBytes.take(payload.length, at)) {
      this.#reject('rate_limited', `message not sent: over this session's limit of ${limits.clientBytesPerS} bytes/s`);
      return;
    }
    if (this.#peer.established) {
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
