/** REVIEW: README "Exit codes: ... 2 bad command line or configuration (the message names the flag)". */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { expect, it } from 'vitest';
import { CLI } from '../helpers/server-process.js';

const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 10_000 });

it('token with an unknown flag exits 2 with a usage message (not 1 with a stack trace)', () => {
  const r = run('token', '--sub', 'x', '--jwt-secret=abc', '--bogus');
  expect({ status: r.status, stack: /\n\s+at /.test(r.stderr) }).toEqual({ status: 2, stack: false });
});

it('token with a flag missing its value exits 2', () => {
  expect(run('token', '--sub', 'x', '--jwt-secret=abc', '--ttl').status).toBe(2);
});

it('serve --host with a name that does not resolve exits 2 naming --host', () => {
  const r = run('serve', '--host', 'not-a-host.invalid', '--port', '0', '--udp-port', '0', '--jwt-secret=0123456789abcdef0123456789abcdef');
  expect({ status: r.status, names: /--host/.test(r.stderr) }).toEqual({ status: 2, names: true });
});

it('--jwt-public-key refuses a private key PEM, as it refuses a private JWK', () => {
  const { privateKey } = generateKeyPairSync('ed25519');
  const path = `/tmp/review-private-${process.pid}.pem`;
  writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const s = spawnSync(process.execPath, [CLI, 'serve', '--jwt-public-key', path, '--port', '0', '--udp-port', '0'], { encoding: 'utf8', timeout: 3000 });
  // It starts (and would run) on a private key; README: "PEM (SPKI)", the JWK path refuses private keys.
  expect({ status: s.status, listening: /"msg":"listening"/.test(s.stdout) }).toEqual({ status: 2, listening: false });
});
