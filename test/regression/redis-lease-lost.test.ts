/**
 * Regression (found by review): RedisSessionCounter renews leases with `ZADD ... XX`: a lease that is gone from Redis
 * (Redis restarted or failed over, or an outage longer than the 30 s lease let it expire) is
 * never re-created while its session lives. After Redis comes back, the subject's open
 * sessions are invisible and --max-sessions-per-subject is exceeded, even on one instance.
 * README: "If Redis goes away, each instance falls back to counting alone ... when it comes
 * back, sharing resumes."
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { connectRedis } from '../../src/limits/redis.js';
import { createLogger } from '../../src/log.js';
import { freePort } from '../helpers/free-port.js';
import { startInProcess } from '../helpers/in-process.js';
import { redisAvailable, redisRequired } from '../helpers/redis-server.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { attempt, bearer, proxyQuery } from '../helpers/upgrade.js';
import { sleep, TestClient } from '../helpers/ws-client.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function redisOn(port: number): ChildProcess {
  return spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
}
const kill = (p: ChildProcess) => new Promise((r) => (p.exitCode !== null ? r(null) : (p.once('exit', r), p.kill('SIGKILL'))));

it.runIf(redisAvailable || redisRequired)('after a Redis restart, renewal puts open sessions back: the per-subject limit holds', async () => {
  const port = await freePort();
  let proc = redisOn(port);
  cleanups.push(() => kill(proc));
  await sleep(300);
  const redis = await connectRedis(`redis://127.0.0.1:${port}`, createLogger('silent'));
  cleanups.push(() => redis.disconnect());
  const s = await startInProcess({ 'max-sessions-per-subject': '1', 'upgrades-per-ip-per-s': '0' }, { redis });
  cleanups.push(() => s.close());
  const token = await mintToken(TEST_SECRET, 'tenant', 600);
  const key = randomBytes(32).toString('base64url');
  const url = `${s.url.replace(/^http/, 'ws')}${proxyQuery({ host: '192.0.2.1', port: '40000', key })}`;

  const a = new TestClient(s.wsUrl, { hosts: ['192.0.2.1'], port: 40000, key, token });
  cleanups.push(() => a.close());
  await a.opened;
  expect(await attempt(url, bearer(token))).toMatchObject({ status: 429 }); // the limit holds

  await kill(proc);
  proc = redisOn(port); // back, empty (as after a restart or failover)
  for (let i = 0; i < 50 && redis.status !== 'ready'; i++) await sleep(100);
  expect(redis.status).toBe('ready');
  await sleep(11_000); // more than one renewal period (10 s): renewal does not restore the lease

  // Session `a` is still open on this very instance: a second one must still be refused.
  const r = await attempt(url, bearer(token));
  expect(r === 'open' ? 'open (limit of 1 exceeded)' : r.status).toBe(429);
}, 30_000);
