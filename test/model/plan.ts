/**
 * Path generation, the contract check in memory, and selection for replay.
 *
 * The session machine is traversed with `getShortestPaths` (fine abstraction: a path to every
 * abstract state, each extended by every event that can happen there, so self-loops and guarded
 * no-target transitions are taken too) and `getSimplePaths` (coarse abstraction: long journeys).
 * Every generated path is checked in memory against the contract oracle (contract.ts): where
 * the machine goes, and the status frames it sends. Replaying them all on real servers would take
 * minutes, so a weighted greedy set cover keeps the cheapest set of paths that still covers every
 * item the generated paths cover: every transition, every event variant in every state, every
 * kind of state (with its candidates and reason).
 */
import type { EventObject } from 'xstate';
import { getShortestPaths, getSimplePaths, type StatePath } from 'xstate/graph';
import { punchDelayMs, punchTargets, relayPunchTargets } from '../../machines/session.machine.js';
import type { PeerHeartbeatEvent } from '../../machines/types.js';
import {
  candidateFamilies,
  ENDPOINT_NAMES,
  eventLabel,
  eventsOf,
  leafOf,
  MODEL_INPUT,
  MODEL_ENDPOINTS,
  modelMachine,
  parseDelay,
  serializeCoarse,
  serializeFine,
  TIMING,
  traversedMachine,
  variantOf,
  type ModelEvent,
  type ModelSnapshot,
} from './session-model.js';
import { isDeepStrictEqual } from 'node:util';
import type { BridgeCommand } from '../../machines/types.js';
import { formatEndpoint } from '../../machines/endpoint.js';
import { Contract, type ExpectedFrame } from './contract.js';
import { transitionKey, transitionsTaken, type TransitionLike } from './transitions.js';

type Step = { taken: TransitionLike[]; nodes: Set<string>; sent: EventObject[] };

export type ModelPath = StatePath<ModelSnapshot, ModelEvent>;

export interface PlannedPath {
  origin: 'shortest' | 'shortest+1' | 'simple';
  path: ModelPath;
  /** Coverage items: `transition: ...`, `event: ...`, `state: ...`. */
  items: Set<string>;
  /** State node ids the path visits (microsteps included). */
  nodes: Set<string>;
  /** Estimated replay time (ms), or null when real time cannot follow the path. */
  costMs: number | null;
  /** The contract oracle after the path (kept for shortest paths, which get extended). */
  contract: Contract | null;
  /** The first step where the machine breaks the contract, or null. */
  violation: string | null;
}

export interface Plan {
  generated: { shortest: number; extended: number; simple: number; infeasible: number };
  /** Every item some generated path covers. */
  universe: Set<string>;
  selected: Array<PlannedPath & { costMs: number }>;
  /** Generated paths (all, replayable or not) on which the machine breaks the contract. */
  violations: Array<{ path: string; violation: string }>;
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
  const established = leaf.startsWith('udp_established');
  if (c.waitReason && !established) facts.push(`after ${c.waitReason}`);
  const punched =
    leaf === 'udp_waiting.relay'
      ? relayPunchTargets(c).length - c.relays.length
      : punchTargets(c, leaf.endsWith('ipv6') ? 'ipv6' : 'ipv4').length;
  if (!established && punched > c.candidates.length) facts.push('learned endpoints');
  return `${leaf} (${facts.join(', ')})`;
}

function serializeEvent(event: EventObject): string {
  return JSON.stringify(event);
}

interface StepFacts {
  items: string[];
  nodes: Set<string>;
}

