/**
 * Drives the session machine alone: its IO actors swapped for test actors, time from a
 * SimulatedClock. Commands the machine sends to its bridge are recorded in order.
 */
import { createActor, fromCallback, fromPromise, SimulatedClock } from 'xstate';
import { sessionMachine } from '../../machines/session.machine.js';
import type {
  BridgeCommand,
  BridgeInput,
  Endpoint,
  PeerHeartbeatEvent,
  ResolvedTargets,
  SessionPort,
  SessionTiming,
  StatusFrame,
} from '../../machines/types.js';

/** The harness's bridge records the machine's commands itself: no IO behind it. */
export const NO_IO: SessionPort = { attach: () => {}, handle: () => {}, detach: () => {}, deny: () => null };

export const TEST_TIMING: SessionTiming = {
  punchMs: 200,
  heartbeatMs: 1000,
  peerTimeoutMs: 5000,
  fallbackMs: 3000,
  punchTimeoutMs: 60_000,
};

export const V6: Endpoint = { family: 'ipv6', address: '2001:db8::7', port: 40000 };
export const V4: Endpoint = { family: 'ipv4', address: '203.0.113.7', port: 40000 };

export interface HarnessOptions {
  resolved?: ResolvedTargets;
  timing?: Partial<SessionTiming>;
  families?: Array<'ipv4' | 'ipv6'>;
  /** The relays' endpoints (`--relay`); none by default. */
  relays?: Endpoint[];
}

export function startSession(options: HarnessOptions = {}) {
  const clock = new SimulatedClock();
  const commands: BridgeCommand[] = [];
  let bridgeStopped = false;
  const resolved = options.resolved ?? { candidates: [V6, V4], problems: [] };
  const machine = sessionMachine.provide({
    actors: {
      bridge: fromCallback<BridgeCommand, BridgeInput>(({ receive }) => {
        receive((command) => commands.push(command));
        return () => {
          bridgeStopped = true;
        };
      }),
      resolveTargets: fromPromise(async () => resolved),
    },
  });
  const actor = createActor(machine, {
    clock,
    input: {
      id: 'test-session',
      hosts: ['peer.example'],
      port: 40000,
      families: options.families ?? ['ipv6', 'ipv4'],
      timing: { ...TEST_TIMING, ...options.timing },
      io: NO_IO,
      ...(options.relays ? { relays: options.relays } : {}),
    },
  });
  actor.start();
  let now = 0;
  let peerClock = 0;
  return {
    actor,
    clock,
    commands,
    get bridgeStopped() {
      return bridgeStopped;
    },
    /** Advances simulated time, firing every timer at its own due time (periodic ones too). */
    advance(ms: number) {
      advanceClock(clock, ms);
      now = clock.now();
    },
    /** The status frames sent so far. */
    frames(): StatusFrame[] {
      return commands.flatMap((c) => (c.type === 'status' ? [c.frame] : []));
    },
    statuses(): string[] {
      return this.frames().map((f) => `${f.status}${f.family ? `/${f.family}` : ''}`);
    },
    heartbeats() {
      return commands.flatMap((c) => (c.type === 'heartbeat' ? [c] : []));
    },
    /** Simulates the bridge reporting an authenticated heartbeat from a peer session. */
    heartbeat(from: Endpoint, opts: { salt?: string; echoesUs?: boolean; echoAgeMs?: number; rttMs?: number } = {}) {
      peerClock += 1;
      const event: PeerHeartbeatEvent = {
        type: 'peer.heartbeat',
        peerSalt: opts.salt ?? 'aaaaaaaaaaaaaaaa',
        from,
        sentAt: peerClock,
        at: now,
        echoesUs: opts.echoesUs ?? true,
        echoAgeMs: (opts.echoesUs ?? true) ? (opts.echoAgeMs ?? 1) : null,
        rttMs: (opts.echoesUs ?? true) ? (opts.rttMs ?? 0.5) : null,
      };
      actor.send(event);
    },
    /** The IO's watchdog of the established path: the peer stopped proving it. */
    silent(heard: { salt: string; sentAt: number } | null = { salt: 'aaaaaaaaaaaaaaaa', sentAt: peerClock }) {
      actor.send({ type: 'peer.silent', heard: heard && { ...heard, at: now } });
    },
    state() {
      return actor.getSnapshot().value;
    },
  };
}

/** The pending timers of a SimulatedClock (a public field of its implementation). */
type ClockTimers = { timeouts: Map<number, { start: number; timeout: number }> };
const MAX_TIMER_FIRINGS = 1_000_000;

/**
 * `SimulatedClock.increment` fires each due timer once and starts rescheduled timers at the
 * new time; this steps from due time to due time so a periodic timer fires every period.
 */
export function advanceClock(clock: SimulatedClock, ms: number): void {
  const target = clock.now() + ms;
  for (let i = 0; i < MAX_TIMER_FIRINGS; i++) {
    let next = Infinity;
    for (const t of (clock as unknown as ClockTimers).timeouts.values()) next = Math.min(next, t.start + t.timeout);
    if (next > target) break;
    clock.set(Math.max(next, clock.now()));
  }
  clock.set(target);
}

/** Lets the resolver's promise settle. */
export const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
