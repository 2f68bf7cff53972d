/**
 * WebSocket upgrades, from the request to the 101: too many in progress, the admission checks
 * (admission.ts), shutting down meanwhile, the socket gone meanwhile, the handshake (ws). Every
 * refusal is an HTTP status with a JSON body, before the 101; an admitted and upgraded WebSocket
 * goes to the session table.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Verifier } from '../auth/verifier.js';
import { Refusal } from '../errors.js';
import type { RequestLimits } from '../limits/request-limits.js';
import type { SessionCounter } from '../limits/session-counter.js';
import type { TargetPolicy } from '../net/target-policy.js';
import { admit, type Admitted } from './admission.js';
import { refuseUpgrade } from './respond.js';

/** Upgrade requests being checked (token, limits) at once, at most; more get 503. */
export const MAX_PENDING_UPGRADES = 1024;
/** Messages above this close the WebSocket (1009); up to it, oversized ones get an error frame. */
export const WS_MIN_FRAME_LIMIT_BYTES = 64 * 1024;

export interface UpgradeDeps {
  maxPayload: number;
  maxSessionsPerSubject: number;
  verifier: Verifier;
  limits: RequestLimits;
  sessionCounter: SessionCounter;
  policy: TargetPolicy;
  /** A server-wide session slot (the session table's). */
  reserve: () => (() => void) | Refusal;
  /** True from the first shutdown signal on. */
  draining: () => boolean;
  clientOf: (req: IncomingMessage) => string;
  newId: () => string;
  onRefusal: (refusal: Refusal) => void;
  /** An admitted, upgraded WebSocket. */
  accept: (ws: WebSocket, socket: Duplex, admitted: Admitted) => void;
}

export interface Upgrades {
  handle(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void>;
  /** The WebSockets that are open (for shutdown). */
  readonly wss: WebSocketServer;
}

const shuttingDown = () => new Refusal(503, 'unavailable', 'the server is shutting down', { 'Retry-After': '1' });

export function createUpgrades(deps: UpgradeDeps): Upgrades {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: Math.max(deps.maxPayload * 2, WS_MIN_FRAME_LIMIT_BYTES),
    perMessageDeflate: false,
  });
  let pending = 0;
  const refuse = (socket: Duplex, refusal: Refusal) => {
    deps.onRefusal(refusal);
    refuseUpgrade(socket, refusal);
  };

  const check = async (req: IncomingMessage): Promise<Admitted | Refusal> => {
    pending++;
    try {
      return await admit(req, deps.clientOf(req), deps.newId(), {
        verifier: deps.verifier,
        limits: deps.limits,
        sessions: deps.sessionCounter,
        policy: deps.policy,
        maxSessionsPerSubject: deps.maxSessionsPerSubject,
        reserve: deps.reserve,
      });
    } finally {
      pending--;
    }
  };

  const handle = async (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (pending >= MAX_PENDING_UPGRADES) {
      refuseUpgrade(socket, new Refusal(503, 'unavailable', 'too many upgrades in progress', { 'Retry-After': '1' }));
      return;
    }
    const admitted = await check(req);
    if (admitted instanceof Refusal) return refuse(socket, admitted);
    if (socket.destroyed) return admitted.release();
    if (deps.draining()) {
      // Shutdown began while the token was being checked.
      admitted.release();
      return refuseUpgrade(socket, shuttingDown());
    }
    let upgraded = false;
    // ws answers a handshake it refuses itself and never calls back: give the slots back then.
    socket.once('close', () => {
      if (!upgraded) admitted.release();
    });
    wss.handleUpgrade(req, socket, head, (ws) => {
      upgraded = true;
      deps.accept(ws, socket, admitted);
    });
  };

  return { handle, wss };
}
