/**
 * Regression (issue 10, internal review): Redis errors of the shared limits were swallowed.
 * - Lease renewal and removal failed without a word: sessions silently fell out of (or stayed
 *   in) the shared per-subject count.
 * - An address blocked for failed authentications was unblocked at the first Redis error: the
 *   in-memory fallback had never seen its failures.
 * Each failure is now a log line (warn, once per outage, and one when Redis answers again) and
 * a metric, and blocking keeps this instance's own count through an outage. Real redis-server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { connectRedis } from '../../src/limits/redis.js';
import { RequestLimits } from '../../src/limits/request-limits.js';
import { RedisSessionCounter, type LeaseOperation } from '../../src/limits/session-counter.js';
import { freePort } from '../helpers/free-port.js';
import { startInProcess } from '../helpers/in-process.js';
import { captureLogs } from '../helpers/logs.js';
import { httpGet, metric } from '../helpers/metrics.js';
import { redisAvailable, redisRequired } from '../helpers/redis-server.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { eventually } from '../helpers/waiter.js';
import { sleep, TestClient } from '../helpers/ws-client.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function redisOn(port: number): ChildProcess {
  return spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
}
const kill = (p: ChildProcess) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : (p.once('exit', r), p.kill('SIGKILL'))));

async function redisServer() {
  const port = await freePort();
  const proc = redisOn(port);
  cleanups.push(() => kill(proc));
  const { log, lines } = captureLogs();
  let redis: Awaited<ReturnType<typeof connectRedis>> | null = null;
  for (let i = 0; i < 50 && !redis; i++) {
    await sleep(50);
    redis = await connectRedis(`redis://127.0.0.1:${port}`, log).catch(() => null);
  }
  if (!redis) throw new Error('redis-server did not start');
  cleanups.push(() => redis.disconnect());
  return { proc, redis, log, lines };
}

describe.runIf(redisAvailable || redisRequired)('Redis errors of the shared limits are seen', () => {
  it('an address blocked for failed authentications stays blocked while Redis is down; the outage is logged and counted', async () => {
    const { proc, redis, log, lines } = await redisServer();
    const errors: string[] = [];
    const limits = new RequestLimits(
      { upgradesPerIpPerS: 100, authFailuresPerIp: 3, authFailureWindowS: 60, authBlockS: 60, limitLoopback: true },
      redis,
      { log, storeError: (limit) => errors.push(limit) },
    );
    for (let i = 0; i < 4; i++) await limits.authFailed('198.51.100.7');
    expect(await limits.authBlocked('198.51.100.7')).toBeGreaterThan(0);
    expect(errors).toEqual([]); // Redis answered so far
    await kill(proc);
    await sleep(100);
    expect(await limits.authBlocked('198.51.100.7')).toBeGreaterThan(0); // still blocked
    expect(await limits.authBlocked('198.51.100.8')).toBeNull(); // and nobody else is
    await limits.authFailed('198.51.100.8');
    expect(await limits.upgradeAttempt('198.51.100.9')).toBeNull(); // counted here meanwhile
    expect(errors.length).toBeGreaterThanOrEqual(3);
    expect(new Set(errors)).toEqual(new Set(['auth_failures', 'upgrades']));
    const warnings = lines.filter((l) => l.msg.startsWith('redis limits store failed'));
    expect(warnings).toHaveLength(1); // once per outage, not once per request
    expect(warnings[0]!.level).toBe('warn');
  });

  it('lease renewal and removal failures are logged once each and counted; recovery is logged', async () => {
    const { proc, redis, log, lines } = await redisServer();
    const failed: LeaseOperation[] = [];
    const counter = new RedisSessionCounter(redis, log, 300, (operation) => failed.push(operation));
    cleanups.push(() => counter.close());
    expect(await counter.acquire('alice', 's1', 5)).toBe(true);
    expect(await counter.acquire('alice', 's2', 5)).toBe(true);
    await kill(proc);
    await eventually(() => failed.filter((o) => o === 'renew').length >= 2, 'renewals to fail', 5000);
    counter.release('alice', 's1');
    await eventually(() => failed.includes('release'), 'the removal to fail', 5000);
    const renewWarnings = lines.filter((l) => l.msg.startsWith('redis session lease renew failed'));
    expect(renewWarnings).toHaveLength(1);
    expect(renewWarnings[0]!.level).toBe('warn');
    expect(lines.filter((l) => l.msg.startsWith('redis session lease release failed'))).toHaveLength(1);
  });

  it('a server shows the failures in /metrics', async () => {
    const { proc, redis } = await redisServer();
    const s = await startInProcess({ 'max-sessions-per-subject': '2', 'limit-loopback': true, 'auth-failures-per-ip': '5' }, { redis });
    cleanups.push(() => s.close());
    await kill(proc);
    await sleep(100);
    // An upgrade with a bad token: the per-IP limits and the per-subject count all meet the outage.
    const bad = new TestClient(s.wsUrl, { hosts: ['127.0.0.1'], port: 40000, key: randomBytes(32).toString('base64url'), token: 'not-a-token' });
    await bad.opened.catch(() => {});
    const good = new TestClient(s.wsUrl, { hosts: ['127.0.0.1'], port: 40000, key: randomBytes(32).toString('base64url'), token: await mintToken(TEST_SECRET, 'bob', 60) });
    cleanups.push(() => good.close());
    await good.waitForStatus('UDP_WAITING'); // admitted all the same, counted locally
    const text = (await httpGet(`${s.url}/metrics`)).body;
    expect(metric(text, 'autoprox_redis_errors_total{operation="upgrades"}')).toBeGreaterThanOrEqual(1);
    expect(metric(text, 'autoprox_redis_errors_total{operation="auth_failures"}')).toBeGreaterThanOrEqual(1);
    expect(metric(text, 'autoprox_redis_errors_total{operation="acquire"}')).toBeGreaterThanOrEqual(1);
  });
});
