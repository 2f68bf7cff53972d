/**
 * The client library's browser build in a real headless Chromium: a small page imports
 * dist/src/client/browser.js, opens a session on one server with `access_token`, and talks to
 * a Node program using the library on the other server (both directions), then closes cleanly.
 * CI installs chromium and sets AUTOPROX_REQUIRE_BROWSER=1, so there it is never skipped.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { connect } from '../../src/client/node.js';
import { chromiumAvailable, chromiumRequired, keepOnLoopback, launchChromium } from '../helpers/browser.js';
import { startInProcess, type InProcessServer } from '../helpers/in-process.js';
import { assertBuilt, FAST_FLAGS, TEST_SECRET } from '../helpers/server-process.js';

const CLIENT_DIR = fileURLToPath(new URL('../../dist/src/client/', import.meta.url));
const ROUNDS = 3;

/** The page a program would write: README, "Using autoprox from your program" (browser). */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>autoprox from a browser</title>
<pre id="log"></pre>
<script type="module">
import { connect } from './client/browser.js';
const { server, hosts, port, key, token, rounds } = JSON.parse(decodeURIComponent(location.hash.slice(1)));
const log = (line) => (document.getElementById('log').textContent += line + '\\n');
const result = { statuses: [], received: [], end: null, error: null };
try {
  const session = await connect(server, { hosts, port, key, token });
  result.statuses.push(session.status.status);
  session.on('status', (frame) => { result.statuses.push(frame.status); log(JSON.stringify(frame)); });
  await session.established({ timeoutMs: 10000 });
  for (let i = 0; i < rounds; i++) session.send(new TextEncoder().encode('browser ' + i));
  for await (const message of session) {
    result.received.push(new TextDecoder().decode(message));
    if (result.received.length === rounds) break;
  }
  result.end = await session.close();
} catch (err) {
  result.error = { name: err.name, code: err.code, status: err.status ?? null, message: err.message };
}
window.result = result;
</script>
`;

describe.runIf(chromiumAvailable || chromiumRequired)('the client library in headless Chromium', () => {
  let browser: Browser;
  let web: Server;
  let webUrl: string;
  let A: InProcessServer;
  let B: InProcessServer;
  let token: string;

  beforeAll(async () => {
    assertBuilt();
    browser = await launchChromium();
    const fast = Object.fromEntries(Array.from({ length: FAST_FLAGS.length / 2 }, (_, i) => [FAST_FLAGS[2 * i]!.slice(2), FAST_FLAGS[2 * i + 1]!]));
    [A, B] = await Promise.all([startInProcess(fast), startInProcess(fast)]);
    token = await mintToken(TEST_SECRET, 'browser-library-test', 600);
    // A plain static server for the page and the built library, as a program's site would be.
    web = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (path === '/') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
        return;
      }
      const name = path.match(/^\/client\/([a-z-]+\.js)$/)?.[1];
      if (name && existsSync(CLIENT_DIR + name)) {
        res.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(CLIENT_DIR + name));
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    webUrl = `http://127.0.0.1:${(web.address() as AddressInfo).port}/`;
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    await Promise.all([A?.close(), B?.close()]);
    await new Promise((resolve) => web?.close(resolve));
  });

  async function openPage(params: Record<string, unknown>): Promise<{ page: Page; offsite: string[] }> {
    const page = await browser.newPage();
    const offsite = await keepOnLoopback(page);
    await page.goto(`${webUrl}#${encodeURIComponent(JSON.stringify(params))}`);
    return { page, offsite };
  }

  it('a page opens a session with access_token and exchanges messages both ways with a Node program, then closes with 1000', async () => {
    const key = randomBytes(32).toString('base64url');
    // The Node program on B answers each message from the browser.
    const node = await connect(B.url, { hosts: ['127.0.0.1'], port: A.udp.ipv4!, key, token });
    const heard: string[] = [];
    node.on('message', (m) => {
      const text = Buffer.from(m).toString();
      heard.push(text);
      node.send(Buffer.from(`node heard ${text}`));
    });
    try {
      const { page, offsite } = await openPage({ server: A.url.replace(/^http/, 'ws'), hosts: ['127.0.0.1'], port: B.udp.ipv4, key, token, rounds: ROUNDS });
      await page.waitForFunction('"result" in window', undefined, { timeout: 20_000 });
      const result = (await page.evaluate('window.result')) as {
        statuses: string[];
        received: string[];
        end: unknown;
        error: unknown;
      };
      expect(result.error).toBeNull();
      expect(result.statuses.slice(0, 3)).toEqual(['CONNECTED', 'UDP_WAITING', 'UDP_ESTABLISHED']);
      expect(result.received).toEqual(Array.from({ length: ROUNDS }, (_, i) => `node heard browser ${i}`));
      expect(result.end).toEqual({ code: 1000, reason: 'client_closed', message: expect.any(String) });
      expect(heard).toEqual(Array.from({ length: ROUNDS }, (_, i) => `browser ${i}`));
      // Nothing left loopback (a browser can send no header: the token went as access_token).
      expect(offsite).toEqual([]);
      await page.close();
    } finally {
      await node.close();
    }
  });

  it('a refused token fails connect with a RefusedError (status null, upgrade_failed: a browser does not show the HTTP answer)', async () => {
    const { page } = await openPage({ server: A.url.replace(/^http/, 'ws'), hosts: ['127.0.0.1'], port: B.udp.ipv4, key: randomBytes(32).toString('base64url'), token: 'not-a-token', rounds: 1 });
    await page.waitForFunction('"result" in window', undefined, { timeout: 20_000 });
    const result = (await page.evaluate('window.result')) as { error: Record<string, unknown> };
    expect(result.error).toMatchObject({ name: 'RefusedError', code: 'upgrade_failed', status: null });
    await page.close();
  });
});
