/** A diagram as Mermaid `stateDiagram-v2` text. Pure: same diagram, same bytes. */
import { isComposite, Layout } from './layout.js';
import type { Diagram, DiagramState } from './model.js';

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
