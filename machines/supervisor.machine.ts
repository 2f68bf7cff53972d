/**
 * The root actor of a server: binds the shared UDP socket actors (IPv4, then IPv6 on the same
 * port where possible), has one session actor started per accepted WebSocket (by its
 * `sessionHost`, each session in an actor system of its own: see session-host.ts), counts
 * sessions until they end, and drains them on shutdown.
 *
 * Pure statechart: `udpSocket` and `sessionHost` are handed in through `.provide({ actors })`.
 */
import { assign, emit, enqueueActions, fromCallback, sendTo, setup, spawnChild, stopChild, type EventObject } from 'xstate';
import {
  createSessionHost,
  SESSION_ACTOR_PREFIX,
  type SessionHostCommand,
  type SessionHostEvent,
  type SessionRequest,
} from './session-host.js';
import { sessionMachine } from './session.machine.js';
import type { Endpoint, Family, SessionTiming, UdpSocketEvent, UdpSocketInput } from './types.js';

export { SESSION_ACTOR_PREFIX };
/** Id of the session host child. */
export const SESSION_HOST_ID = 'sessions';

export interface SupervisorInput {
  udp: {
    port: number;
    bind4: string;
    bind6: string;
    /** false: IPv4 only (`--no-ipv6`). */
    ipv6: boolean;
    /** true: failing to bind IPv6 is fatal (the operator asked for a specific IPv6 address). */
    ipv6Required: boolean;
  };
  timing: SessionTiming;
  /** The relays' endpoints (`--relay`, resolved at start), for every session. */
  relays?: Endpoint[];
  /** How long shutdown waits for sessions to say goodbye (ms). */
  drainMs: number;
}

export interface SupervisorContext extends SupervisorInput {
  ports: Record<Family, number | null>;
  sessions: number;
  failure: string | null;
  /** The bind that failed (the start fails): which family, the system's error code. */
  failedBind: { family: Family; code: string } | null;
  /** Bound sockets that failed since, by family: why. */
  socketFailures: Partial<Record<Family, string>>;
}

export type SupervisorEvent =
  | UdpSocketEvent
  | SessionHostEvent
  /** An accepted WebSocket: start its session (the request is told what was started). */
  | { type: 'session.open'; request: SessionRequest }
  | { type: 'shutdown' };

export type SupervisorEmitted =
  | { type: 'udp.unavailable'; family: Family; message: string }
  | { type: 'udp.dead'; family: Family; code: string; message: string }
  | { type: 'session.failed'; actorId: string; error: unknown };

function families(context: SupervisorContext): Family[] {
  const out: Family[] = [];
  if (context.ports.ipv6 !== null) out.push('ipv6');
  if (context.ports.ipv4 !== null) out.push('ipv4');
  return out;
}

