/**
 * Regression (found by review): the `listening` line is logged before cli.ts installs the SIGTERM/SIGINT handlers, so a
 * SIGTERM sent as soon as the server says it listens kills it by the default action (no CLOSE to
 * peers, killed by signal instead of exit 0). Races; fails most runs of 20.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { expect, it } from 'vitest';
import { CLI } from '../helpers/server-process.js';

it('SIGTERM right after "listening" is a graceful shutdown (exit 0), 20 times out of 20', async () => {
  let killed = 0;
  for (let i = 0; i < 20; i++) {
    const p = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--udp-port', '0', '--jwt-secret=0123456789abcdef0123456789abcdef'], { stdio: ['ignore', 'pipe', 'ignore'] });
    createInterface({ input: p.stdout! }).once('line', () => p.kill('SIGTERM'));
    const signal = await new Promise((r) => p.once('exit', (_c, s) => r(s)));
    if (signal) killed++;
  }
  expect(killed).toBe(0);
}, 60_000);
