/**
 * The IO of one session, as its machine sees it (a SessionPort): the client side (the
 * WebSocket, client-link.ts) and the peer side (salt, keys, datagrams, peer-link.ts), wired.
 *
 * Control goes through the session statechart: authenticated heartbeats, CLOSEs, the WebSocket
 * closing and the token running out become SessionEvents, and the machine's BridgeCommands come
 * back here. Data does not: a client message is sealed and sent, and a peer DATA datagram is
 * opened and delivered, without the machine, because a statechart macrostep per message (about
 * 1 us each, measured) would cost more than the relay itself and would flood the inspector. The
 * machine decides when data may flow (`path.up` / `path.down`); until then messages wait.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { BridgeCommand, SessionEvent, SessionPort } from '../../machines/types.js';
import type { Endpoint } from '../../machines/endpoint.js';
import type { Clock, Timer } from '../clock.js';
import type { Channel } from './channel.js';
import type { HeartbeatWheel } from './heartbeat-wheel.js';
import type { PathTiming } from './path-timers.js';
import type { RelayLinks } from './relay-links.js';
import { ClientLink, type EndpointsSource, type LinkLimits } from './client-link.js';
import { newLinkStats, PeerLink, type LinkStats } from './peer-link.js';
import type { Switchboard } from './switchboard.js';
import type { InputPacer } from './input-pacer.js';

export { QUEUE_MAX_BYTES, QUEUE_MAX_MESSAGES, type LinkLimits } from './client-link.js';
export { EARLY_DATA_MAX_DATAGRAMS, type LinkDropCause, type LinkStats } from './peer-link.js';

export interface SessionLinkOptions {
  id: string;
  ws: WebSocket;
  /** The WebSocket's TCP socket: corked per burst of peer data (see burst-cork.ts). */
  socket: Duplex;
  psk: Buffer;
  maxPayload: number;
  switchboard: Switchboard<PeerLink>;
  log: Logger;
  clock: Clock;
  limits: LinkLimits;
  /** Why this session may not send to an endpoint (target policy + the token's targets), or null. */
  deny: (endpoint: Endpoint) => string | null;
  /** When the session's token expires (ms since the epoch), or null to let it outlive the token. */
  tokenExpiresAtMs: number | null;
  /** The server's one timer for established paths, and their timing. */
  wheel: HeartbeatWheel;
  timing: PathTiming;
  /** Each round trip measured on the established path (ms). */
  onRtt?: (rttMs: number) => void;
  /** This server's public endpoints, told to the client (servers with --stun). */
  endpoints?: EndpointsSource;
  /** The server's bindings at its relays (servers with --relay). */
  relays?: RelayLinks;
  /** The server's pacer of client input. */
  pacer?: InputPacer;
}

export class SessionLink implements SessionPort {
  readonly id: string;
  /** Both sides' counters, one object: the API and the metrics read it. */
  readonly stats: LinkStats = newLinkStats();
  readonly client: ClientLink;
  readonly peer: PeerLink;
  readonly #options: SessionLinkOptions;
  readonly #channel: Channel<PeerLink>;
  #emit: (event: SessionEvent) => void = () => {};
  #tokenTimer: Timer | null = null;
  #detached = false;

  constructor(options: SessionLinkOptions) {
    this.#options = options;
    this.id = options.id;
    const { switchboard, clock, log, limits } = options;
    this.#channel = switchboard.channelFor(options.psk);
    this.peer = new PeerLink({
      id: options.id,
      channel: this.#channel,
      sender: switchboard,
      log,
      deny: options.deny,
      udpOutPerS: limits.udpOutPerS,
      stats: this.stats,
      deliver: (payload) => this.client.deliver(payload),
      clock,
      wheel: options.wheel,
      timing: options.timing,
      ...(options.onRtt ? { onRtt: options.onRtt } : {}),
    });
    this.client = new ClientLink({
      id: options.id,
      ws: options.ws,
      socket: options.socket,
      maxPayload: options.maxPayload,
      limits,
      log,
      clock,
      stats: this.stats,
      toPeer: this.peer,
      onClosed: (code) => this.#emit({ type: 'ws.closed', code }),
      ...(options.endpoints ? { endpoints: options.endpoints } : {}),
      ...(options.pacer ? { pacer: options.pacer } : {}),
    });
  }

  deny(endpoint: Endpoint): string | null {
    return this.#options.deny(endpoint);
  }

  /** Connects the machine: from now on its channel's datagrams, the WebSocket and the token reach it. */
  attach(emit: (event: SessionEvent) => void): void {
    this.#emit = emit;
    this.peer.join(emit);
    const closedWith = this.client.closedWith;
    if (closedWith !== null) emit({ type: 'ws.closed', code: closedWith });
    const expires = this.#options.tokenExpiresAtMs;
    if (expires !== null) {
      const { clock } = this.#options;
      this.#tokenTimer = clock.after(expires - clock.wallMs(), () => this.#emit({ type: 'token.expired' }));
    }
  }

  /** Executes a command of the session machine. */
  handle(command: BridgeCommand): void {
    switch (command.type) {
      case 'status':
        return this.client.status(command.frame);
      case 'heartbeat':
        for (const to of command.to) this.peer.sendHeartbeat(to, command.echo);
        return;
      case 'probe':
        for (const to of command.to) this.peer.sendProbe(to);
        return;
      case 'relay.want':
        this.#options.relays?.want(this.#channel, this.peer, (endpoints) => this.#relayPeers(endpoints));
        return;
      case 'path.up':
        this.peer.openPath(command.peerSalt, command.endpoint, command.echo, command.rttMs);
        return this.client.flushQueue();
      case 'path.down':
        return this.peer.closePath();
      case 'close':
        this.peer.sendClose();
        return this.client.close(command.code, command.reason);
    }
  }

  /**
   * The peer servers' endpoints as a relay sees them: to the machine as learned endpoints, those
   * the target policy lets this session send to (a relay's word is no exception to it).
   */
  #relayPeers(endpoints: Endpoint[]): void {
    const allowed = endpoints.filter((e) => this.#options.deny(e) === null);
    if (allowed.length > 0) this.#emit({ type: 'relay.peers', endpoints: allowed });
  }

  /** The machine stopped: stop routing, drop listeners, close the WebSocket if nothing did. Once. */
  detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    this.#emit = () => {};
    this.#tokenTimer?.cancel();
    this.peer.dispose();
    this.#options.relays?.leave(this.#channel, this.peer);
    this.#options.switchboard.release(this.#channel);
    this.client.dispose();
    this.#options.log.info({ session: this.id, stats: this.stats }, 'session ended');
  }

  /** What this session holds in memory, by structure (bounded each). */
  footprint(): { peerKeys: number; early: number; queued: number; queuedBytes: number; wsBuffered: number } {
    return { ...this.peer.footprint(), ...this.client.footprint() };
  }

  /** The latest round trip of the established path (ms), or null. */
  get rttMs(): number | null {
    return this.peer.rttMs;
  }

  /** The session's current salt on the wire (hex). */
  get salt(): string {
    return this.peer.salt;
  }

  /** In the inspector: who this is, nothing of its insides. */
  toJSON(): { session: string } {
    return { session: this.id };
  }
}
