/**
 * Path generation and selection. The session machine is traversed with `getShortestPaths`
 * (fine abstraction: a path to every abstract state, each extended by every event that can happen
 * there, so self-loops and guarded no-target transitions are covered too) and `getSimplePaths`
 * (coarse abstraction: long journeys through the statechart). Replaying all of them would take
 * minutes, so a weighted greedy set cover keeps the cheapest set of paths that still covers
 * every item the generated paths cover: every transition, every event variant in every state,
 * every kind of state (with its candidates and reason).
 */
import type { EventObject } from 'xstate';
import { getShortestPaths, getSimplePaths, type StatePath } from 'xstate/graph';
import { punchTargets } from '../../machines/session.machine.js';
import type { PeerHeartbeatEvent } from '../../machines/types.js';
import {
  candidateFamilies,
  eventLabel,
  eventsOf,
  leafOf,
  MODEL_INPUT,
  modelMachine,
  parseDelay,
  serializeCoarse,
  serializeFine,
  TIMING,
  variantOf,
  type ModelEvent,
  type ModelSnapshot,
} from './session-model.js';
import { transitionKey, transitionsTaken, type TransitionLike } from './transitions.js';

export type ModelPath = StatePath<ModelSnapshot, ModelEvent>;

export interface PlannedPath {
  origin: 'shortest' | 'shortest+1' | 'simple';
  path: ModelPath;
  /** Coverage items: `transition: ...`, `event: ...`, `state: ...`. */
  items: Set<string>;
  /** State node ids the path visits (microsteps included). */
  nodes: Set<string>;
  /** Estimated replay time (ms). */
  costMs: number;
}

export interface Plan {
  generated: { shortest: number; extended: number; simple: number; infeasible: number };
  /** Every item some generated path covers. */
  universe: Set<string>;
  selected: PlannedPath[];
}

/** Fixed cost of one replay: a server, a peer, a WebSocket, the final checks (ms, estimate). */
const PATH_OVERHEAD_MS = 120;
/** A step must be over this long before a timer that would leave the state (ms). */
const TIMER_MARGIN_MS = 80;
/** Time to see the heartbeats of the state a step leads to (ms, estimate). */
const OBSERVE_MS = (s: ModelSnapshot) => (s.matches('udp_established') ? TIMING.heartbeatMs : TIMING.punchMs) + 5;

/** A readable class of a snapshot: leaf, candidate families, reason. */
export function stateClass(snapshot: ModelSnapshot): string {
  const c = snapshot.context;
  const leaf = leafOf(snapshot);
  if (leaf === 'closed') return `closed (${c.closeReason})`;
  if (leaf === 'connected') return 'connected';
  const facts = [`candidates ${candidateFamilies(snapshot).join('+')}`];
  if (c.waitReason && leaf !== 'udp_established') facts.push(`after ${c.waitReason}`);
  if (leaf !== 'udp_established' && punchTargets(c, leaf.endsWith('ipv6') ? 'ipv6' : 'ipv4').length > c.candidates.length) {
    facts.push('learned endpoints');
  }
  return `${leaf} (${facts.join(', ')})`;
}

function serializeEvent(event: EventObject): string {
  return JSON.stringify(event);
}

interface StepFacts {
  items: string[];
  nodes: Set<string>;
}

function stepFacts(
  prev: ModelSnapshot,
  event: ModelEvent,
  next: ModelSnapshot,
  step: { taken: TransitionLike[]; nodes: Set<string> } = transitionsTaken(modelMachine, prev, event),
): StepFacts {
  return {
    items: [
      ...step.taken.map((t) => `transition: ${transitionKey(t)}`),
      `event: ${variantOf(prev, event)}`,
      `state: ${stateClass(next)}`,
    ],
    nodes: step.nodes,
  };
}

/**
 * Estimated replay time of a path, or null when real time cannot follow it: a step that must
 * happen before a timer fires (the fallback in IPv6, the peer watchdog) would come too late.
 */
export function estimateCost(path: ModelPath): number | null {
  let now = 0;
  let waitingSince = 0;
  let fallbackDue = Infinity;
  let watchdogDue = Infinity;
  for (let i = 1; i < path.steps.length; i++) {
    const prev = path.steps[i - 1]!.state;
    const { event, state: next } = path.steps[i]!;
    const delay = parseDelay(event.type);
    // Timers that leave the state: the step must come, and be checked, before they fire.
    const due = Math.min(
      prev.matches({ udp_waiting: 'ipv6' }) ? fallbackDue : Infinity,
      prev.matches('udp_established') ? watchdogDue : Infinity,
    );
    switch (delay?.delay) {
      case 'fallbackDelay':
        now = fallbackDue;
        break;
      case 'peerTimeout':
        now = watchdogDue;
        break;
      case 'punchTimeout':
        now = waitingSince + TIMING.punchTimeoutMs;
        break;
      default:
        // A tick, or an event with a real cause; then the peer's observation of the next heartbeat.
        now += (delay ? (delay.delay === 'punchInterval' ? TIMING.punchMs : TIMING.heartbeatMs) : 5) + OBSERVE_MS(next);
        if (now > due - TIMER_MARGIN_MS) return null;
    }
    if (next.matches('udp_waiting') && !prev.matches('udp_waiting')) waitingSince = now;
    if (next.matches({ udp_waiting: 'ipv6' }) && !prev.matches({ udp_waiting: 'ipv6' })) {
      fallbackDue = next.context.candidates.some((c) => c.family === 'ipv4') ? now + TIMING.fallbackMs : Infinity;
    }
    // The watchdog restarts when the path is established and on every heartbeat of the peer.
    const fromPeer = event.type === 'peer.heartbeat' && prev.context.peer?.salt === (event as PeerHeartbeatEvent).peerSalt;
    if (next.matches('udp_established') && (!prev.matches('udp_established') || fromPeer)) {
      watchdogDue = now + TIMING.peerTimeoutMs;
    }
  }
  return now + PATH_OVERHEAD_MS;
}

