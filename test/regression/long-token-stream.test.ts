/**
 * Regression (issue 10, internal review): the live-sessions event stream ended at once for an
 * admin token valid for more than about 24.8 days: it was closed by a setTimeout for the token's
 * remaining life, and Node clamps any delay over 2^31 - 1 ms to 1 ms.
 */
import { request } from 'node:http';
import { SignJWT } from 'jose';
import { afterEach, expect, it } from 'vitest';
import { afterLong, MAX_TIMER_MS } from '../../src/clock.js';
import { startInProcess } from '../helpers/in-process.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { sleep } from '../helpers/ws-client.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('a stream opened with a 30-day admin token stays open (and gets its updates)', async () => {
  const server = await startInProcess();
  cleanups.push(() => server.close());
  const token = await new SignJWT({ apx_admin: true }).setProtectedHeader({ alg: 'HS256' }).setSubject('ops').setExpirationTime('30d').sign(new TextEncoder().encode(TEST_SECRET));
  let ended = false;
  let events = 0;
  const req = request(`${server.url}/v0/sessions/events?access_token=${token}`, (res) => {
    expect(res.statusCode).toBe(200);
    res.on('data', (chunk: Buffer) => (events += chunk.toString().split('event: sessions').length - 1));
    res.on('end', () => (ended = true));
  });
  req.end();
  cleanups.push(() => req.destroy());
  await sleep(1500);
  expect(events).toBeGreaterThanOrEqual(1); // it did answer
  expect(ended).toBe(false);
});

it('afterLong waits out delays longer than setTimeout can, in steps', async () => {
  let now = 0;
  let fired = 0;
  const timer = afterLong(3 * MAX_TIMER_MS, () => fired++, () => now);
  now = 3 * MAX_TIMER_MS - 1; // the clock moved, but the first step has not run yet
  await sleep(5);
  expect(fired).toBe(0);
  timer.cancel();
  // A delay already due fires on the next turn, once.
  afterLong(-5, () => fired++);
  await sleep(5);
  expect(fired).toBe(1);
});
