/**
 * A server's life: the supervisor started and its UDP sockets bound (start), then, on the first
 * signal, `/readyz` says draining and new upgrades get 503 for `--drain-delay-ms` while open
 * sessions go on (drain), then every session closes (CLOSED to the client, CLOSE to the peer),
 * the sockets and the HTTP server close (stop).
 */
import { createActor, waitFor, type Actor, type AnyActorLogic, type InspectionEvent, type Observer } from 'xstate';
import { createSessionHost } from '../machines/session-host.js';
import { sessionMachine } from '../machines/session.machine.js';
import { supervisorMachine, type SupervisorInput } from '../machines/supervisor.machine.js';
import type { ResolvedTargets, ResolveInput } from '../machines/types.js';
import { fromPromise } from 'xstate';
import type { Clock } from './clock.js';
import { StartError } from './errors.js';
import { createBridgeActor } from './io/bridge.actor.js';
import { createResolveTargetsActor } from './io/resolve-targets.js';
import type { Switchboard } from './io/switchboard.js';
import { createUdpSocketActor } from './io/udp-socket.actor.js';
import type { Logger } from './log.js';
import type { Metrics } from './observe/metrics.js';

export type Supervisor = Actor<typeof supervisorMachine>;

export interface SupervisorDeps {
  input: SupervisorInput;
  clock: Clock;
  switchboard: Switchboard;
  log: Logger;
  metrics: Metrics;
  inspect?: Observer<InspectionEvent>;
  /** For tests: replaces the resolver (DNS and target policy). */
  resolveTargets?: (input: ResolveInput) => Promise<ResolvedTargets>;
}

/** The supervisor with its real IO, started, once its UDP sockets are bound (or a StartError). */
export async function startSupervisor(deps: SupervisorDeps): Promise<Supervisor> {
  const { log, metrics, inspect } = deps;
  const resolver: AnyActorLogic = deps.resolveTargets
    ? fromPromise<ResolvedTargets, ResolveInput>(({ input }) => deps.resolveTargets!(input))
    : createResolveTargetsActor(undefined, deps.clock);
  const sessions = sessionMachine.provide({ actors: { bridge: createBridgeActor(), resolveTargets: resolver as ReturnType<typeof createResolveTargetsActor> } });
  const machine = supervisorMachine.provide({
    actors: {
      udpSocket: createUdpSocketActor(deps.switchboard, log),
      sessionHost: createSessionHost(sessions, inspect ? { inspect } : {}),
    },
  });
  const supervisor = createActor(machine, { ...(inspect ? { inspect } : {}), input: deps.input });
  supervisor.on('udp.unavailable', (e) => log.warn({ family: e.family, err: e.message }, 'no IPv6 UDP socket: serving IPv4 only'));
  supervisor.on('udp.dead', (e) => {
    metrics.udpSocketError(e.family);
    log.error(
      { family: e.family, code: e.code, err: e.message },
      `the UDP ${e.family} socket failed and is closed: sessions on ${e.family} can no longer send or receive, and /readyz says udp_failed; restart the server`,
    );
  });
  supervisor.on('session.failed', (e) => log.error({ session: e.actorId, err: String(e.error) }, 'session failed'));
  supervisor.start();
  const bound = await waitFor(supervisor, (s) => s.matches('running') || s.status !== 'active');
  if (!bound.matches('running')) {
    supervisor.stop();
    const failed = bound.context.failedBind;
    throw new StartError(
      bound.context.failure ?? 'the UDP sockets could not be bound',
      failed ? { listener: 'udp', action: `UDP ${failed.family} bind`, port: deps.input.udp.port, errno: failed.code } : null,
    );
  }
  return supervisor;
}

/** What `/readyz` says. */
export type Readiness = 'ready' | 'starting' | 'draining' | 'udp_failed';

export function readinessOf(supervisor: Supervisor, draining: boolean): Readiness {
  const snapshot = supervisor.getSnapshot();
  if (draining) return 'draining';
  if (Object.keys(snapshot.context.socketFailures).length > 0) return 'udp_failed';
  if (snapshot.matches('running')) return 'ready';
  return snapshot.status === 'active' && !snapshot.matches('draining') ? 'starting' : 'draining';
}

export interface StopParts {
  supervisor: Supervisor;
  clock: Clock;
  log: Logger;
  drainDelayMs: number;
  shutdownGraceMs: number;
  /** Starts draining: readiness and upgrades say so from now on. */
  beginDraining: () => void;
  /** After the sessions ended: the rest (WebSockets, HTTP, shared counters), in order. */
  closeRest: () => Promise<void>;
}

const sleep = (clock: Clock, ms: number) => new Promise<void>((resolve) => clock.after(ms, resolve));

/** Drain, then stop: the whole graceful shutdown, within --drain-delay-ms + --shutdown-grace-ms. */
export async function drainAndStop(parts: StopParts): Promise<void> {
  parts.beginDraining();
  if (parts.drainDelayMs > 0) {
    parts.log.info({ delayMs: parts.drainDelayMs }, 'draining');
    await sleep(parts.clock, parts.drainDelayMs);
  }
  parts.supervisor.send({ type: 'shutdown' });
  await waitFor(parts.supervisor, (s) => s.status !== 'active', { timeout: parts.shutdownGraceMs + 1000 }).catch(() => {});
  parts.supervisor.stop();
  await parts.closeRest();
}
