/**
 * `npm run autoprox -- <command>` in a checkout that was never built (issue 14: running the CLI
 * before building printed Node's "Cannot find module" stack trace): it builds first, then runs.
 * A copy of the checkout without dist/ (sources and node_modules linked, not copied).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'autoprox-unbuilt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A build of the whole tree takes seconds, more on a busy machine. */
const BUILD_TIMEOUT_MS = 120_000;

it('npm run autoprox builds a checkout that was never built, then runs the command', { timeout: BUILD_TIMEOUT_MS + 10_000 }, () => {
  for (const file of ['package.json', 'tsconfig.json']) copyFileSync(join(root, file), join(dir, file));
  for (const link of ['src', 'machines', 'node_modules']) symlinkSync(join(root, link), join(dir, link));
  expect(existsSync(join(dir, 'dist'))).toBe(false);
  const r = spawnSync('npm', ['run', '--silent', 'autoprox', '--', '--version'], { cwd: dir, encoding: 'utf8', timeout: BUILD_TIMEOUT_MS });
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  expect({ status: r.status, stdout: r.stdout, stack: /\n\s+at /.test(r.stderr) }).toEqual({ status: 0, stdout: `${version}\n`, stack: false });
  expect(existsSync(join(dir, 'dist/src/cli.js'))).toBe(true);
});