function stepFacts(prev: ModelSnapshot, event: ModelEvent, next: ModelSnapshot, step: Step): StepFacts {
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
  let relayDue = Infinity;
  let watchdogDue = Infinity;
  for (let i = 1; i < path.steps.length; i++) {
    const prev = path.steps[i - 1]!.state;
    const { event, state: next } = path.steps[i]!;
    const delay = parseDelay(event.type);
    // Timers that leave the state: the step must come, and be checked, before they fire.
    const due = Math.min(
      prev.matches({ udp_waiting: 'ipv6' }) ? fallbackDue : Infinity,
      prev.matches({ udp_waiting: 'ipv6' }) || prev.matches({ udp_waiting: 'ipv4' }) ? relayDue : Infinity,
      prev.matches('udp_established') ? watchdogDue : Infinity,
    );
    switch (event.type === 'peer.silent' ? 'peerSilent' : delay?.delay) {
      case 'fallbackDelay':
        now = fallbackDue;
        break;
      case 'relayAfter':
        now = relayDue;
        break;
      case 'peerSilent':
        now = watchdogDue;
        break;
      case 'punchTimeout':
        now = waitingSince + TIMING.punchTimeoutMs;
        break;
      default:
        // A tick, or an event with a real cause; then the peer's observation of the next heartbeat.
        now += (delay ? (delay.delay === 'punchInterval' ? punchDelayMs(TIMING, prev.context.punches) : TIMING.heartbeatMs) : 5) + OBSERVE_MS(next);
        if (now > due - TIMER_MARGIN_MS) return null;
    }
    if (next.matches('udp_waiting') && !prev.matches('udp_waiting')) {
      waitingSince = now;
      relayDue = next.context.relays.length > 0 ? now + TIMING.relayAfterMs! : Infinity;
    }
    if (next.matches({ udp_waiting: 'ipv6' }) && !prev.matches({ udp_waiting: 'ipv6' })) {
      fallbackDue = next.context.candidates.some((c) => c.family === 'ipv4') ? now + TIMING.fallbackMs : Infinity;
    }
    // The IO's watchdog restarts when the path is established and on every fresh heartbeat of the peer.
    const fromPeer = event.type === 'peer.heartbeat' && prev.context.peer?.salt === (event as PeerHeartbeatEvent).peerSalt;
    // Moved to the relay when the direct path went silent: the watchdog starts again there.
    const toRelay = event.type === 'peer.silent' && next.matches('udp_established');
    if (next.matches('udp_established') && (!prev.matches('udp_established') || fromPeer || toRelay)) {
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

/** A status frame the machine sent its bridge, in the terms of the contract. */
function contractFrame(command: BridgeCommand): ExpectedFrame | null {
  if (command.type !== 'status') return null;
  const f = command.frame;
  const out: ExpectedFrame = { status: f.status };
  if (f.family) out.family = f.family;
  const name = (text: string) => ENDPOINT_NAMES.find((n) => formatEndpoint(MODEL_ENDPOINTS[n]) === text) ?? (text as never);
  if (f.peer) out.peer = name(f.peer);
  if (f.path) out.path = f.path;
  if (f.relay) out.relay = name(f.relay);
  if (f.reason) out.reason = f.reason;
  return out;
}

/** Moves `contract` by one step and says how the machine's step breaks it, if it does. */
function checkStep(contract: Contract, event: ModelEvent, next: ModelSnapshot, step: Step): string | null {
  const before = contract.frames.length;
  contract.step(event);
  if (leafOf(next) !== contract.leaf) return `${eventLabel(event)} leads to ${leafOf(next)}; the contract says ${contract.leaf}`;
  if (event.type === 'ws.closed') return null; // the client closed: it sees no more frames
  const frames = step.sent.map((c) => contractFrame(c as BridgeCommand)).filter((f) => f !== null);
  const expected = contract.frames.slice(before);
  if (!isDeepStrictEqual(frames, expected)) {
    return `${eventLabel(event)} sends ${JSON.stringify(frames)}; the contract says ${JSON.stringify(expected)}`;
  }
  return null;
}

/**
 * Items, nodes, cost and contract check of a path; an extension of `prefix` by one step reuses
 * what is known of the prefix.
 */
function plan(origin: PlannedPath['origin'], path: ModelPath, prefix?: { planned: PlannedPath; last: Step }): PlannedPath {
  const items = new Set<string>(prefix?.planned.items ?? [`state: ${stateClass(path.steps[0]!.state)}`]);
  const nodes = new Set<string>(prefix?.planned.nodes ?? path.steps[0]!.state._nodes.map((n) => n.id));
  const contract = prefix ? prefix.planned.contract!.clone() : new Contract();
  let violation = prefix?.planned.violation ?? null;
  for (let i = prefix ? path.steps.length - 1 : 1; i < path.steps.length; i++) {
    const prev = path.steps[i - 1]!.state;
    const { event, state: next } = path.steps[i]!;
    const step = prefix?.last ?? transitionsTaken<ModelSnapshot>(modelMachine, prev, event);
    const facts = stepFacts(prev, event, next, step);
    for (const item of facts.items) items.add(item);
    for (const n of facts.nodes) nodes.add(n);
    if (!violation) {
      const broken = checkStep(contract, event, next, step);
      if (broken) violation = `step ${i}: ${broken}`;
    }
  }
  return { origin, path, items, nodes, costMs: estimateCost(path), contract: origin === 'shortest' ? contract : null, violation };
}

/**
 * Weighted greedy set cover: most new items per estimated millisecond first. Paths with the same
 * items compete only by cost; scores only fall as items get covered, so a candidate whose
 * recomputed score still beats the next best stored one is the best (lazy greedy).
 */
function cover<P extends PlannedPath & { costMs: number }>(candidates: P[], universe: Set<string>): P[] {
  const cheapest = new Map<string, P>();
  for (const c of candidates) {
    const key = [...c.items].sort().join('\n');
    const known = cheapest.get(key);
    if (!known || c.costMs < known.costMs) cheapest.set(key, c);
  }
  const uncovered = new Set(universe);
  const gain = (c: P) => {
    let n = 0;
    for (const i of c.items) if (uncovered.has(i)) n++;
    return n / c.costMs;
  };
  // A binary max-heap of candidates by their (possibly stale) score.
  const heap = [...cheapest.values()].map((c) => ({ c, score: gain(c) }));
  const above = (i: number, j: number) => heap[i]!.score > heap[j]!.score;
  const swap = (i: number, j: number) => ([heap[i], heap[j]] = [heap[j]!, heap[i]!]);
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && above(l, m)) m = l;
      if (r < heap.length && above(r, m)) m = r;
      if (m === i) return;
      swap(i, m);
      i = m;
    }
  };
  for (let i = Math.floor(heap.length / 2); i >= 0; i--) down(i);
  const pop = () => {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      down(0);
    }
    return top;
  };
  const selected: P[] = [];
  while (uncovered.size > 0 && heap.length > 0) {
    const top = heap[0]!;
    top.score = gain(top.c);
    if (top.score <= 0) {
      pop();
      continue;
    }
    down(0);
    if (heap[0] !== top) continue; // a stale score was in the way: try the new top
    pop();
    selected.push(top.c);
    for (const item of top.c.items) uncovered.delete(item);
  }
  return selected;
}

