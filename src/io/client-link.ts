/**
 * The client side of one session: its WebSocket. Binary messages in (checked against the
 * payload limit and the per-session rates, queued while the path is not up, then handed to the
 * peer side), peer data and status frames out (with backpressure: a client that reads too slowly
 * gets its data dropped and counted, and is told so once it reads again), keepalive pings.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import type { StatusFrame } from '../../machines/types.js';
import type { Clock } from '../clock.js';
import type { ClientErrorCode } from '../errors.js';
import { bucketOrNull, type TokenBucket } from '../limits/token-bucket.js';
import { corkForBurst } from './burst-cork.js';
import { ClientReports } from './client-reports.js';
import type { EndpointsFrame } from '../net/nat-mapping.js';
import type { InputPacer } from './input-pacer.js';
import type { LinkStats, SendResult } from './peer-link.js';

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

/** Where the client's messages go: the session's peer side. */
export interface ToPeer {
  /** True while a path is established (messages go out at once, else they wait). */
  readonly established: boolean;
  sendData(payload: Buffer): SendResult;
  /** The family of the path, for messages to people. */
  readonly pathFamily: string | null;
}

/** This server's public endpoints (stun-discovery.ts), for servers that ask STUN servers. */
export interface EndpointsSource {
  /** The current frame, or null before the first answers are in. */
  frame(): EndpointsFrame | null;
  /** Each new frame; returns the unsubscribe. */
  subscribe(listener: (frame: EndpointsFrame) => void): () => void;
}

export interface ClientLinkOptions {
  id: string;
  ws: WebSocket;
  /** The WebSocket's TCP socket: corked per burst of peer data (see burst-cork.ts). */
  socket: Duplex;
  maxPayload: number;
  limits: LinkLimits;
  log: Logger;
  clock: Clock;
  stats: LinkStats;
  toPeer: ToPeer;
  /** The WebSocket closed (by the client, or dropped), with its close code. */
  onClosed: (code: number) => void;
  /** Given: an `endpoints` frame after CONNECTED and again whenever it changes; absent: none. */
  endpoints?: EndpointsSource;
  /** The server's pacer of client input (input-pacer.ts); absent: every message at once. */
  pacer?: InputPacer;
}

type Rejection = Extract<ClientErrorCode, 'payload_too_large' | 'text_not_supported' | 'queue_full' | 'rate_limited' | 'not_delivered'>;

export class ClientLink {
  /** Set by the WebSocket ping sweep. */
  alive = true;
  readonly #options: ClientLinkOptions;
  readonly #ws: WebSocket;
  readonly #reports: ClientReports;
  readonly #msgs: TokenBucket | null;
  readonly #bytes: TokenBucket | null;
  #queue: Buffer[] = [];
  #queuedBytes = 0;
  #closed = false;
  #closeCode = 1006;
  #endpointsOff: (() => void) | null = null;
  /** Messages waiting for a later turn (the pacer said the loop was busy), in order; the socket is paused meanwhile. */
  #inbox: Array<{ data: RawData; isBinary: boolean }> | null = null;

  constructor(options: ClientLinkOptions) {
    this.#options = options;
    this.#ws = options.ws;
    this.#reports = new ClientReports(options.ws, options.clock);
    const { limits, maxPayload, clock } = options;
    this.#msgs = bucketOrNull(limits.clientMsgsPerS, clock.now());
    this.#bytes = bucketOrNull(limits.clientBytesPerS, clock.now(), Math.max(limits.clientBytesPerS, maxPayload));
    this.#ws.on('message', this.#onMessage);
    this.#ws.on('close', this.#onClose);
    this.#ws.on('pong', this.#onPong);
    this.#ws.on('error', this.#onError);
  }

  /** The WebSocket already closed (before the machine was there to hear it), and its code. */
  get closedWith(): number | null {
    return this.#closed ? this.#closeCode : null;
  }

