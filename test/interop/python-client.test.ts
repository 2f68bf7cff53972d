/**
 * The WebSocket API needs nothing from JavaScript: README's Python client (taken from README
 * itself, so the snippet there is the one that works) runs on Debian's python3-websockets
 * against a real server, with a Node program using the client library on the other server:
 * a message each way, then a clean close that the Node side sees as `peer_closed`.
 * CI installs python3-websockets and sets AUTOPROX_REQUIRE_PYTHON=1: there it is never skipped.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { connect, type StatusFrame } from '../../src/client/node.js';
import { startInProcess, type InProcessServer } from '../helpers/in-process.js';
import { FAST_FLAGS, TEST_SECRET } from '../helpers/server-process.js';

/** Debian's python3 first (where python3-websockets installs), then whatever python3 is on PATH. */
const PYTHON = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import websockets'], { stdio: 'ignore' }).status === 0);
const required = process.env.AUTOPROX_REQUIRE_PYTHON === '1';
const PYTHON_TIMEOUT_MS = 20_000;

function readmePythonClient(): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('### Python'));
  const code = /```python\n([\s\S]*?)```/.exec(section)?.[1];
  if (!code) throw new Error('README has no python block under "### Python"');
  return code;
}

describe.runIf(PYTHON !== undefined || required)('a Python client (README) and a Node client (the library), across two servers', () => {
  let A: InProcessServer;
  let B: InProcessServer;
  let dir: string;

  beforeAll(async () => {
    if (!PYTHON) throw new Error('no python3 with the websockets package: apt-get install python3-websockets');
    const fast = Object.fromEntries(Array.from({ length: FAST_FLAGS.length / 2 }, (_, i) => [FAST_FLAGS[2 * i]!.slice(2), FAST_FLAGS[2 * i + 1]!]));
    [A, B] = await Promise.all([startInProcess(fast), startInProcess(fast)]);
    dir = mkdtempSync(join(tmpdir(), 'autoprox-python-'));
    writeFileSync(join(dir, 'client.py'), readmePythonClient());
  });

  afterAll(async () => {
    await Promise.all([A?.close(), B?.close()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('exchange a message each way, then the Python side closes cleanly', async () => {
    const key = randomBytes(32).toString('base64url');
    const token = await mintToken(TEST_SECRET, 'python-interop', 600);
    const node = await connect(B.url, { hosts: ['127.0.0.1'], port: A.udp.ipv4!, key, token });
    const heard: string[] = [];
    node.on('message', (m) => {
      heard.push(Buffer.from(m).toString());
      node.send(Buffer.from('hello from node'));
    });
    const peerClosed = new Promise<StatusFrame>((resolve) => node.on('status', (f) => f.reason === 'peer_closed' && resolve(f)));
    try {
      const python = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(PYTHON!, [join(dir, 'client.py'), A.url.replace(/^http/, 'ws'), '127.0.0.1', String(B.udp.ipv4), key, token], { timeout: PYTHON_TIMEOUT_MS }, (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
      expect(python.stderr).toMatch(/'status': 'UDP_ESTABLISHED'/);
      expect(python.code, python.stderr).toBe(0);
      expect(python.stdout.trim()).toBe('hello from node');
      expect(heard).toEqual(['hello from python']);
      expect(await peerClosed).toMatchObject({ status: 'UDP_WAITING', reason: 'peer_closed' });
    } finally {
      await node.close();
    }
  });
});
