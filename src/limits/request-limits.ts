/**
 * Limits checked per HTTP request, before the upgrade (rate-limiter-flexible): upgrade attempts
 * per client IP, and failed authentications per client IP with a block period. In memory, or
 * shared by every instance through Redis.
 *
 * With Redis, every failed authentication is also counted in this instance's memory, so that
 * an address this instance saw failing stays blocked while Redis is unreachable (a limiter that
 * only fell back to a fresh in-memory count would unblock it at the first Redis error). Store
 * errors are logged (once per outage) and counted, never swallowed.
 */
import type { Redis } from 'ioredis';
import { isLoopback } from '../net/address.js';
import type { Logger } from '../log.js';
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

/** How the limits report a failing shared store. */
export interface LimitsReporting {
  log: Logger;
  /** Called once per store error, with the limit it hit ('upgrades' or 'auth_failures'). */
  storeError?: (limit: 'upgrades' | 'auth_failures') => void;
}

/** How long the client should wait (s), for Retry-After. */
export type RetryAfterS = number;

interface Limiter {
  /** This instance's count; the only one without Redis. */
  local: RateLimiterAbstract;
  /** The count shared through Redis, or null. */
  shared: RateLimiterAbstract | null;
}

function limiter(redis: Redis | null, keyPrefix: string, opts: { points: number; duration: number; blockDuration?: number }): Limiter {
  const local = new RateLimiterMemory({ keyPrefix, ...opts });
  const shared = redis ? new RateLimiterRedis({ storeClient: redis, keyPrefix, rejectIfRedisNotReady: true, ...opts }) : null;
  return { local, shared };
}

const retryAfter = (res: RateLimiterRes) => Math.max(1, Math.ceil(res.msBeforeNext / 1000));

export class RequestLimits {
  readonly #upgrades: Limiter | null;
  readonly #authFailures: Limiter | null;
  readonly #authPoints: number;
  readonly #limitLoopback: boolean;
  readonly #reporting: LimitsReporting | null;
  /** While the store fails: logged once, until it answers again. */
  #storeFailing = false;

  constructor(config: RequestLimitConfig, redis: Redis | null, reporting: LimitsReporting | null = null) {
    this.#limitLoopback = config.limitLoopback;
    this.#reporting = reporting;
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

  #failed(limit: 'upgrades' | 'auth_failures', err: unknown): void {
    this.#reporting?.storeError?.(limit);
    if (this.#storeFailing) return;
    this.#storeFailing = true;
    this.#reporting?.log.warn({ limit, err: (err as Error).message }, 'redis limits store failed: this instance counts on its own until it answers again');
  }

  #answered(): void {
    if (!this.#storeFailing) return;
    this.#storeFailing = false;
    this.#reporting?.log.info('redis limits store answers again: limits are shared again');
  }

  /** Counts an upgrade attempt; returns the wait when over the limit. */
  async upgradeAttempt(ip: string): Promise<RetryAfterS | null> {
    if (!this.#upgrades || !this.applies(ip)) return null;
    const { shared, local } = this.#upgrades;
    try {
      if (shared) {
        try {
          await shared.consume(ip);
          this.#answered();
          return null;
        } catch (err) {
          if (err instanceof RateLimiterRes) throw err;
          this.#failed('upgrades', err);
        }
      }
      await local.consume(ip);
      return null;
    } catch (res) {
      if (res instanceof RateLimiterRes) return retryAfter(res);
      throw res;
    }
  }

  /** The wait when this IP is blocked for failed authentications (here, or by the shared count). */
  async authBlocked(ip: string): Promise<RetryAfterS | null> {
    if (!this.#authFailures || !this.applies(ip)) return null;
    const { shared, local } = this.#authFailures;
    const over = (res: RateLimiterRes | null) => (res && res.consumedPoints > this.#authPoints ? retryAfter(res) : null);
    const here = over(await local.get(ip));
    if (here !== null || !shared) return here;
    try {
      const everywhere = over(await shared.get(ip));
      this.#answered();
      return everywhere;
    } catch (err) {
      this.#failed('auth_failures', err);
      return null;
    }
  }

  async authFailed(ip: string): Promise<void> {
    if (!this.#authFailures || !this.applies(ip)) return;
    const { shared, local } = this.#authFailures;
    const swallowBlocked = (err: unknown) => {
      // A rejection with RateLimiterRes is the limit doing its job: this IP is now over it.
      if (!(err instanceof RateLimiterRes)) throw err;
    };
    await local.consume(ip).catch(swallowBlocked);
    if (!shared) return;
    try {
      await shared.consume(ip).catch(swallowBlocked);
      this.#answered();
    } catch (err) {
      this.#failed('auth_failures', err);
    }
  }
}
