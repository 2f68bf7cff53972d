/**
 * autoprox as a stranger installs it: `npm pack`, then `npm install <tarball>` into an empty
 * directory (production dependencies only, from npm's cache where it has them). There the CLI
 * runs (`--version`, `keygen`, `token`, `serve`), `import('autoprox/client')` opens a session
 * to that server, the browser condition resolves to the browser build, and a TypeScript program
 * type-checks against the shipped `.d.ts`.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt } from '../helpers/server-process.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const INSTALL_TIMEOUT_MS = 180_000;
const SERVE_TIMEOUT_MS = 10_000;

let dir: string;

beforeAll(async () => {
  assertBuilt();
  dir = mkdtempSync(join(tmpdir(), 'autoprox-pack-'));
  const { stdout } = await run('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: ROOT, timeout: INSTALL_TIMEOUT_MS });
  const tarball = join(dir, stdout.trim().split('\n').at(-1)!);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--omit=dev', tarball], { cwd: dir, timeout: INSTALL_TIMEOUT_MS });
}, INSTALL_TIMEOUT_MS * 2);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const npx = (...args: string[]) => run('npx', ['--no-install', 'autoprox', ...args], { cwd: dir, timeout: 30_000 });

describe('the packed package, installed into an empty directory', () => {
  it('installs no dev dependency, and ships the CLI, the built code and the type declarations', () => {
    const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const installed = Object.keys(lock.packages).map((p) => p.replace(/^.*node_modules\//, ''));
    for (const dev of ['vitest', 'typescript', 'tsx', 'playwright-core', 'fast-check', '@viz-js/viz']) expect(installed).not.toContain(dev);
    const pkg = JSON.parse(readFileSync(join(dir, 'node_modules/autoprox/package.json'), 'utf8')) as { version: string };
    expect(pkg.version).toMatch(/^\d+\.\d+\.\d+/);
    for (const file of ['dist/src/cli.js', 'dist/src/client/node.js', 'dist/src/client/node.d.ts', 'dist/src/client/browser.js', 'dist/src/client/browser.d.ts', 'README.md']) {
      expect(() => readFileSync(join(dir, 'node_modules/autoprox', file))).not.toThrow();
    }
  });

  it('npx autoprox --version and keygen work', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect((await npx('--version')).stdout.trim()).toBe(pkg.version);
    expect((await npx('keygen')).stdout.trim()).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('a program imports autoprox/client and opens a session to the installed server', async () => {
    const secret = (await npx('keygen')).stdout.trim();
    const token = (await npx('token', '--sub', 'pack-test', `--jwt-secret=${secret}`)).stdout.trim();
    const server = spawn(join(dir, 'node_modules/.bin/autoprox'), ['serve', '--port', '0', '--udp-port', '0', `--jwt-secret=${secret}`], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the installed server did not listen')), SERVE_TIMEOUT_MS);
        createInterface({ input: server.stdout! }).on('line', (line) => {
          const entry = JSON.parse(line) as { msg: string; url?: string };
          if (entry.msg === 'listening' && entry.url) {
            clearTimeout(timer);
            resolve(entry.url);
          }
        });
      });
      writeFileSync(
        join(dir, 'program.mjs'),
        `import { connect, RefusedError } from 'autoprox/client';
const key = process.argv[2];
const session = await connect(${JSON.stringify(url)}, { hosts: ['127.0.0.1'], port: 40000, key, token: ${JSON.stringify(token)} });
const waiting = await new Promise((resolve) => session.on('status', (f) => f.status === 'UDP_WAITING' && resolve(f)));
const end = await session.close();
const refused = await connect(${JSON.stringify(url)}, { hosts: ['127.0.0.1'], port: 40000, key, token: 'nope' }).catch((e) => e);
console.log(JSON.stringify({ id: session.id, waiting: waiting.status, end, refused: refused instanceof RefusedError ? refused.code : String(refused) }));
`,
      );
      const key = (await npx('keygen')).stdout.trim();
      const { stdout } = await run(process.execPath, ['program.mjs', key], { cwd: dir, timeout: 20_000 });
      const result = JSON.parse(stdout) as Record<string, unknown>;
      expect(result).toMatchObject({ waiting: 'UDP_WAITING', end: { code: 1000, reason: 'client_closed' }, refused: 'invalid_token' });
      expect(result.id).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      server.kill('SIGTERM');
    }
  });

  it('the browser condition resolves to the browser build', async () => {
    const script = `import.meta.resolve('autoprox/client')`;
    const node = await run(process.execPath, ['--input-type=module', '-e', `console.log(${script})`], { cwd: dir });
    const browser = await run(process.execPath, ['--conditions=browser', '--input-type=module', '-e', `console.log(${script})`], { cwd: dir });
    expect(node.stdout.trim()).toMatch(/dist\/src\/client\/node\.js$/);
    expect(browser.stdout.trim()).toMatch(/dist\/src\/client\/browser\.js$/);
  });

  it('a TypeScript program and README\'s Node snippet type-check against the shipped declarations (and a wrong program does not)', async () => {
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, types: [] }, files: ['typed.ts'] }),
    );
    writeFileSync(
      join(dir, 'typed.ts'),
      `import { connect, type Session, type StatusFrame, RefusedError } from 'autoprox/client';
export async function main(key: string, token: string): Promise<number> {
  const session: Session = await connect('ws://127.0.0.1:8080', { hosts: ['203.0.113.7'], port: 40000, key, token });
  session.on('status', (frame: StatusFrame) => frame.rttMs);
  const ok: boolean = session.send(new Uint8Array(3));
  const err: unknown = null;
  if (err instanceof RefusedError) return err.status ?? 0;
  return ok ? (await session.close()).code : 0;
}
`,
    );
    await expect(run(process.execPath, [TSC, '-p', dir], { cwd: dir })).resolves.toBeDefined();
    // README's Node snippet, as printed there, type-checks too (its key and token declared).
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const snippet = /```ts\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf('### Node (and TypeScript)')))?.[1];
    expect(snippet, 'a ts block under "### Node (and TypeScript)"').toBeDefined();
    writeFileSync(join(dir, 'typed.ts'), `${snippet}\ndeclare const key: string, token: string;\nexport {};\n`);
    const readmeCheck = await run(process.execPath, [TSC, '-p', dir], { cwd: dir }).catch((e: { stdout: string }) => e);
    expect((readmeCheck as { stdout: string }).stdout).toBe('');
    writeFileSync(join(dir, 'typed.ts'), `import { connect } from 'autoprox/client';\nconnect('ws://x', { hosts: 'one', port: '1' });\n`);
    const failed = await run(process.execPath, [TSC, '-p', dir], { cwd: dir }).catch((e: { stdout: string }) => e);
    expect((failed as { stdout: string }).stdout).toMatch(/error TS2322|error TS2345|error TS2739/);
  });
});
