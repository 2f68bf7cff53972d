import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateVisualizations, loadMachines, staleVisualizations, visualizationsDir } from '../src/tools/visualize.js';

const FIX = 'run `npm run visualize` and commit visualizations/';

describe('visualizations/', () => {
  it('covers every *Machine export of machines/*.machine.ts', async () => {
    const machines = await loadMachines();
    expect(machines.map((m) => [m.name, m.file])).toEqual([
      ['session', 'machines/session.machine.ts'],
      ['supervisor', 'machines/supervisor.machine.ts'],
    ]);
  });

  it('holds exactly what `npm run visualize` writes from the machines now', async () => {
    const files = await generateVisualizations();
    expect([...files.keys()].sort()).toEqual(['session.mmd', 'session.svg', 'supervisor.mmd', 'supervisor.svg']);
    const problems: string[] = [];
    for (const [file, content] of files) {
      const onDisk = await readFile(join(visualizationsDir, file), 'utf8').catch(() => null);
      if (onDisk === null) problems.push(`visualizations/${file} is missing`);
      else if (onDisk !== content) problems.push(`visualizations/${file} differs from its machine`);
    }
    for (const stale of await staleVisualizations(files)) problems.push(`visualizations/${stale} belongs to no machine`);
    expect(problems, `${problems.join('; ')}: ${FIX}`).toEqual([]);
  });
});
