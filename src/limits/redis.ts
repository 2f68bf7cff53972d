/** The shared Redis connection for limits (`--redis-url`), via ioredis. */
import { Redis } from 'ioredis';
import type { Logger } from '../log.js';

/** How long start-up waits for Redis (ms); after that a Redis outage falls back to local limits. */
export const REDIS_CONNECT_TIMEOUT_MS = 5000;

export class RedisUnavailable extends Error {
  readonly code = 'redis_unavailable';
}

/** Connects and waits until Redis answers; throws RedisUnavailable naming the URL's host. */
export async function connectRedis(url: string, log: Logger): Promise<Redis> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    // Keep retrying in the background after start-up, at most every 2 s.
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
  let lastError = '';
  client.on('error', (err: Error) => {
    if (err.message !== lastError) log.warn({ err: err.message }, 'redis error: limits fall back to this instance');
    lastError = err.message;
  });
  client.on('ready', () => {
    if (lastError) log.info('redis is back: limits are shared again');
    lastError = '';
  });
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    client.disconnect();
    const where = (() => {
      try {
        const u = new URL(url);
        return `${u.hostname}:${u.port || 6379}`;
      } catch {
        return 'the given URL';
      }
    })();
    throw new RedisUnavailable(`redis at ${where} is not reachable: ${(err as Error).message}`);
  }
  return client;
}
