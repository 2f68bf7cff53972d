/**
 * Statechart diagrams generated from machine definitions: Mermaid `stateDiagram-v2` and Graphviz DOT.
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

// ---------------------------------------------------------------------------------------------
// Layout decisions shared by both printers.

const isComposite = (s: DiagramState): boolean => s.kind === 'compound' || s.kind === 'parallel';

interface Edge {
  /** State the edge leaves from; `any` means from the "any state" box inside it. */
  from: DiagramState;
  fromAny: boolean;
  to: DiagramState;
  /** One per transition drawn by this edge, in declaration order. */
  labels: string[];
}

class Layout {
  readonly states = new Map<string, DiagramState>();
  readonly parents = new Map<string, DiagramState | null>();
  /** Composite states that get an "any state" box. */
  readonly anyBoxes = new Set<string>();
  readonly edges: Edge[] = [];

  constructor(readonly diagram: Diagram) {
    const index = (s: DiagramState, parent: DiagramState | null): void => {
      this.states.set(s.id, s);
      this.parents.set(s.id, parent);
      for (const c of s.children) index(c, s);
    };
    index(diagram.root, null);
    for (const s of this.states.values()) if (isComposite(s) && s.internal.length > 0) this.anyBoxes.add(s.id);

    // Transitions between the same two states share one edge, one label line each.
    const byEnds = new Map<string, Edge>();
    for (const t of diagram.transitions) {
      const from = this.state(t.source);
      const to = this.state(t.target);
      // A composite state (the root above all) cannot draw an edge into itself, nor re-enter one of
      // its ancestors from its own border: such edges start at its "any state" box.
      const fromAny = isComposite(from) && (this.contains(from, to) || this.contains(to, from));
      if (fromAny) this.anyBoxes.add(from.id);
      const ends = JSON.stringify([from.id, fromAny, to.id]);
      const known = byEnds.get(ends);
      if (known) {
        known.labels.push(t.label);
        continue;
      }
      const edge: Edge = { from, fromAny, to, labels: [t.label] };
      byEnds.set(ends, edge);
      this.edges.push(edge);
    }
  }

  state(id: string): DiagramState {
    const s = this.states.get(id);
    if (!s) throw new Error(`diagram: unknown state ${id}`);
    return s;
  }

  parent(s: DiagramState): DiagramState | null {
    return this.parents.get(s.id) ?? null;
  }

  /** `outer` is `inner` or one of its ancestors. */
  contains(outer: DiagramState, inner: DiagramState): boolean {
    for (let s: DiagramState | null = inner; s; s = this.parent(s)) if (s === outer) return true;
    return false;
  }

  /** Lowest state that is `a` or an ancestor of it and contains `b`. */
  common(a: DiagramState, b: DiagramState): DiagramState {
    for (let s: DiagramState | null = a; s; s = this.parent(s)) if (this.contains(s, b)) return s;
    return this.diagram.root;
  }

  /** Where entering a composite state visibly leads: its initial state (the first region of a parallel one). */
  entry(s: DiagramState): DiagramState {
    if (s.kind === 'compound') return this.state(s.initial[0] ?? s.children[0]!.id);
    if (s.kind === 'parallel') return s.children[0]!;
    return s;
  }
}

// ---------------------------------------------------------------------------------------------
// Mermaid

const MERMAID_KEYWORDS = new Set(['state', 'note', 'end', 'class', 'classDef', 'direction', 'hide', 'scale', 'as']);

