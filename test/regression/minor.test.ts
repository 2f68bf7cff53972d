/** REVIEW: smaller defects, each proven against a real in-process server. */
import { randomBytes } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { hs256Verifier } from '../../src/auth/verifier.js';
import { mintToken } from '../../src/auth/token.js';
import { startInProcess } from '../helpers/in-process.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { sleep, TestClient } from '../helpers/ws-client.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('GET /v0/sessions/<malformed percent-encoding> is a 404 (or 400), not a 500 internal error', async () => {
  const s = await startInProcess();
  cleanups.push(() => s.close());
  const admin = await mintToken(TEST_SECRET, 'ops', 600, new Date(), { apx_admin: true });
  const res = await fetch(`${s.url}/v0/sessions/%E0%A4%A`, { headers: { Authorization: `Bearer ${admin}` } });
  const body = await res.json();
  expect(`${res.status} ${JSON.stringify(body)}`).toMatch(/^40[04] /);
});

it('an upgrade whose token check ends after shutdown began gets 503 (or CLOSED), never a silent 101 then 1001', async () => {
  // A verifier that takes 300 ms (a JWKS fetch, a slow Redis...).
  const fast = hs256Verifier(TEST_SECRET);
  const verifier = { kind: 'hs256' as const, verify: async (t: string) => (await sleep(300), fast.verify(t)) };
  const s = await startInProcess({}, { verifier });
  const token = await mintToken(TEST_SECRET, 'late', 600);
  const c = new TestClient(s.wsUrl, { hosts: ['192.0.2.1'], port: 40000, key: randomBytes(32).toString('base64url'), token });
  cleanups.push(() => c.close());
  let refusedWith: string | null = null;
  c.ws.once('unexpected-response', (_req, res) => (refusedWith = String(res.statusCode)));
  await sleep(50); // the upgrade is being checked
  const closing = s.close();
  await Promise.race([c.closed, new Promise<void>((resolve) => c.ws.once('unexpected-response', () => resolve()))]);
  await closing;
  // README: "new upgrades get 503" during shutdown, and every session gets CLOSED server_shutdown.
  expect({ refusedWith, statuses: c.statuses.map((f) => f.status), code: c.closeCode }).toSatisfy(
    (r: { refusedWith: string | null; statuses: string[]; code: number | null }) => r.refusedWith === '503' || r.statuses.includes('CLOSED'),
  );
});
