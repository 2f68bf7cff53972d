/**
 * The house rules, checked: what a file may import follows from its folder (README,
 * "Development"). The pure floors (machines/, src/protocol/, src/net/) import nothing of the IO
 * edge; sockets and WebSockets are touched only at the edge; nothing ships that imports the tools.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;

function files(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    return statSync(join(root, path)).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** Every module a file imports (type-only imports too), resolved to a path from the root, or the package name. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  const found = [...text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'/gm)].map((m) => m[1]!);
  return found.map((spec) => (spec.startsWith('.') ? relative(root, join(root, file, '..', spec)).replace(/\.js$/, '.ts') : spec));
}

const all = [...files('machines'), ...files('src')];

const rules: Array<{ folder: string; may: RegExp; why: string }> = [
  { folder: 'machines/', may: /^(xstate|machines\/)/, why: 'statecharts are pure: XState and each other only' },
  { folder: 'src/protocol/', may: /^(node:crypto|src\/protocol\/)/, why: 'codecs and crypto: bytes in, value out' },
  { folder: 'src/net/', may: /^(node:net|src\/net\/|machines\/endpoint\.ts)/, why: 'address rules: pure' },
  { folder: 'src/limits/', may: /^(node:crypto|ioredis|rate-limiter-flexible|src\/limits\/|src\/net\/|src\/log\.ts|src\/clock\.ts|machines\/endpoint\.ts)/, why: 'limits know no sockets, sessions or HTTP' },
  { folder: 'src/auth/', may: /^(node:|jose|src\/auth\/|src\/errors\.ts|src\/net\/)/, why: 'tokens: no sockets, no sessions' },
  { folder: 'src/client/', may: /^(src\/client\/|ws$|node:tls$)/, why: 'the client library stands alone: it ships to programs and browsers, not with the server' },
];

describe('house rules: imports follow the folders', () => {
  it.each(rules.map((r) => [r.folder, r] as const))('%s', (_folder, rule) => {
    const offending = all
      .filter((f) => f.startsWith(rule.folder))
      .flatMap((f) => importsOf(f).filter((i) => !rule.may.test(i)).map((i) => `${f} imports ${i}`));
    expect(offending, rule.why).toEqual([]);
  });

  it('sockets (node:dgram) only in the UDP edge; WebSockets (ws) only where clients are served', () => {
    const dgram = all.filter((f) => importsOf(f).includes('node:dgram'));
    expect(dgram.sort()).toEqual(['src/io/switchboard.ts', 'src/io/udp-socket.actor.ts', 'src/relay/relay-sockets.ts']);
    const ws = all.filter((f) => importsOf(f).includes('ws'));
    for (const f of ws) expect(f, `${f} imports ws`).toMatch(/^src\/(io|http|session|observe\/inspector\.ts|cli\/|client\/node\.ts)/);
  });

  it('in the client library, only the Node build reaches outside it (ws, node:tls): the rest runs in browsers', () => {
    const outside = all.filter((f) => f.startsWith('src/client/') && f !== 'src/client/node.ts').flatMap((f) => importsOf(f).filter((i) => !i.startsWith('src/client/')).map((i) => `${f} imports ${i}`));
    expect(outside).toEqual([]);
    expect(importsOf('src/client/node.ts')).toEqual(expect.arrayContaining(['ws', 'src/client/session.ts']));
  });

  it('git tracks no symbolic link and nothing under node_modules or dist (a worktree once committed its node_modules link)', () => {
    const tracked = execFileSync('git', ['ls-files', '-s'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean);
    expect(tracked.length).toBeGreaterThan(100); // it did read the index
    expect(tracked.filter((line) => line.startsWith('120000 '))).toEqual([]);
    expect(tracked.map((line) => line.split('\t')[1]!).filter((path) => /^(node_modules|dist)(\/|$)/.test(path))).toEqual([]);
  });

  it('nothing that ships imports the tools (src/tools is not built into dist/) or the tests', () => {
    const shipped = all.filter((f) => !f.startsWith('src/tools/'));
    const offending = shipped.flatMap((f) => importsOf(f).filter((i) => i.startsWith('src/tools/') || i.startsWith('test/')).map((i) => `${f} -> ${i}`));
    expect(offending).toEqual([]);
  });

  it('no file over about 400 lines in src/ or machines/ without a line at its top saying why', () => {
    const long = all.filter((f) => readFileSync(join(root, f), 'utf8').split('\n').length > 420);
    const unexplained = long.filter((f) => !/long:|over 400 lines/i.test(readFileSync(join(root, f), 'utf8').slice(0, 600)));
    expect(unexplained).toEqual([]);
  });
});