export function planPaths(): Plan {
  const events = eventsOf as unknown as (s: ModelSnapshot) => ModelEvent[];
  const shortest = getShortestPaths(traversedMachine, {
    input: MODEL_INPUT,
    events: events as never,
    serializeState: serializeFine as never,
  }) as unknown as ModelPath[];
  const simple = getSimplePaths(traversedMachine, {
    input: MODEL_INPUT,
    events: ((s: ModelSnapshot) => eventsOf(s, { coarse: true })) as never,
    serializeState: serializeCoarse as never,
  }) as unknown as ModelPath[];

  const all: PlannedPath[] = [];
  let extended = 0;
  for (const generated of shortest) {
    const path = concretize(generated, serializeFine)!;
    const planned = plan('shortest', path);
    all.push(planned);
    for (const event of eventsOf(path.state)) {
      const last = transitionsTaken<ModelSnapshot>(modelMachine, path.state, event);
      serializeFine(last.next, event, path.state); // ages the new snapshot
      extended++;
      const longer = { state: last.next, steps: [...path.steps, { event, state: last.next }], weight: path.weight + 1 };
      all.push(plan('shortest+1', longer, { planned, last }));
    }
    planned.contract = null; // no longer needed
  }
  for (const generated of simple) {
    const path = concretize(generated, serializeCoarse);
    if (path) all.push(plan('simple', path));
  }

  const replayable = all.filter((p): p is PlannedPath & { costMs: number } => p.costMs !== null);
  const universe = new Set<string>();
  for (const c of replayable) for (const item of c.items) universe.add(item);
  const selected = cover(replayable, universe).sort((a, b) => b.costMs - a.costMs);
  const violations = all.filter((p) => p.violation).map((p) => ({ path: describePath(p.path), violation: p.violation! }));
  return {
    generated: { shortest: shortest.length, extended, simple: simple.length, infeasible: all.length - replayable.length },
    universe,
    selected,
    violations,
  };
}

/** `resolved dual -> heartbeat S1 from home6, fresh echo -> ...` */
export function describePath(path: ModelPath): string {
  return path.steps
    .slice(1)
    .map((s) => eventLabel(s.event))
    .join(' -> ');
}