/** Mermaid labels cannot hold `#` or `;`, and `"` ends a quoted name: use Mermaid's entity codes. */
function mermaidText(text: string): string {
  return text.replace(/[#;"]/g, (c) => `#${c.charCodeAt(0)};`);
}

/** The machine as a Mermaid `stateDiagram-v2`. */
export function toMermaid(diagram: Diagram): string {
  const layout = new Layout(diagram);
  const ids = new Map<string, string>();
  const taken = new Set<string>();
  const unique = (wanted: string): string => {
    let id = wanted.replace(/[^A-Za-z0-9_]/g, '_') || 'state';
    if (MERMAID_KEYWORDS.has(id)) id += '_';
    for (let n = 2; taken.has(id); n++) id = `${wanted}_${n}`.replace(/[^A-Za-z0-9_]/g, '_');
    taken.add(id);
    return id;
  };
  for (const s of layout.states.values()) if (s !== diagram.root) ids.set(s.id, unique(s.path.join('__')));
  const anyIds = new Map<string, string>();
  for (const id of layout.anyBoxes) {
    const s = layout.state(id);
    anyIds.set(id, unique(s === diagram.root ? 'any_state' : `${ids.get(id)}__any`));
  }
  const idOf = (s: DiagramState): string => ids.get(s.id)!;

  // Each edge is printed in the block of the lowest state that holds both of its ends: Mermaid
  // places a state in the block where it is first named, and lays out edges per block.
  const edgesByBlock = new Map<string, string[]>();
  for (const e of layout.edges) {
    let to = e.to;
    // Mermaid draws no edge into an enclosing state: show where re-entering it leads.
    while (isComposite(to) && layout.contains(to, e.from)) to = layout.entry(to);
    const fromId = e.fromAny ? anyIds.get(e.from.id)! : idOf(e.from);
    const fromBlock = e.fromAny ? e.from : layout.parent(e.from)!;
    const block = layout.common(fromBlock, layout.parent(to) ?? diagram.root);
    const lines = edgesByBlock.get(block.id) ?? [];
    lines.push(`${fromId} --> ${idOf(to)} : ${e.labels.map(mermaidText).join('<br/>')}`);
    edgesByBlock.set(block.id, lines);
  }

  const out: string[] = [];
  const title = diagram.description ? `${diagram.id}: ${diagram.description}` : diagram.id;
  out.push('---', `title: ${JSON.stringify(title)}`, '---', 'stateDiagram-v2');
  out.push('  %% Generated from the machine definition by `npm run visualize`. Do not edit.');
  out.push('  classDef anyState fill:none,stroke-dasharray:4 4');

  const anyBox = (s: DiagramState, pad: string): void => {
    const id = anyIds.get(s.id);
    if (!id) return;
    out.push(`${pad}state "any state" as ${id}`);
    for (const line of s.internal) out.push(`${pad}${id} : ${mermaidText(line)}`);
  };

  const block = (s: DiagramState, pad: string): void => {
    if (s.kind === 'parallel') {
      if (anyIds.has(s.id)) {
        anyBox(s, pad);
        out.push(`${pad}--`);
      }
      s.children.forEach((child, i) => {
        if (i > 0) out.push(`${pad}--`);
        state(child, pad);
      });
    } else {
      for (const id of s.initial) out.push(`${pad}[*] --> ${idOf(layout.state(id))}`);
      anyBox(s, pad);
      for (const child of s.children) state(child, pad);
    }
    for (const line of edgesByBlock.get(s.id) ?? []) out.push(`${pad}${line}`);
  };

  const state = (s: DiagramState, pad: string): void => {
    const id = idOf(s);
    const name = s.kind === 'history' ? (s.history === 'deep' ? 'H*' : 'H') : s.key;
    // Descriptions stay in the text: as notes, Mermaid scatters them far from their states.
    if (s.description) out.push(`${pad}%% ${s.key}: ${s.description.replace(/\s+/g, ' ')}`);
    if (isComposite(s)) {
      out.push(`${pad}state "${mermaidText(name)}" as ${id} {`);
      block(s, `${pad}  `);
      out.push(`${pad}}`);
    } else {
      out.push(`${pad}state "${mermaidText(name)}" as ${id}`);
      for (const line of s.internal) out.push(`${pad}${id} : ${mermaidText(line)}`);
      if (s.kind === 'final') out.push(`${pad}${id} --> [*]`);
    }
  };

  block(diagram.root, '  ');
  if (anyIds.size > 0) out.push(`  class ${[...anyIds.values()].join(',')} anyState`);
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// Graphviz DOT

const FONT = 'Helvetica';

function dotString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

function html(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A name, then an optional description in small italics, then optional lines under a rule. */
function htmlLabel(name: string, description: string | null, lines: string[], width: number): string {
  const rows = [`<tr><td><b>${html(name)}</b></td></tr>`];
  if (description) {
    const text = wrap(description, width).map(html).join('<br/>');
    rows.push(`<tr><td><font point-size="9" color="#555555"><i>${text}</i></font></td></tr>`);
  }
  if (lines.length > 0) {
    rows.push('<hr/>');
    for (const line of lines) rows.push(`<tr><td align="left"><font point-size="9">${html(line)}</font></td></tr>`);
  }
  return `<<table border="0" cellborder="0" cellspacing="0" cellpadding="1">${rows.join('')}</table>>`;
}

/** The machine as a Graphviz `digraph`: composite states are clusters, parallel regions dashed ones. */
export function toDot(diagram: Diagram): string {
  const layout = new Layout(diagram);
  const taken = new Set(layout.states.keys());
  const pseudo = (wanted: string): string => {
    let id = wanted;
    for (let n = 2; taken.has(id); n++) id = `${wanted} ${n}`;
    taken.add(id);
    return id;
  };
  const initialIds = new Map<string, string>();
  const anyIds = new Map<string, string>();
  for (const s of layout.states.values()) {
    if (s.kind === 'compound' && s.initial.length > 0) initialIds.set(s.id, pseudo(`${s.id} (initial)`));
    if (layout.anyBoxes.has(s.id)) anyIds.set(s.id, pseudo(`${s.id} (any state)`));
  }
  const cluster = (s: DiagramState): string => dotString(`cluster ${s.id}`);
  /** A node inside a composite state for edges to end on, clipped to the cluster by lhead/ltail. */
  const anchor = (s: DiagramState): string => {
    if (s.kind === 'compound') {
      const initial = initialIds.get(s.id);
      if (initial) return initial;
    }
    if (isComposite(s)) return anchor(s.children[0]!);
    return s.id;
  };

  const out: string[] = [];
  out.push(`digraph ${dotString(diagram.id)} {`);
  out.push('  // Generated from the machine definition by `npm run visualize`. Do not edit.');
  out.push(
    `  graph [compound=true, fontname=${dotString(FONT)}, fontsize=13, labelloc=t, labeljust=l, forcelabels=true, nodesep=0.4, ranksep=0.5, ` +
      `label=${htmlLabel(diagram.id, diagram.description, [], 90)}];`,
  );
  out.push(
    `  node [fontname=${dotString(FONT)}, fontsize=11, shape=box, style="rounded,filled", fillcolor="#eef1fb", color="#4a5a9c", margin="0.12,0.05"];`,
  );
  out.push(`  edge [fontname=${dotString(FONT)}, fontsize=9, color="#333333", fontcolor="#1a1a60", arrowsize=0.7];`);

  const initialMarker = (s: DiagramState, pad: string): void => {
    const id = initialIds.get(s.id);
    if (!id) return;
    out.push(`${pad}${dotString(id)} [shape=point, width=0.12, style=filled, fillcolor="#222222", color="#222222", label=""];`);
  };
  const anyBox = (s: DiagramState, pad: string): void => {
    const id = anyIds.get(s.id);
    if (!id) return;
    out.push(
      `${pad}${dotString(id)} [style="rounded,dashed", color="#777777", label=${htmlLabel('any state', null, s.internal, 40)}];`,
    );
  };

  const contents = (s: DiagramState, pad: string): void => {
    initialMarker(s, pad);
    anyBox(s, pad);
    const initial = initialIds.get(s.id);
    const any = anyIds.get(s.id);
    // The "any state" box beside the initial marker, not on a rank of its own.
    if (initial && any) out.push(`${pad}{ rank=same; ${dotString(initial)}; ${dotString(any)}; }`);
    for (const child of s.children) state(child, pad, s.kind === 'parallel');
  };

  const state = (s: DiagramState, pad: string, region: boolean): void => {
    const tooltip = `tooltip=${dotString(s.description ?? s.key)}`;
    if (isComposite(s)) {
      const name = s.kind === 'parallel' ? `${s.key}  (parallel)` : s.key;
      out.push(`${pad}subgraph ${cluster(s)} {`);
      // Regions of a parallel state: dashed and white, inside their parent's filled box.
      const style = region
        ? 'style="rounded,dashed", color="#7a86b8", bgcolor="#ffffff"'
        : 'style="rounded,filled", color="#4a5a9c", fillcolor="#f7f8fd"';
      out.push(`${pad}  graph [${style}, margin=14, fontsize=11, ${tooltip}, label=${htmlLabel(name, s.description, [], 60)}];`);
      contents(s, `${pad}  `);
      out.push(`${pad}}`);
      return;
    }
    if (s.kind === 'final') {
      const xlabel = s.description
        ? `, xlabel=<<font point-size="9" color="#555555"><i>${wrap(s.description, 30).map(html).join('<br/>')}</i></font>>`
        : '';
      out.push(
        `${pad}${dotString(s.id)} [shape=doublecircle, style=filled, fillcolor="#eef1fb", fontsize=10, ${tooltip}, label=${dotString(s.key)}${xlabel}];`,
      );
      return;
    }
    if (s.kind === 'history') {
      out.push(`${pad}${dotString(s.id)} [shape=circle, ${tooltip}, label=${dotString(s.history === 'deep' ? 'H*' : 'H')}];`);
      return;
    }
    out.push(`${pad}${dotString(s.id)} [${tooltip}, label=${htmlLabel(s.key, s.description, s.internal, 40)}];`);
  };

  contents(diagram.root, '  ');

  for (const s of layout.states.values()) {
    const initial = initialIds.get(s.id);
    if (!initial) continue;
    for (const id of s.initial) {
      const target = layout.state(id);
      const lhead = isComposite(target) ? `, lhead=${cluster(target)}` : '';
      out.push(`  ${dotString(initial)} -> ${dotString(anchor(target))} [arrowsize=0.6${lhead}];`);
    }
  }
  for (const e of layout.edges) {
    const attrs = [`label=${dotString(e.labels.map((l) => ` ${l} `).join('\n'))}`];
    let tail: string;
    if (e.fromAny) tail = anyIds.get(e.from.id)!;
    else if (isComposite(e.from)) {
      tail = anchor(e.from);
      attrs.push(`ltail=${cluster(e.from)}`);
    } else tail = e.from.id;
    let head: string;
    if (!isComposite(e.to)) head = e.to.id;
    // Re-entering an enclosing state: into its initial marker, the state starts over.
    else if (layout.contains(e.to, e.from)) head = anchor(e.to);
    else {
      head = anchor(e.to);
      attrs.push(`lhead=${cluster(e.to)}`);
    }
    out.push(`  ${dotString(tail)} -> ${dotString(head)} [${attrs.join(', ')}];`);
  }
  out.push('}');
  return `${out.join('\n')}\n`;
}

/** Greedy word wrap; words longer than `width` stay whole. */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}
