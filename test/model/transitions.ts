/**
 * The transitions a machine defines, named so that two copies of a machine (`.provide` makes new
 * state nodes) agree, and the transitions a step takes.
 */
import { createEmptyActor, type AnyActorScope, type AnyStateMachine, type AnyStateNode, type EventObject } from 'xstate';
import { getStateNodes } from 'xstate/graph';
import { parseDelay } from './session-model.js';

/** The parts of a TransitionDefinition this module reads. */
export interface TransitionLike {
  source: AnyStateNode;
  eventType: string;
  target?: readonly AnyStateNode[] | undefined;
  guard?: unknown;
  reenter?: boolean;
  actions: readonly unknown[];
}

function guardName(guard: unknown): string {
  if (guard === undefined) return '';
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'object' && guard !== null && 'type' in guard) return String((guard as { type: unknown }).type);
  return 'inline';
}

function eventName(source: AnyStateNode, eventType: string): string {
  const delay = parseDelay(eventType);
  if (delay) return `after ${delay.delay}`;
  const invoke = source.invoke.find((i) => eventType === `xstate.done.actor.${i.id}` || eventType === `xstate.error.actor.${i.id}`);
  if (invoke) return `${eventType.startsWith('xstate.done') ? 'done' : 'error'}(${String(invoke.src)})`;
  return eventType === '' ? 'always' : eventType;
}

/** `source | event [guard] -> targets`, stable across copies of one machine. */
export function transitionKey(t: TransitionLike): string {
  const alternatives = t.eventType === '' ? (t.source.always ?? []) : (t.source.transitions.get(t.eventType) ?? []);
  const index = (alternatives as readonly unknown[]).indexOf(t);
  const guard = guardName(t.guard);
  const label = guard ? `[${guard}]` : alternatives.length > 1 ? '[else]' : '';
  const targets = t.target?.length ? t.target.map((n) => n.id).join(', ') + (t.reenter ? ' (reenter)' : '') : '(no target)';
  return `${t.source.id} | ${eventName(t.source, t.eventType)}${label ? ` ${label}` : ''} #${index} -> ${targets}`;
}

/** Every transition the machine defines: events, delays, invoke outcomes, eventless; guarded alternatives each. */
export function definedTransitions(machine: AnyStateMachine): TransitionLike[] {
  const out: TransitionLike[] = [];
  for (const node of [machine.root, ...getStateNodes(machine.root)]) {
    for (const alternatives of node.transitions.values()) out.push(...(alternatives as TransitionLike[]));
    out.push(...((node.always ?? []) as TransitionLike[]));
  }
  return out;
}

/** Every state node id of the machine, the root included. */
export function definedStateNodes(machine: AnyStateMachine): string[] {
  return [machine.root, ...getStateNodes(machine.root)].map((n) => n.id);
}

interface MicrostepInspection {
  type: string;
  _transitions?: TransitionLike[];
  snapshot?: { _nodes?: AnyStateNode[] };
}

/**
 * The transitions `machine.transition(snapshot, event)` takes (every microstep, eventless ones
 * too), seen through the inspection events of a scope whose actions do nothing, and the events
 * its `sendTo` actions would send.
 */
export function transitionsTaken<S>(
  machine: AnyStateMachine,
  snapshot: S,
  event: EventObject,
): { next: S; taken: TransitionLike[]; nodes: Set<string>; sent: EventObject[] } {
  const taken: TransitionLike[] = [];
  const nodes = new Set<string>();
  const sent: EventObject[] = [];
  const empty = createEmptyActor();
  const scope = {
    self: empty,
    logger: () => {},
    id: '',
    sessionId: 'model',
    defer: () => {},
    system: {
      ...empty.system,
      _sendInspectionEvent: (e: MicrostepInspection) => {
        if (e.type !== '@xstate.microstep') return;
        taken.push(...(e._transitions ?? []));
        for (const n of e.snapshot?._nodes ?? []) nodes.add(n.id);
      },
    },
    stopChild: () => {},
    emit: () => {},
    // Actions do nothing; what `sendTo` would send is kept (the bridge commands of a session).
    actionExecutor: (action: { type: string; params?: { event?: unknown } }) => {
      if (action.type === 'xstate.sendTo' && action.params?.event) sent.push(action.params.event as EventObject);
    },
  } as unknown as AnyActorScope;
  const after = machine.transition(snapshot as never, event, scope) as S;
  // A new object even when nothing changed: the model keeps history per snapshot object.
  const next = after === snapshot ? ({ ...after } as S) : after;
  return { next, taken, nodes, sent };
}
