/**
 * Limits checked per HTTP request, before the upgrade (rate-limiter-flexible): upgrade attempts
 * per client IP, and failed authentications per client IP with a block period. In memory, or
 * shared by every instance through Redis (with an in-memory insurance limiter while Redis is
 * down).
 */
import type { Redis } from 'ioredis';
import { isLoopback } from '../net/address.js';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';

export interface RequestLimitConfig {
  /** Upgrade attempts per client IP per second; 0 = off. */
  upgradesPerIpPerS: number;
  /** Failed authentications per client IP within the window before a block; 0 = off. */
  authFailuresPerIp: number;
  authFailureWindowS: number;
  authBlockS: number;
  /** The limits apply to loopback clients too (by default they are exempt). */
  limitLoopback: boolean;
}

/** How long the client should wait (s), for Retry-After. */
export type RetryAfterS = number;

function limiter(redis: Redis | null, keyPrefix: string, opts: { points: number; duration: number; blockDuration?: number }): RateLimiterAbstract {
  const memory = new RateLimiterMemory({ keyPrefix, ...opts });
  if (!redis) return memory;
  return new RateLimiterRedis({ storeClient: redis, keyPrefix, insuranceLimiter: memory, rejectIfRedisNotReady: true, ...opts });
}

const retryAfter = (res: RateLimiterRes) => Math.max(1, Math.ceil(res.msBeforeNext / 1000));

export class RequestLimits {
  readonly #upgrades: RateLimiterAbstract | null;
  readonly #authFailures: RateLimiterAbstract | null;
  readonly #authPoints: number;
  readonly #limitLoopback: boolean;

  constructor(config: RequestLimitConfig, redis: Redis | null) {
    this.#limitLoopback = config.limitLoopback;
    this.#upgrades =
      config.upgradesPerIpPerS > 0 ? limiter(redis, 'apx:upgrade', { points: config.upgradesPerIpPerS, duration: 1 }) : null;
    this.#authPoints = config.authFailuresPerIp;
    this.#authFailures =
      config.authFailuresPerIp > 0
        ? limiter(redis, 'apx:authfail', {
            points: config.authFailuresPerIp,
            duration: config.authFailureWindowS,
            blockDuration: config.authBlockS,
          })
        : null;
  }

  /** Whether the per-IP limits count this client: local programs share the loopback address. */
  applies(ip: string): boolean {
    return this.#limitLoopback || !isLoopback(ip);
  }

  /** Counts an upgrade attempt; returns the wait when over the limit. */
  async upgradeAttempt(ip: string): Promise<RetryAfterS | null> {
    if (!this.#upgrades || !this.applies(ip)) return null;
    try {
      await this.#upgrades.consume(ip);
      return null;
    } catch (res) {
      if (res instanceof RateLimiterRes) return retryAfter(res);
      return null; // the store failed and so did the insurance: fail open, never lock everyone out
    }
  }

  /** The wait when this IP is blocked for failed authentications. */
  async authBlocked(ip: string): Promise<RetryAfterS | null> {
    if (!this.#authFailures || !this.applies(ip)) return null;
    const res = await this.#authFailures.get(ip).catch(() => null);
    if (res && res.consumedPoints > this.#authPoints) return retryAfter(res);
    return null;
  }

  async authFailed(ip: string): Promise<void> {
    if (!this.#authFailures || !this.applies(ip)) return;
    await this.#authFailures.consume(ip).catch(() => {});
  }
}
