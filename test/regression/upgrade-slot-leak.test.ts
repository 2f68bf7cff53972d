/**
 * Regression (found by review): a request that passes admission but that `ws` then refuses (bad Sec-WebSocket-Key /
 * Version / Upgrade header) never releases its server slot nor its per-subject lease.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { rawRequest } from '../helpers/raw-http.js';
import { startInProcess, type InProcessServer } from '../helpers/in-process.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { attempt, bearer, proxyQuery } from '../helpers/upgrade.js';

const KEY = randomBytes(32).toString('base64url');
const good = { host: '192.0.2.1', port: '40000', key: KEY };
let s: InProcessServer | null = null;
afterEach(async () => {
  await s?.close();
  s = null;
});

const raw = rawRequest;

const badKeyUpgrade = (token: string) =>
  `GET ${proxyQuery(good)} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\nAuthorization: Bearer ${token}\r\n\r\n`;

describe('no slot leak when ws refuses an admitted upgrade', () => {
  it('--max-sessions: a bad-key upgrade holds no server slot', async () => {
    s = await startInProcess({ 'max-sessions': '1' });
    const token = await mintToken(TEST_SECRET, 'leak', 600);
    expect(await raw(s.url, badKeyUpgrade(token))).toMatch(/^HTTP\/1\.1 400 /);
    // No session is open, so a normal upgrade must succeed.
    const r = await attempt(s.wsUrl + '?' + new URLSearchParams(good).toString(), bearer(token));
    expect(r === 'open' ? 'open' : `${r.status} ${r.body.error.code}`).toBe('open');
  });

  it('per-subject limit: a bad-key upgrade holds no slot of the subject', async () => {
    s = await startInProcess({ 'max-sessions-per-subject': '1' });
    const token = await mintToken(TEST_SECRET, 'leak-sub', 600);
    expect(await raw(s.url, badKeyUpgrade(token))).toMatch(/^HTTP\/1\.1 400 /);
    const r = await attempt(s.wsUrl + '?' + new URLSearchParams(good).toString(), bearer(token));
    expect(r === 'open' ? 'open' : `${r.status} ${r.body.error.code}`).toBe('open');
  });
});
