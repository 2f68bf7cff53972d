/**
 * Statechart diagrams generated from machine definitions: this file is their model, walked from a
 * machine (mermaid.ts and dot.ts print it, layout.ts decides what both draw). Only `npm run
 * visualize` and the tests use these files; the server never does (they are not in dist/).
 *
 * Pure: a machine in, text out. `describeMachine` walks the state nodes once (states, `on`,
 * `after`, `always`, invoke `onDone`/`onError`, initial and final states, parallel regions) into a
 * small model; `toMermaid` and `toDot` print that model. Same machine, same bytes: everything
 * follows document order and nothing depends on time or the environment.
 *
 * Notation, the same in both outputs:
 * - an edge is labelled with its event, `after <delay>` for a delayed transition, `always` for an
 *   eventless one, `done(<actor>)` / `error(<actor>)` for an invoked actor, then `[guard]`;
 * - a transition that changes no state (no target, or an atomic state's own name without
 *   `reenter`) is listed inside its state as `event [guard] / action, ...`; a loop edge re-enters;
 * - transitions declared on a compound state that stay inside it (the machine's own `on`, for one)
 *   or re-enter an ancestor start from a dashed "any state" box inside that state;
 * - a transition that re-enters one of its own ancestors lands on that ancestor's initial state.
 *
 * `xstate/graph`'s `toDirectedGraph` is not used: it drops `always` transitions and labels delayed
 * ones with raw `xstate.after.*` ids.
 */
import type { AnyStateMachine, AnyStateNode, AnyTransitionDefinition } from 'xstate';

export type StateKind = 'atomic' | 'compound' | 'parallel' | 'final' | 'history';

export interface DiagramState {
  /** XState's unique state node id, e.g. `session.udp_waiting.ipv6`. */
  id: string;
  key: string;
  /** Keys from the root, empty for the root. */
  path: string[];
  kind: StateKind;
  /** Only for `history` states. */
  history: 'shallow' | 'deep' | null;
  description: string | null;
  /** Ids of the states a compound state starts in. */
  initial: string[];
  /** Child states in document order. */
  children: DiagramState[];
  /** Transitions without a target, handled in this state: `event [guard] / action, ...`. */
  internal: string[];
}

export interface DiagramTransition {
  /** Id of the state that declares the transition. */
  source: string;
  /** Id of one target state (a transition with several targets gives several entries). */
  target: string;
  label: string;
}

export interface Diagram {
  /** The machine's id. */
  id: string;
  description: string | null;
  root: DiagramState;
  /** In document order of their source states, then declaration order. */
  transitions: DiagramTransition[];
}

/** Walks a machine's state nodes into a {@link Diagram}. */
export function describeMachine(machine: AnyStateMachine): Diagram {
  const transitions: DiagramTransition[] = [];

  const visit = (node: AnyStateNode): DiagramState => {
    const internal: string[] = [];
    const add = (t: AnyTransitionDefinition, event: string): void => {
      const label = t.guard === undefined ? event : `${event} [${guardLabel(t.guard)}]`;
      // Targetless, or an atomic state targeting itself without `reenter`: nothing is exited.
      const targets = t.target ?? [];
      const stays =
        targets.length === 0 || (targets.length === 1 && targets[0] === node && node.type === 'atomic' && !t.reenter);
      if (stays) {
        const actions = t.actions.map(actionLabel);
        internal.push(actions.length > 0 ? `${label} / ${actions.join(', ')}` : label);
        return;
      }
      for (const target of targets) transitions.push({ source: node.id, target: target.id, label });
    };
    for (const [eventType, list] of node.transitions) {
      const event = eventLabel(node, eventType);
      for (const t of list) add(t, event);
    }
    for (const t of node.always ?? []) add(t, 'always');

    const kind = node.type;
    return {
      id: node.id,
      key: node.key,
      path: [...node.path],
      kind,
      history: kind === 'history' ? (node.history === 'deep' ? 'deep' : 'shallow') : null,
      description: node.description ?? null,
      initial: kind === 'compound' ? node.initial.target.map((t) => t.id) : [],
      children: childNodes(node).map(visit),
      internal,
    };
  };

  const root = visit(machine.root);
  return { id: machine.id, description: root.description, root, transitions };
}

function childNodes(node: AnyStateNode): AnyStateNode[] {
  // Object key order puts integer-like keys first; `order` is the document order.
  return (Object.values(node.states) as AnyStateNode[]).sort((a, b) => a.order - b.order);
}

function eventLabel(node: AnyStateNode, eventType: string): string {
  if (eventType.startsWith('xstate.after.')) {
    const delay = node.after.find((t) => t.eventType === eventType)?.delay;
    if (typeof delay === 'number') return `after ${delay}ms`;
    if (typeof delay === 'string') return `after ${delay}`;
    return 'after (delay)';
  }
  for (const invoke of node.invoke) {
    const name = typeof invoke.src === 'string' ? invoke.src : /^\d+\./.test(invoke.id) ? 'invoke' : invoke.id;
    if (eventType === `xstate.done.actor.${invoke.id}`) return `done(${name})`;
    if (eventType === `xstate.error.actor.${invoke.id}`) return `error(${name})`;
    if (eventType === `xstate.snapshot.${invoke.id}`) return `snapshot(${name})`;
  }
  if (eventType === `xstate.done.state.${node.id}`) return 'done';
  return eventType;
}

/** A guard as written: its name, `a && b`, `a || b`, `!a`, `in(state)`, or `inline`. */
export function guardLabel(guard: unknown): string {
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') {
    const g = guard as { name?: string; guards?: unknown; stateValue?: unknown };
    if (Array.isArray(g.guards)) {
      const parts = g.guards.map((inner) => {
        const label = guardLabel(inner);
        return /[&|]/.test(label) ? `(${label})` : label;
      });
      if (g.name === 'not') return `!${parts[0] ?? '?'}`;
      return parts.join(g.name === 'or' ? ' || ' : ' && ');
    }
    if (g.stateValue !== undefined) {
      return `in(${typeof g.stateValue === 'string' ? g.stateValue : JSON.stringify(g.stateValue)})`;
    }
    return g.name && g.name !== 'guard' ? g.name : 'inline';
  }
  if (typeof guard === 'object' && guard !== null && 'type' in guard) return String(guard.type);
  return '?';
}

function actionLabel(action: unknown): string {
  if (typeof action === 'string') return action;
  if (typeof action === 'function') {
    const f = action as { name?: string; type?: unknown };
    // Built-in actions (assign, sendTo, ...) carry `type: 'xstate.assign'`.
    if (typeof f.type === 'string') return f.type.replace(/^xstate\./, '');
    return f.name && f.name !== 'actions' ? f.name : 'inline';
  }
  if (typeof action === 'object' && action !== null && 'type' in action) return String(action.type);
  return '?';
}
