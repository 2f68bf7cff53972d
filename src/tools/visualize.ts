/**
 * `npm run visualize`: writes `visualizations/<name>.mmd` and `visualizations/<name>.svg` for every
 * machine exported as `<name>Machine` from `machines/*.machine.ts`, generated from the machine
 * definitions (see ./diagram/). Stale `.mmd`/`.svg` files of machines that no longer exist are
 * removed: the folder holds generated files only.
 *
 * Runs from source (`node --import tsx src/tools/visualize.ts`, importing `machines/*.machine.ts`):
 * src/tools/ is not built into dist/, since only this command and the tests use it.
 */
import { readdirSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { instance } from '@viz-js/viz';
import { StateMachine, type AnyStateMachine } from 'xstate';
import { packageRoot } from '../package-root.js';
import { toDot } from './diagram/dot.js';
import { toMermaid } from './diagram/mermaid.js';
import { describeMachine } from './diagram/model.js';

const here = fileURLToPath(import.meta.url);
/** `.ts` when run from source (tests), `.js` when run from dist/. */
const extension = here.endsWith('.ts') ? '.ts' : '.js';

export { packageRoot };
export const visualizationsDir: string = join(packageRoot, 'visualizations');

export interface NamedMachine {
  /** The export name without `Machine`: `sessionMachine` -> `session`. */
  name: string;
  /** Source file, relative to the package root. */
  file: string;
  machine: AnyStateMachine;
}

/** Every `*Machine` export of `machines/*.machine.ts`, sorted by name. */
export async function loadMachines(): Promise<NamedMachine[]> {
  const sources = readdirSync(join(packageRoot, 'machines'))
    .filter((f) => f.endsWith('.machine.ts'))
    .sort();
  // Next to this module: machines/ from src/tools/, dist/machines/ from dist/src/tools/.
  const compiled = join(dirname(here), '..', '..', 'machines');
  const found: NamedMachine[] = [];
  for (const source of sources) {
    const module = (await import(pathToFileURL(join(compiled, source.replace(/\.ts$/, extension))).href)) as Record<
      string,
      unknown
    >;
    for (const [exportName, value] of Object.entries(module)) {
      if (!exportName.endsWith('Machine') || !(value instanceof StateMachine)) continue;
      const name = exportName.slice(0, -'Machine'.length);
      const clash = found.find((m) => m.name === name);
      if (clash) throw new Error(`visualize: two machines named ${name} (${clash.file}, machines/${source})`);
      found.push({ name, file: `machines/${source}`, machine: value as AnyStateMachine });
    }
  }
  return found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** DOT to SVG with Graphviz (WASM); any Graphviz warning is an error, so bad DOT cannot slip by. */
export async function renderSvg(dot: string): Promise<string> {
  const viz = await instance();
  const result = viz.render(dot, { format: 'svg', engine: 'dot' });
  if (result.status !== 'success' || result.errors.length > 0) {
    const problems = result.errors.map((e) => `${e.level ?? 'error'}: ${e.message.trim()}`).join('\n');
    throw new Error(`visualize: Graphviz failed:\n${problems}`);
  }
  return result.output;
}

/** What `npm run visualize` writes: file name in visualizations/ -> content. */
export async function generateVisualizations(): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const { name, machine } of await loadMachines()) {
    const diagram = describeMachine(machine);
    files.set(`${name}.mmd`, toMermaid(diagram));
    files.set(`${name}.svg`, await renderSvg(toDot(diagram)));
  }
  return files;
}

/** Generated files in visualizations/ that no machine produces any more. */
export async function staleVisualizations(files: Map<string, string>): Promise<string[]> {
  const present = await readdir(visualizationsDir).catch(() => []);
  return present.filter((f) => /\.(mmd|svg)$/.test(f) && !files.has(f)).sort();
}

async function main(): Promise<void> {
  const files = await generateVisualizations();
  await mkdir(visualizationsDir, { recursive: true });
  for (const stale of await staleVisualizations(files)) {
    await rm(join(visualizationsDir, stale));
    console.log(`removed visualizations/${stale}`);
  }
  for (const [file, content] of files) {
    await writeFile(join(visualizationsDir, file), content);
    console.log(`wrote visualizations/${file}`);
  }
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
}
