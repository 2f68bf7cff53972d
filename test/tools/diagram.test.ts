import { describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { sessionMachine } from '../../machines/session.machine.js';
import { supervisorMachine } from '../../machines/supervisor.machine.js';
import { toDot } from '../../src/tools/diagram/dot.js';
import { wrap } from '../../src/tools/diagram/layout.js';
import { toMermaid } from '../../src/tools/diagram/mermaid.js';
import { describeMachine, type DiagramState } from '../../src/tools/diagram/model.js';
import { renderSvg } from '../../src/tools/visualize.js';
import { demoMachine } from './demo-machine.js';

function find(state: DiagramState, id: string): DiagramState {
  const all = (s: DiagramState): DiagramState[] => [s, ...s.children.flatMap(all)];
  const found = all(state).find((s) => s.id === id);
  if (!found) throw new Error(`no state ${id}`);
  return found;
}

describe('describeMachine', () => {
  const diagram = describeMachine(demoMachine);

  it('keeps the state tree: kinds, initial states, descriptions, document order', () => {
    expect(diagram.id).toBe('demo');
    expect(diagram.description).toBe('A hand-made machine.');
    expect(diagram.root.kind).toBe('compound');
    expect(diagram.root.initial).toEqual(['demo.idle']);
    expect(diagram.root.children.map((s) => [s.key, s.kind])).toEqual([
      ['idle', 'atomic'],
      ['working', 'compound'],
      ['done', 'final'],
      ['failed', 'final'],
    ]);
    const working = find(diagram.root, 'demo.working');
    expect(working.initial).toEqual(['demo.working.fetching']);
    expect(working.children.map((s) => [s.key, s.kind])).toEqual([
      ['fetching', 'atomic'],
      ['both', 'parallel'],
      ['finished', 'final'],
      ['hist', 'history'],
    ]);
    expect(find(diagram.root, 'demo.working.hist').history).toBe('deep');
    const both = find(diagram.root, 'demo.working.both');
    expect(both.initial).toEqual([]);
    expect(both.children.map((s) => s.key)).toEqual(['left', 'right']);
    expect(find(diagram.root, 'demo.working.both.left').initial).toEqual(['demo.working.both.left.a']);
    expect(find(diagram.root, 'demo.idle').description).toBe('Waiting for start.');
    expect(find(diagram.root, 'demo.working').description).toBeNull();
  });

  it('labels events, always, named and numeric delays, invoke and state done, guards', () => {
    expect(diagram.transitions).toEqual([
      { source: 'demo', target: 'demo.idle', label: 'reset' },
      { source: 'demo', target: 'demo.working.hist', label: 'resume' },
      { source: 'demo.idle', target: 'demo.working', label: 'start [ready]' },
      { source: 'demo.idle', target: 'demo.done', label: 'always [open && !late]' },
      { source: 'demo.working', target: 'demo.working', label: 'restart' },
      { source: 'demo.working', target: 'demo.idle', label: 'after 500ms' },
      { source: 'demo.working', target: 'demo.idle', label: 'after retryDelay [late || open]' },
      { source: 'demo.working.fetching', target: 'demo.working.both', label: 'done(fetchThing)' },
      { source: 'demo.working.fetching', target: 'demo.failed', label: 'error(fetchThing)' },
      { source: 'demo.working.both', target: 'demo.working.finished', label: 'done' },
      { source: 'demo.working.both.left.a', target: 'demo.working.both.left.b', label: 'next' },
      { source: 'demo.working.both.right.c', target: 'demo.working.both.right.c', label: 'again' },
      { source: 'demo.working.both.right.c', target: 'demo.working', label: 'up' },
      { source: 'demo.working.both.right.c', target: 'demo.working.both.right.d', label: 'stop' },
    ]);
  });

  it('lists transitions that change no state inside their state, with their actions', () => {
    expect(diagram.root.internal).toEqual(['ping / log']);
    // `target: 'idle'` from idle without `reenter` exits nothing; `again` (reenter) is an edge.
    expect(find(diagram.root, 'demo.idle').internal).toEqual(['poke / log']);
    expect(find(diagram.root, 'demo.working.both.right.c').internal).toEqual([]);
  });

  it('never shows raw xstate.after ids and keeps eventless transitions (unlike toDirectedGraph)', () => {
    const session = describeMachine(sessionMachine);
    const labels = session.transitions.map((t) => t.label);
    expect(labels.filter((l) => l.includes('xstate.'))).toEqual([]);
    expect(labels).toEqual(
      expect.arrayContaining([
        'always [hasIpv6Candidates]',
        'always',
        'after punchInterval',
        'after fallbackDelay [hasIpv4Candidates]',
        'after punchTimeout [punchTimeoutEnabled]',
        'peer.silent',
        'done(resolveTargets) [hasCandidates]',
        'error(resolveTargets)',
        'peer.heartbeat [provesPath]',
      ]),
    );
    const supervisor = describeMachine(supervisorMachine);
    expect(supervisor.transitions).toContainEqual({
      source: 'supervisor.draining',
      target: 'supervisor.stopped',
      label: 'after drainTimeout',
    });
    expect(supervisor.transitions).toContainEqual({
      source: 'supervisor.draining',
      target: 'supervisor.stopped',
      label: 'always [noSessions]',
    });
  });
});

describe('toMermaid', () => {
  const mermaid = toMermaid(describeMachine(demoMachine));
  const lines = mermaid.split('\n').map((l) => l.trim());

  it('writes a stateDiagram-v2 with nested blocks, regions, initial and final markers', () => {
    expect(mermaid.startsWith('---\ntitle: "demo: A hand-made machine."\n---\nstateDiagram-v2\n')).toBe(true);
    expect(mermaid.endsWith('\n')).toBe(true);
    expect(lines).toContain('[*] --> idle');
    expect(lines).toContain('state "working" as working {');
    expect(lines).toContain('[*] --> working__fetching');
    expect(lines).toContain('state "both" as working__both {');
    // The two regions of the parallel state, separated by `--`.
    const left = lines.indexOf('state "left" as working__both__left {');
    const right = lines.indexOf('state "right" as working__both__right {');
    expect(left).toBeGreaterThan(0);
    expect(lines.slice(left, right)).toContain('--');
    for (const final of ['done', 'failed', 'working__finished', 'working__both__left__b', 'working__both__right__d']) {
      expect(lines).toContain(`${final} --> [*]`);
    }
    expect(lines).toContain('state "H*" as working__hist');
  });

  it('labels edges and merges transitions between the same two states', () => {
    expect(lines).toContain('idle --> done : always [open && !late]');
    expect(lines).toContain('working --> idle : after 500ms<br/>after retryDelay [late || open]');
    expect(lines).toContain('working__fetching --> working__both : done(fetchThing)');
    expect(lines).toContain('working__fetching --> failed : error(fetchThing)');
    expect(lines).toContain('working__both --> working__finished : done');
    expect(lines).toContain('working__both__right__c --> working__both__right__c : again');
  });

  it('draws a state’s own transitions that stay inside it from an "any state" box', () => {
    expect(lines).toContain('state "any state" as any_state');
    expect(lines).toContain('any_state : ping / log');
    expect(lines).toContain('any_state --> idle : reset');
    expect(lines).toContain('any_state --> working__hist : resume');
    expect(lines).toContain('idle : poke / log');
    // Mermaid cannot draw into an enclosing state: re-entering `working` lands on its initial state.
    expect(lines).toContain('working__any --> working__fetching : restart');
    expect(lines).toContain('working__both__right__c --> working__fetching : up');
    expect(lines).toContain('class any_state,working__any anyState');
  });

  it('prints an edge in the block that holds both of its ends', () => {
    const block = (line: string): number => lines.slice(0, lines.indexOf(line)).filter((l) => l.endsWith('{')).length -
      lines.slice(0, lines.indexOf(line)).filter((l) => l === '}').length;
    expect(block('working__both__left__a --> working__both__left__b : next')).toBe(3);
    expect(block('working__both__right__c --> working__fetching : up')).toBe(1);
    expect(block('working__fetching --> failed : error(fetchThing)')).toBe(0);
  });

  it('gives states with the same key distinct ids and escapes what Mermaid cannot read', () => {
    const machine = setup({ types: { events: {} as { type: 'go;now#1' } } }).createMachine({
      id: 'dup',
      initial: 'a',
      states: {
        a: { initial: 'end', states: { end: { on: { 'go;now#1': '#dup.end' } } } },
        b: { initial: 'end', states: { end: {} } },
        end: { type: 'final' },
      },
    });
    const text = toMermaid(describeMachine(machine));
    expect(text).toContain('state "end" as a__end\n');
    expect(text).toContain('state "end" as b__end\n');
    expect(text).toContain('state "end" as end_\n');
    expect(text).toContain('a__end --> end_ : go#59;now#35;1\n');
  });
});

describe('toDot', () => {
  const dot = toDot(describeMachine(demoMachine));

  it('draws composite states as clusters, parallel regions dashed, final states as double circles', () => {
    expect(dot.startsWith('digraph "demo" {\n')).toBe(true);
    expect(dot).toContain('subgraph "cluster demo.working" {');
    expect(dot).toMatch(/subgraph "cluster demo.working.both" \{\n\s+graph \[style="rounded,filled"/);
    expect(dot).toMatch(/subgraph "cluster demo.working.both.left" \{\n\s+graph \[style="rounded,dashed"/);
    expect(dot.match(/shape=doublecircle/g)).toHaveLength(5);
    expect(dot).toContain('"demo.working.hist" [shape=circle');
    expect(dot).toContain('label="H*"');
  });

  it('marks initial states and clips edges of composite states to their clusters', () => {
    expect(dot).toContain('"demo (initial)" -> "demo.idle"');
    expect(dot).toContain('"demo.working (initial)" -> "demo.working.fetching"');
    expect(dot).toContain('"demo.working.both.right (initial)" -> "demo.working.both.right.c"');
    // idle -> working ends on the cluster's border.
    expect(dot).toContain('"demo.idle" -> "demo.working (initial)" [label=" start [ready] ", lhead="cluster demo.working"];');
    // working -> idle starts on it.
    expect(dot).toContain(
      '"demo.working (initial)" -> "demo.idle" [label=" after 500ms \\n after retryDelay [late || open] ", ltail="cluster demo.working"];',
    );
    // Into a parallel state: its first region.
    expect(dot).toContain(
      '"demo.working.fetching" -> "demo.working.both.left (initial)" [label=" done(fetchThing) ", lhead="cluster demo.working.both"];',
    );
  });

  it('re-enters an enclosing state at its initial marker', () => {
    expect(dot).toContain('"demo.working (any state)" -> "demo.working (initial)" [label=" restart "];');
    expect(dot).toContain('"demo.working.both.right.c" -> "demo.working (initial)" [label=" up "];');
    expect(dot).toContain('"demo (any state)" -> "demo.idle" [label=" reset "];');
  });

  it('renders with Graphviz without a warning, byte-identical every time', async () => {
    const first = await renderSvg(dot);
    expect(first).toContain('<svg');
    expect(first).not.toMatch(/\d{4}-\d{2}-\d{2}T/);
    expect(await renderSvg(toDot(describeMachine(demoMachine)))).toBe(first);
  });

  it('draws a region re-entering its parallel parent from its "any state" box, which Graphviz accepts', async () => {
    const machine = setup({}).createMachine({
      id: 'm',
      type: 'parallel',
      states: {
        p: {
          type: 'parallel',
          states: {
            r: { initial: 'a', on: { x: '#m.p' }, states: { a: {} } },
            s: { initial: 'b', states: { b: {} } },
          },
        },
      },
    });
    const diagram = describeMachine(machine);
    expect(toMermaid(diagram)).toContain('p__r__any --> p__r__a : x\n');
    const dot = toDot(diagram);
    expect(dot).toContain('"m.p.r (any state)" -> "m.p.r (initial)" [label=" x "];');
    await expect(renderSvg(dot)).resolves.toContain('<svg');
  });

  it('rejects DOT that Graphviz complains about', async () => {
    await expect(renderSvg('digraph { a -> }')).rejects.toThrow(/Graphviz failed/);
    await expect(renderSvg('digraph { a [shape=nonsense] }')).rejects.toThrow(/Graphviz failed/);
  });
});

describe('wrap', () => {
  it('wraps at word boundaries and keeps long words whole', () => {
    expect(wrap('one two three four', 9)).toEqual(['one two', 'three', 'four']);
    expect(wrap('  averyveryverylongword x ', 5)).toEqual(['averyveryverylongword', 'x']);
    expect(wrap('', 10)).toEqual([]);
  });
});
