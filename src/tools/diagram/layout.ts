/** Layout decisions shared by both printers: which transitions share an edge, where edges start and end. */
import type { Diagram, DiagramState } from './model.js';

export const isComposite = (s: DiagramState): boolean => s.kind === 'compound' || s.kind === 'parallel';

export interface Edge {
  /** State the edge leaves from; `any` means from the "any state" box inside it. */
  from: DiagramState;
  fromAny: boolean;
  to: DiagramState;
  /** One per transition drawn by this edge, in declaration order. */
  labels: string[];
}

export class Layout {
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