/**
 * The traversal keeps one snapshot per abstract state, so the snapshots along a generated path
 * may come from different histories (their noise differs). Re-run the path's events on the real
 * machine from its initial snapshot: the replay needs the snapshots this very history makes.
 * Null when an event is not one that can happen there (possible for coarse simple paths).
 */
export function concretize(path: ModelPath, serialize: (s: ModelSnapshot) => string): ModelPath | null {
  let state = path.steps[0]!.state;
  const steps: ModelPath['steps'] = [path.steps[0]!];
  for (let i = 1; i < path.steps.length; i++) {
    const { event } = path.steps[i]!;
    const offered = eventsOf(state).some((e) => serializeEvent(e) === serializeEvent(event));
    if (!offered) return null;
    const { next } = transitionsTaken<ModelSnapshot>(modelMachine, state, event);
    serializeFine(next, event, state); // ages the new snapshot
    if (serialize === serializeFine && serializeFine(next) !== serializeFine(path.steps[i]!.state)) {
      throw new Error(`the abstraction is not a congruence at step ${i} of ${describePath(path)}`);
    }
    steps.push({ event, state: next });
    state = next;
  }
  return { state, steps, weight: path.weight };
}

/** Items, nodes and cost of a path; an extension of `prefix` by one step reuses what is known of it. */
function plan(
  origin: PlannedPath['origin'],
  path: ModelPath | null,
  prefix?: { planned: PlannedPath; last: { taken: TransitionLike[]; nodes: Set<string> } },
): PlannedPath | null {
  if (!path) return null;
  const costMs = estimateCost(path);
  if (costMs === null) return null;
  const items = new Set<string>(prefix?.planned.items ?? [`state: ${stateClass(path.steps[0]!.state)}`]);
  const nodes = new Set<string>(prefix?.planned.nodes ?? path.steps[0]!.state._nodes.map((n) => n.id));
  for (let i = prefix ? path.steps.length - 1 : 1; i < path.steps.length; i++) {
    const facts = stepFacts(path.steps[i - 1]!.state, path.steps[i]!.event, path.steps[i]!.state, prefix?.last);
    for (const item of facts.items) items.add(item);
    for (const n of facts.nodes) nodes.add(n);
  }
  return { origin, path, items, nodes, costMs };
}

/** Weighted greedy set cover: most new items per estimated millisecond first. */
function cover(candidates: PlannedPath[], universe: Set<string>): PlannedPath[] {
  const uncovered = new Set(universe);
  const selected: PlannedPath[] = [];
  while (uncovered.size > 0) {
    let best: PlannedPath | null = null;
    let bestScore = 0;
    for (const c of candidates) {
      let gain = 0;
      for (const item of c.items) if (uncovered.has(item)) gain++;
      const score = gain / c.costMs;
      if (score > bestScore) {
        best = c;
        bestScore = score;
      }
    }
    if (!best) break;
    selected.push(best);
    for (const item of best.items) uncovered.delete(item);
  }
  return selected;
}

export function planPaths(): Plan {
  const events = eventsOf as unknown as (s: ModelSnapshot) => ModelEvent[];
  const shortest = getShortestPaths(modelMachine, {
    input: MODEL_INPUT,
    events: events as never,
    serializeState: serializeFine as never,
  }) as unknown as ModelPath[];
  const simple = getSimplePaths(modelMachine, {
    input: MODEL_INPUT,
    events: ((s: ModelSnapshot) => eventsOf(s, { coarse: true })) as never,
    serializeState: serializeCoarse as never,
  }) as unknown as ModelPath[];

  const candidates: PlannedPath[] = [];
  let infeasible = 0;
  let extended = 0;
  const add = (p: PlannedPath | null) => {
    if (p) candidates.push(p);
    else infeasible++;
  };
  for (const generated of shortest) {
    const path = concretize(generated, serializeFine)!;
    const planned = plan('shortest', path);
    add(planned);
    for (const event of eventsOf(path.state)) {
      const last = transitionsTaken<ModelSnapshot>(modelMachine, path.state, event);
      serializeFine(last.next, event, path.state); // ages the new snapshot
      extended++;
      const longer = { state: last.next, steps: [...path.steps, { event, state: last.next }], weight: path.weight + 1 };
      add(planned ? plan('shortest+1', longer, { planned, last }) : null);
    }
  }
  for (const path of simple) add(plan('simple', concretize(path, serializeCoarse)));

  const universe = new Set<string>();
  for (const c of candidates) for (const item of c.items) universe.add(item);
  const selected = cover(candidates, universe).sort((a, b) => b.costMs - a.costMs);
  return { generated: { shortest: shortest.length, extended, simple: simple.length, infeasible }, universe, selected };
}

/** `resolved dual -> heartbeat S1 from home6, fresh echo -> ...` */
export function describePath(path: ModelPath): string {
  return path.steps
    .slice(1)
    .map((s) => eventLabel(s.event))
    .join(' -> ');
}
