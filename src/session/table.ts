/**
 * The live sessions of a server: the server-wide slots (`--max-sessions`), one record per
 * accepted WebSocket (session.ts), and the WebSocket keepalive sweep (spread over its period:
 * ping-slices.ts). A record is made here, handed to the supervisor (whose session host starts
 * its actor), and leaves the table when it has released everything.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Clock, Timer } from '../clock.js';
import { Refusal } from '../errors.js';
import type { Admitted } from '../http/admission.js';
import type { SessionLink } from '../io/session-link.js';
import type { SessionRegistry } from '../observe/registry.js';
import { PingSlices, sliceSchedule } from './ping-slices.js';
import { Session } from './session.js';

/** Seconds a client is asked to wait when the server is full. */
const FULL_RETRY_S = 10;

export interface SessionTableDeps {
  maxSessions: number;
  wsPingMs: number;
  clock: Clock;
  registry: SessionRegistry;
  /** Whether new sessions are taken (not while starting, draining or stopped). */
  accepting: () => boolean;
  /** The session's IO, for an upgraded WebSocket. */
  makeLink: (ws: WebSocket, socket: Duplex, admitted: Admitted) => SessionLink;
  /** Hands a session to the supervisor, which starts it (or refuses it). */
  start: (session: Session) => void;
}

export class SessionTable {
  readonly #deps: SessionTableDeps;
  readonly #sessions = new Map<string, Session>();
  /** The sessions' links by id (kept with #sessions: set and deleted together, here only). */
  readonly links = new Map<string, SessionLink>();
  /** Sessions open or being admitted. */
  #reserved = 0;
  #pings: Timer | null = null;
  readonly #pingTickMs: number;
  readonly #pingSlices: PingSlices<Session>;

  constructor(deps: SessionTableDeps) {
    this.#deps = deps;
    const { count, tickMs } = sliceSchedule(deps.wsPingMs);
    this.#pingTickMs = tickMs;
    this.#pingSlices = new PingSlices(count);
  }

  /** A server-wide slot for a session being admitted: its release, or why not. */
  reserve(): (() => void) | Refusal {
    if (!this.#deps.accepting()) return new Refusal(503, 'unavailable', 'the server is shutting down', { 'Retry-After': '1' });
    if (this.#reserved >= this.#deps.maxSessions) {
      return new Refusal(503, 'server_full', `this server holds its maximum of ${this.#deps.maxSessions} sessions`, {
        'Retry-After': String(FULL_RETRY_S),
      });
    }
    this.#reserved++;
    let released = false;
    return () => {
      if (!released) this.#reserved--;
      released = true;
    };
  }

  /** An upgraded WebSocket becomes a session: recorded here, started by the supervisor. */
  open(ws: WebSocket, socket: Duplex, admitted: Admitted): Session {
    const session = new Session({
      admitted,
      link: this.#deps.makeLink(ws, socket, admitted),
      registry: this.#deps.registry,
      onEnd: (ended) => {
        this.#sessions.delete(ended.id);
        this.links.delete(ended.id);
        this.#pingSlices.remove(ended);
      },
    });
    this.#sessions.set(session.id, session);
    this.links.set(session.id, session.link);
    this.#pingSlices.add(session);
    // However the session ends, a closed WebSocket gives its slots back.
    ws.once('close', () => session.end());
    this.#deps.start(session);
    return session;
  }

  get(id: string): Session | undefined {
    return this.#sessions.get(id);
  }

  get size(): number {
    return this.#sessions.size;
  }

  /**
   * Pings every client once every --ws-ping-ms, a slice of them at a time (at most a second
   * apart); one that did not answer its previous ping is dropped.
   */
  startPings(): void {
    this.#pings ??= this.#deps.clock.every(this.#pingTickMs, () => {
      this.#pingSlices.visitNext((session) => session.link.client.ping());
    });
  }

  stopPings(): void {
    this.#pings?.cancel();
    this.#pings = null;
  }
}
