/**
 * The `sessionHost` actor of the supervisor: starts one session actor per request, each the
 * root of its own actor system, hands the request the actor it started, reports when one ends,
 * and relays shutdown to all of them (refusing requests from then on).
 *
 * Why not `spawnChild` from the supervisor: XState copies a parent's `children` object on every
 * spawn and every stop, and scans every delayed event of an actor system whenever one of its
 * actors stops. With every session in the supervisor's system both grow with the number of
 * sessions, so bringing up n sessions costs O(n²): measured, 13 s of object copies alone for
 * 10,000 spawns, and 3 ms per actor stop with 20,000 timers pending. In a system of its own a
 * session's spawns, stops and timers cost the same whatever the number of sessions.
 *
 * Pure: XState only, no IO (the requests carry their IO, the session machine is handed in).
 */
import { createActor, fromCallback, type Actor, type InspectionEvent, type Observer } from 'xstate';
import type { sessionMachine } from './session.machine.js';
import type { Endpoint, Family, SessionOutput, SessionSpec, SessionTiming } from './types.js';

/** Prefix of session actor ids: `session:<id>`. */
export const SESSION_ACTOR_PREFIX = 'session:';

export type SessionLogic = typeof sessionMachine;
export type SessionActor = Actor<SessionLogic>;

/** A session the server asks for: what to start, and who to tell. */
export interface SessionRequest extends SessionSpec {
  /** The session's actor, created and about to start: the requester watches it from here on. */
  started(actor: SessionActor): void;
  /** Nothing was started: the supervisor is shutting down. */
  refused(): void;
}

export type SessionHostCommand =
  | { type: 'session.open'; request: SessionRequest; families: Family[]; timing: SessionTiming; relays?: Endpoint[] }
  | { type: 'shutdown' };

export type SessionHostEvent =
  /** A session ended (`output` undefined: it was refused, never started). */
  | { type: 'session.ended'; id: string; output: SessionOutput | undefined }
  | { type: 'session.failed'; id: string; error: unknown };

export interface SessionHostOptions {
  /** Inspection of every session's actor system (the Stately inspector, `--inspect`). */
  inspect?: Observer<InspectionEvent>;
}

export function createSessionHost(logic: SessionLogic, options: SessionHostOptions = {}) {
  return fromCallback<SessionHostCommand>(({ sendBack, receive }) => {
    const live = new Set<SessionActor>();
    let accepting = true;
    let stopped = false;
    receive((command) => {
      if (command.type === 'shutdown') {
        accepting = false;
        for (const actor of [...live]) actor.send({ type: 'server.shutdown' });
        return;
      }
      const { request, families, timing, relays = [] } = command;
      if (!accepting) {
        request.refused();
        if (!stopped) sendBack({ type: 'session.ended', id: request.id, output: undefined });
        return;
      }
      const { id, hosts, port, io } = request;
      const actor = createActor(logic, {
        id: SESSION_ACTOR_PREFIX + id,
        input: { id, hosts, port, io, families, timing, relays },
        ...(options.inspect ? { inspect: options.inspect } : {}),
      });
      live.add(actor);
      const ended = (event: SessionHostEvent) => {
        if (!live.delete(actor)) return;
        if (!stopped) sendBack(event);
      };
      actor.subscribe({
        complete: () => ended({ type: 'session.ended', id, output: actor.getSnapshot().output }),
        error: (error) => ended({ type: 'session.failed', id, error }),
      });
      request.started(actor);
      actor.start();
    });
    return () => {
      stopped = true;
      const all = [...live];
      live.clear();
      for (const actor of all) actor.stop();
    };
  });
}
