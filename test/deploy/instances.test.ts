/**
 * Several instances side by side: two real server processes sharing one real redis-server hold a
 * per-subject session limit across both.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { redisAvailable, redisRequired, startRedis, type RedisServer } from '../helpers/redis-server.js';
import { killAllServers, startServerProcess, TEST_SECRET } from '../helpers/server-process.js';
import { attempt, bearer, proxyQuery } from '../helpers/upgrade.js';
import { TestClient } from '../helpers/ws-client.js';

const clients: TestClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await killAllServers();
});

describe.runIf(redisAvailable || redisRequired)('two instances, one Redis', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis?.stop());

  it('hold a per-subject session limit across both', async () => {
    const flags = ['--udp-port', '0', '--jwt-secret', TEST_SECRET, '--redis-url', redis.url, '--max-sessions-per-subject', '3'];
    const [one, two] = await Promise.all([startServerProcess(flags), startServerProcess(flags)]);
    const token = await mintToken(TEST_SECRET, 'tenant', 600);
    const key = randomBytes(32).toString('base64url');
    const open = (s: typeof one) => {
      const c = new TestClient(s.wsUrl, { hosts: ['192.0.2.1'], port: 40000, key, token });
      clients.push(c);
      return c;
    };
    await Promise.all([open(one).opened, open(two).opened, open(one).opened]);
    for (const s of [one, two]) {
      const r = await attempt(`${s.url.replace(/^http/, 'ws')}${proxyQuery({ host: '192.0.2.1', port: '40000', key })}`, bearer(token));
      expect(r).toMatchObject({ status: 429, body: { error: { code: 'too_many_sessions' } } });
    }
    // Another subject is not affected, on either instance.
    const other = await mintToken(TEST_SECRET, 'other-tenant', 600);
    expect(await attempt(`${two.url.replace(/^http/, 'ws')}${proxyQuery({ host: '192.0.2.1', port: '40000', key })}`, bearer(other))).toBe('open');
    // A session ends on one instance: the other may open one again.
    await clients[0]!.close();
    await new Promise((r) => setTimeout(r, 200));
    await open(two).opened;
  });

  it('refuse to start when Redis is not reachable, naming it', async () => {
    await expect(startServerProcess(['--udp-port', '0', '--jwt-secret', TEST_SECRET, '--redis-url', 'redis://127.0.0.1:1/0'])).rejects.toThrow(/redis at 127\.0\.0\.1:1 is not reachable/);
  });
});
