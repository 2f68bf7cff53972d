/**
 * The browser build of the client library reaches no Node built-in and no package: every file
 * dist/src/client/browser.js imports, followed to the end, imports only relative files. (The
 * browser test loads it in Chromium; this says why it can load anywhere else too.)
 */
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { assertBuilt } from '../helpers/server-process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ENTRY = join(ROOT, 'dist/src/client/browser.js');
const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s*['"]([^'"]+)['"]/gm;

function importsOf(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  return [...source.matchAll(IMPORT)].map((m) => m[1] ?? m[2] ?? m[3]!);
}

describe('the browser build', () => {
  it('imports only relative files, none of which reaches node: or a package', () => {
    assertBuilt();
    const seen = new Set<string>();
    const outside: string[] = [];
    const queue = [ENTRY];
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      for (const specifier of importsOf(file)) {
        if (specifier.startsWith('./') || specifier.startsWith('../')) queue.push(join(dirname(file), specifier));
        else outside.push(`${relative(ROOT, file)} imports ${specifier}`);
      }
    }
    expect(outside).toEqual([]);
    // It did follow the graph: the session and its codecs are in it, the Node build is not.
    const files = [...seen].map((f) => relative(join(ROOT, 'dist/src/client'), f));
    expect(files).toEqual(expect.arrayContaining(['browser.js', 'session.js', 'frames.js', 'errors.js', 'parameters.js']));
    expect(files).not.toContain('node.js');
  });

  it('the check sees a Node import where there is one (the Node build)', () => {
    expect(importsOf(join(ROOT, 'dist/src/client/node.js'))).toEqual(expect.arrayContaining(['node:tls', 'ws', './session.js']));
  });
});
