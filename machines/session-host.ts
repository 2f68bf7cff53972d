/**
 * The `sessionHost` actor of the supervisor: starts one session actor per WebSocket, each the
 * root of its own actor system, reports when one ends, and relays shutdown to all of them.
 *
 * Why not `spawnChild` from the supervisor: XState copies a parent's `children` object on every
 * spawn and every stop, and scans every delayed event of an actor system whenever one of its
 * actors stops. With every session in the supervisor's system both grow with the number of
 * sessions, so bringing up n sessions costs O(n²): measured, 13 s of object copies alone for
 * 10,000 spawns, and 3 ms per actor stop with 20,000 timers pending. In a system of its own a
 * session's spawns, stops and timers cost the same whatever the number of sessions.
 *
 * Pure: XState only, no IO.
 */
import { createActor, fromCallback, type Actor, type InspectionEvent, type Observer } from 'xstate';
import type { sessionMachine } from './session.machine.js';
import type { SessionInput, SessionOutput } from './types.js';

/** Prefix of session actor ids: `session:<id>`. */
export const SESSION_ACTOR_PREFIX = 'session:';

export type SessionLogic = typeof sessionMachine;
export type SessionActor = Actor<SessionLogic>;

export type SessionHostCommand = ({ type: 'session.open' } & SessionInput) | { type: 'shutdown' };

export type SessionHostEvent =
  | { type: 'session.ended'; id: string; output: SessionOutput | undefined }
  | { type: 'session.failed'; id: string; error: unknown };

export interface SessionHostOptions {
  /** Live session actors by session id, kept up to date by the host (for the server and tests). */
  sessions?: Map<string, SessionActor>;
  /** Inspection of every session's actor system (the Stately inspector, `--inspect`). */
  inspect?: Observer<InspectionEvent>;
}

export function createSessionHost(logic: SessionLogic, options: SessionHostOptions = {}) {
  return fromCallback<SessionHostCommand>(({ sendBack, receive }) => {
    const sessions = options.sessions ?? new Map<string, SessionActor>();
    let stopped = false;
    receive((command) => {
      if (command.type === 'shutdown') {
        for (const actor of [...sessions.values()]) actor.send({ type: 'server.shutdown' });
        return;
      }
      const { type: _, ...input } = command;
      const actor = createActor(logic, { id: SESSION_ACTOR_PREFIX + input.id, input, ...(options.inspect ? { inspect: options.inspect } : {}) });
      sessions.set(input.id, actor);
      const ended = (event: SessionHostEvent) => {
        if (sessions.get(input.id) !== actor) return;
        sessions.delete(input.id);
        if (!stopped) sendBack(event);
      };
      actor.subscribe({
        complete: () => ended({ type: 'session.ended', id: input.id, output: actor.getSnapshot().output }),
        error: (error) => ended({ type: 'session.failed', id: input.id, error }),
      });
      actor.start();
    });
    return () => {
      stopped = true;
      const live = [...sessions.values()];
      sessions.clear();
      for (const actor of live) actor.stop();
    };
  });
}
