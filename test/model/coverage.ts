/**
 * Coverage of the session machine (and the supervisor's spawn and reap) by the model paths and
 * by their replays on real servers, computed against what the machines define, and its summary.
 */
import type { AnyStateMachine } from 'xstate';
import { sessionMachine } from '../../machines/session.machine.js';
import { supervisorMachine } from '../../machines/supervisor.machine.js';
import type { Plan } from './plan.js';
import type { Coverage } from './replay.js';
import { definedStateNodes, definedTransitions, transitionKey, type TransitionLike } from './transitions.js';

function actionNames(t: TransitionLike): string[] {
  return t.actions.map((a) => (typeof a === 'string' ? a : typeof a === 'object' && a !== null && 'type' in a ? String(a.type) : ''));
}

/**
 * The supervisor transitions that spawn or reap sessions. `exercisable` leaves out reaping a
 * session that failed (a bug), and a session asked for while draining: the server never does
 * (admission refuses from the first signal on, before the supervisor is told to shut down); the
 * supervisor hands such a request to its host, which refuses it (tested in the machine's tests).
 */
export function supervisorSessionTransitions(machine: AnyStateMachine = supervisorMachine): { key: string; exercisable: boolean }[] {
  return definedTransitions(machine)
    .filter((t) => actionNames(t).some((a) => a === 'openSession' || a === 'reapSession'))
    .map((t) => ({
      key: transitionKey(t),
      exercisable: t.eventType !== 'session.failed' && !(t.eventType === 'session.open' && t.source.key === 'draining'),
    }));
}

export interface CoverageCheck {
  /** Missing from the generated (selected) paths: model side. */
  modelMissing: { transitions: string[]; nodes: string[] };
  /** Missing from the real servers' session actors during the replays. */
  realMissing: { transitions: string[]; nodes: string[]; supervisor: string[]; items: string[] };
  summary: string;
}

export function checkCoverage(plan: Plan, coverage: Coverage, machine: AnyStateMachine = sessionMachine): CoverageCheck {
  const transitions = definedTransitions(machine).map(transitionKey);
  const nodes = definedStateNodes(machine);
  const planItems = new Set(plan.selected.flatMap((p) => [...p.items]));
  const planNodes = new Set(plan.selected.flatMap((p) => [...p.nodes]));
  const supervisor = supervisorSessionTransitions();
  const realMissing = {
    transitions: transitions.filter((k) => !coverage.sessionTransitions.has(k)),
    nodes: nodes.filter((n) => !coverage.sessionNodes.has(n)),
    supervisor: supervisor.filter((s) => s.exercisable && !coverage.supervisorTransitions.has(s.key)).map((s) => s.key),
    items: [...plan.universe].filter((i) => !coverage.items.has(i)),
  };
  const kinds = (prefix: string, set: Iterable<string>) => [...set].filter((i) => i.startsWith(prefix)).length;
  const g = plan.generated;
  const lines = [
    'session statechart: model-based coverage',
    `  paths: ${g.shortest} shortest (getShortestPaths) + ${g.extended} one-step extensions + ${g.simple} simple (getSimplePaths) generated;` +
      ` all checked against the contract in memory (${plan.violations.length} broke it);` +
      ` ${g.infeasible} too tight for real time; ${plan.selected.length} selected to cover all ${plan.universe.size} items;` +
      ` ${coverage.passed}/${coverage.replayed} replayed on a real server and passed`,
    `  state nodes on the real server: ${nodes.length - realMissing.nodes.length}/${nodes.length}` +
      (realMissing.nodes.length ? ` MISSING ${realMissing.nodes.join(', ')}` : ''),
    `  transitions on the real server: ${transitions.length - realMissing.transitions.length}/${transitions.length} (times taken on path steps)`,
    ...transitions.map((k) => `    ${String(coverage.sessionTransitions.get(k) ?? 0).padStart(4)}x  ${k}`),
    `  event variants replayed: ${kinds('event: ', coverage.items)}/${kinds('event: ', plan.universe)};` +
      ` state classes replayed: ${kinds('state: ', coverage.items)}/${kinds('state: ', plan.universe)}`,
    `  supervisor (spawn and reap):`,
    ...supervisor.map(
      (s) =>
        `    ${String(coverage.supervisorTransitions.get(s.key) ?? 0).padStart(4)}x  ${s.key}` +
        (s.exercisable ? '' : '   (needs a session actor that fails: not exercisable without a bug)'),
    ),
  ];
  return {
    modelMissing: {
      transitions: transitions.filter((k) => !planItems.has(`transition: ${k}`)),
      nodes: nodes.filter((n) => !planNodes.has(n)),
    },
    realMissing,
    summary: lines.join('\n'),
  };
}