export const supervisorMachine = setup({
  types: {
    context: {} as SupervisorContext,
    input: {} as SupervisorInput,
    events: {} as SupervisorEvent,
    emitted: {} as SupervisorEmitted,
  },
  actors: {
    udpSocket: fromCallback<EventObject, UdpSocketInput>(() => {
      throw new Error('supervisor machine: provide a `udpSocket` actor');
    }),
    sessionHost: createSessionHost(sessionMachine),
  },
  delays: {
    drainTimeout: ({ context }) => context.drainMs,
  },
  guards: {
    isFamily: ({ event }, family: Family) => 'family' in event && event.family === family,
    wantsIpv6: ({ context }) => context.udp.ipv6,
    ipv6Required: ({ context }) => context.udp.ipv6Required,
    /** The operator left the UDP port to us, and IPv4's port is taken on IPv6: take any. */
    mayTakeAnyIpv6Port: ({ context, event }) =>
      context.udp.port === 0 && event.type === 'udp.failed' && event.code === 'EADDRINUSE',
    noSessions: ({ context }) => context.sessions === 0,
  },
  actions: {
    bindIpv4: enqueueActions(({ context, enqueue }) => {
      enqueue.spawnChild('udpSocket', {
        id: 'udp.ipv4',
        systemId: 'udp.ipv4',
        input: { family: 'ipv4', address: context.udp.bind4, port: context.udp.port },
      });
    }),
    bindIpv6: enqueueActions(({ context, enqueue }, params: { anyPort: boolean }) => {
      enqueue.spawnChild('udpSocket', {
        id: 'udp.ipv6',
        systemId: 'udp.ipv6',
        input: { family: 'ipv6', address: context.udp.bind6, port: params.anyPort ? 0 : context.ports.ipv4! },
      });
    }),
    recordPort: assign(({ context, event }) => {
      if (event.type !== 'udp.bound') return {};
      return { ports: { ...context.ports, [event.family]: event.port } };
    }),
    recordFailure: assign(({ event }) => ({
      failure: event.type === 'udp.failed' ? `UDP ${event.family} bind failed: ${event.code} ${event.message}` : 'failed',
      failedBind: event.type === 'udp.failed' ? { family: event.family, code: event.code } : null,
    })),
    warnIpv6Unavailable: emit(({ event }) => ({
      type: 'udp.unavailable' as const,
      family: 'ipv6' as const,
      message: event.type === 'udp.failed' ? `${event.code} ${event.message}` : 'unavailable',
    })),
    stopIpv6: stopChild('udp.ipv6'),
    recordSocketFailure: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'udp.error') return;
      enqueue.assign({ socketFailures: { ...context.socketFailures, [event.family]: `${event.code} ${event.message}` } });
      enqueue.emit({ type: 'udp.dead', family: event.family, code: event.code, message: event.message });
    }),
    startSessionHost: spawnChild('sessionHost', { id: SESSION_HOST_ID }),
    openSession: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'session.open') return;
      const command = {
        type: 'session.open',
        request: event.request,
        families: families(context),
        timing: context.timing,
        relays: context.relays ?? [],
      } satisfies SessionHostCommand;
      enqueue.sendTo(SESSION_HOST_ID, command);
      // Counted now (a refused one is reported ended), so a shutdown right after waits for it.
      enqueue.assign({ sessions: context.sessions + 1 });
    }),
    reapSession: enqueueActions(({ context, event, enqueue }) => {
      if (event.type === 'session.failed') {
        enqueue.emit({ type: 'session.failed', actorId: SESSION_ACTOR_PREFIX + event.id, error: event.error });
      }
      enqueue.assign({ sessions: Math.max(0, context.sessions - 1) });
    }),
    shutdownSessions: sendTo(SESSION_HOST_ID, { type: 'shutdown' } satisfies SessionHostCommand),
  },
}).createMachine({
  id: 'supervisor',
  description: 'Owns the UDP sockets and one session actor per WebSocket.',
  context: ({ input }) => ({ ...input, ports: { ipv4: null, ipv6: null }, sessions: 0, failure: null, failedBind: null, socketFailures: {} }),
  initial: 'binding_ipv4',
  on: {
    // A bound socket died, whatever the supervisor is doing: recorded (readiness says so), reported.
    'udp.error': { actions: 'recordSocketFailure' },
  },
  states: {
    binding_ipv4: {
      description: 'Binding the IPv4 socket (its failure is fatal).',
      entry: 'bindIpv4',
      on: {
        'udp.bound': [
          { guard: 'wantsIpv6', target: 'binding_ipv6', actions: 'recordPort' },
          { target: 'running', actions: 'recordPort' },
        ],
        'udp.failed': { target: 'failed', actions: 'recordFailure' },
        shutdown: 'stopped',
      },
    },
    binding_ipv6: {
      description: 'IPv6 on the same port number as IPv4.',
      entry: { type: 'bindIpv6', params: { anyPort: false } },
      on: {
        'udp.bound': { target: 'running', actions: 'recordPort' },
        'udp.failed': [
          { guard: 'mayTakeAnyIpv6Port', target: 'binding_ipv6_any_port', actions: 'stopIpv6' },
          { guard: 'ipv6Required', target: 'failed', actions: 'recordFailure' },
          { target: 'running', actions: ['stopIpv6', 'warnIpv6Unavailable'] },
        ],
        shutdown: 'stopped',
      },
    },
    binding_ipv6_any_port: {
      description: 'The IPv4 port number is taken on IPv6: any free IPv6 port.',
      entry: { type: 'bindIpv6', params: { anyPort: true } },
      on: {
        'udp.bound': { target: 'running', actions: 'recordPort' },
        'udp.failed': [
          { guard: 'ipv6Required', target: 'failed', actions: 'recordFailure' },
          { target: 'running', actions: ['stopIpv6', 'warnIpv6Unavailable'] },
        ],
        shutdown: 'stopped',
      },
    },
    running: {
      description: 'Accepting sessions.',
      entry: 'startSessionHost',
      on: {
        'session.open': { actions: 'openSession' },
        'session.ended': { actions: 'reapSession' },
        'session.failed': { actions: 'reapSession' },
        shutdown: 'draining',
      },
    },
    draining: {
      description: 'Shutting down: every session closes (CLOSED to the client, CLOSE to the peer).',
      entry: 'shutdownSessions',
      always: { guard: 'noSessions', target: 'stopped' },
      after: { drainTimeout: 'stopped' },
      on: {
        // The host refuses what arrives now (it was told to shut down) and reports it ended.
        'session.open': { actions: 'openSession' },
        'session.ended': { actions: 'reapSession' },
        'session.failed': { actions: 'reapSession' },
      },
    },
    stopped: { type: 'final', description: 'Every child stopped; sockets closed.' },
    failed: { type: 'final', description: 'A UDP socket could not be bound.' },
  },
  output: ({ context }) => ({ failure: context.failure }),
});
