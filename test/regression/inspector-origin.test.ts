/**
 * Regression (found by review): the --inspect relay accepts a WebSocket from any Origin. WebSockets are not bound by
 * the same-origin policy, so any web page open in the operator's browser (the browser README
 * tells them to point at 127.0.0.1:4242, also through an ssh tunnel) can read the live stream:
 * every session's id, candidate hosts, learned and peer endpoints.
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { afterEach, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { startInspector } from '../../src/observe/inspector.js';
import { startInProcess } from '../helpers/in-process.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { TestClient } from '../helpers/ws-client.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('a page from another origin cannot read the inspector stream', async () => {
  const inspector = await startInspector(0);
  cleanups.push(() => inspector.close());
  const s = await startInProcess({}, { inspect: inspector.inspect });
  cleanups.push(() => s.close());
  const token = await mintToken(TEST_SECRET, 'x', 600);
  const c = new TestClient(s.wsUrl, { hosts: ['198.51.100.77'], port: 40000, key: randomBytes(32).toString('base64url'), token });
  cleanups.push(() => c.close());
  await c.waitForStatus('UDP_WAITING');

  const evil = new WebSocket(`ws://127.0.0.1:${inspector.port}/stream`, { origin: 'https://evil.example' });
  const text = await new Promise<string>((resolve) => {
    let all = '';
    evil.on('message', (m) => (all += m.toString()));
    evil.on('error', () => resolve('refused'));
    evil.on('unexpected-response', () => resolve('refused'));
    setTimeout(() => resolve(all), 500);
  });
  evil.terminate();
  expect(text.includes('198.51.100.77') ? 'the peer address leaked to https://evil.example' : text).toBe('refused');
});