  footprint(): { queued: number; queuedBytes: number; wsBuffered: number } {
    return { queued: this.#queue.length, queuedBytes: this.#queuedBytes, wsBuffered: this.#ws.bufferedAmount };
  }

  /** Peer data for the client, in order; dropped and counted while the client is backed up. */
  deliver(payload: Buffer): void {
    const { stats } = this.#options;
    stats.messagesIn++;
    if (this.#reports.backedUp()) {
      stats.drops.client_backpressure++;
      this.#reports.defer('client_backpressure');
      return;
    }
    stats.bytesIn += payload.length;
    corkForBurst(this.#options.socket);
    this.#ws.send(payload);
  }

  status(frame: StatusFrame): void {
    if (frame.status === 'CLOSED') this.#reportUndelivered();
    this.#options.log.info({ session: this.#options.id, status: frame.status, family: frame.family, peer: frame.peer, reason: frame.reason }, 'status');
    this.#reports.send(frame);
    if (frame.status === 'CONNECTED') this.#followEndpoints();
    if (frame.status === 'CLOSED') this.#unfollowEndpoints();
  }

  /** The endpoints frame now (once discovery has answers) and on every change, until CLOSED. */
  #followEndpoints(): void {
    const source = this.#options.endpoints;
    if (!source || this.#endpointsOff) return;
    const current = source.frame();
    if (current) this.#reports.send(current);
    this.#endpointsOff = source.subscribe((next) => this.#reports.send(next));
  }

  #unfollowEndpoints(): void {
    this.#endpointsOff?.();
    this.#endpointsOff = null;
  }

  /** The path is up: what waited goes out, in order. */
  flushQueue(): void {
    const queued = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    for (const payload of queued) this.#send(payload);
  }

  close(code: number, reason: string): void {
    if (this.#ws.readyState === this.#ws.OPEN || this.#ws.readyState === this.#ws.CONNECTING) this.#ws.close(code, reason);
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

  /** Drops listeners and what waits; closes the WebSocket (1011) if nothing else did. */
  dispose(): void {
    this.#ws.off('message', this.#onMessage);
    this.#ws.off('pong', this.#onPong);
    this.#unfollowEndpoints();
    this.#reports.dispose();
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#inbox = null;
    this.close(1011, 'internal_error');
  }

  #send(payload: Buffer): void {
    const { stats, toPeer, limits } = this.#options;
    const result = toPeer.sendData(payload);
    if (result === 'udp_ceiling') {
      this.#reject('rate_limited', `message not sent: over this session's ceiling of ${limits.udpOutPerS} datagrams/s`);
      return;
    }
    if (result === 'no_socket') {
      this.#reject('not_delivered', `message not sent: this server has no ${toPeer.pathFamily} socket`);
      return;
    }
    stats.messagesOut++;
    stats.bytesOut += payload.length;
  }

  #reject(code: Rejection, message: string): void {
    this.#options.stats.messagesRejected++;
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

  readonly #onMessage = (data: RawData, isBinary: boolean): void => {
    const { pacer, clock } = this.#options;
    const at = clock.now();
    if (pacer && (this.#inbox !== null || !pacer.fresh(at))) {
      this.#hold(pacer, data, isBinary);
      return;
    }
    this.#handle(data, isBinary, at);
  };

  /** Keeps a message for a later turn; the first one pauses the socket and asks the pacer for a turn. */
  #hold(pacer: InputPacer, data: RawData, isBinary: boolean): void {
    if (this.#inbox === null) {
      this.#inbox = [];
      this.#ws.pause();
      pacer.later(this.#drain);
    }
    this.#inbox.push({ data, isBinary });
  }

  /** The pacer's turn: handles held messages while it may; true once none is left (the socket reads again). */
  readonly #drain = (): boolean => {
    const inbox = this.#inbox;
    if (inbox === null) return true; // disposed meanwhile
    const { clock } = this.#options;
    const pacer = this.#options.pacer!;
    let done = 0;
    for (let at = clock.now(); done < inbox.length && pacer.fresh(at); at = clock.now()) {
      const { data, isBinary } = inbox[done]!;
      done++;
      this.#handle(data, isBinary, at);
      if (this.#inbox !== inbox) return true; // disposed by what it handled
    }
    inbox.splice(0, done);
    if (inbox.length > 0) return false;
    this.#inbox = null;
    if (!this.#closed) this.#ws.resume();
    return true;
  };

  /** One client message, read from the socket or from the inbox at `at` (clock ms). */
  #handle(data: RawData, isBinary: boolean, at: number): void {
    if (!isBinary) {
      this.#reject('text_not_supported', 'text frames are not relayed: send binary messages');
      return;
    }
    const payload = data as Buffer;
    const { maxPayload, limits, toPeer } = this.#options;
    if (payload.length > maxPayload) {
      this.#reject('payload_too_large', `message of ${payload.length} bytes is over the ${maxPayload}-byte limit`);
      return;
    }
    if (this.#msgs && !this.#msgs.take(1, at)) {
      this.#reject('rate_limited', `message not sent: over this session's limit of ${limits.clientMsgsPerS} messages/s`);
      return;
    }
    if (this.#bytes && !this.#bytes.take(payload.length, at)) {
      this.#reject('rate_limited', `message not sent: over this session's limit of ${limits.clientBytesPerS} bytes/s`);
      return;
    }
    if (toPeer.established) {
      this.#send(payload);
      return;
    }
    if (this.#queue.length >= QUEUE_MAX_MESSAGES || this.#queuedBytes + payload.length > QUEUE_MAX_BYTES) {
      this.#reject('queue_full', `not established yet and ${this.#queue.length} messages (${this.#queuedBytes} bytes) already wait: message not queued`);
      return;
    }
    this.#queue.push(payload);
    this.#queuedBytes += payload.length;
  }

  readonly #onClose = (code: number): void => {
    this.#closed = true;
    this.#closeCode = code;
    this.#options.onClosed(code);
  };

  readonly #onPong = (): void => {
    this.alive = true;
  };

  readonly #onError = (err: Error): void => {
    this.#options.log.warn({ session: this.#options.id, err: err.message }, 'websocket error');
  };
}
