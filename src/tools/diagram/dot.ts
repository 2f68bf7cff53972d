/** A diagram as a Graphviz `digraph` (rendered to SVG by `npm run visualize`). Pure: same diagram, same bytes. */
import { isComposite, Layout, wrap } from './layout.js';
import type { Diagram, DiagramState } from './model.js';

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

/**
 * The machine as a Graphviz `digraph`: composite states are clusters, parallel regions dashed ones.
 * One walk of the diagram with the printer's state in its closures (ids, anchors, output): long,
 * but read top to bottom it is the DOT file in order.
 */
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
