/**
 * Concurrent sessions per token subject. In memory, or shared through Redis as leases: each
 * session is a member of a sorted set scored by its lease end, renewed while it lives, so the
 * sessions of an instance that died without closing them expire within one lease.
 * (rate-limiter-flexible counts events per time window; it has no notion of "currently open".)
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { systemClock, type Clock, type Timer } from '../clock.js';
import type { Logger } from '../log.js';

/**
 * A Redis lease lasts this long (ms) and is renewed every third of it. Renewal re-adds every
 * session this instance holds, so leases lost to a Redis restart (or counted locally during an
 * outage) are back within a third of a lease.
 */
export const SESSION_LEASE_MS = 30_000;

export interface SessionCounter {
  /** Takes a slot for `sessionId` unless `subject` already holds `limit`; false when full. */
  acquire(subject: string, sessionId: string, limit: number): Promise<boolean>;
  release(subject: string, sessionId: string): void;
  close(): void;
}

export class MemorySessionCounter implements SessionCounter {
  readonly #held = new Map<string, Set<string>>();

  async acquire(subject: string, sessionId: string, limit: number): Promise<boolean> {
    return this.acquireNow(subject, sessionId, limit);
  }

  acquireNow(subject: string, sessionId: string, limit: number): boolean {
    const held = this.#held.get(subject) ?? new Set<string>();
    if (held.size >= limit) return false;
    held.add(sessionId);
    this.#held.set(subject, held);
    return true;
  }

  release(subject: string, sessionId: string): void {
    const held = this.#held.get(subject);
    if (!held) return;
    held.delete(sessionId);
    if (held.size === 0) this.#held.delete(subject);
  }

  close(): void {}
}

// Redis-side time keeps the leases of several instances on one clock.
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
return 1`;
const RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #ARGV - 1 do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[#ARGV]), ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[#ARGV]) * 2)
return 1`;

const keyOf = (subject: string) => `apx:sessions:${createHash('sha256').update(subject).digest('hex').slice(0, 32)}`;

/** A Redis operation of the session leases. */
export type LeaseOperation = 'acquire' | 'renew' | 'release';

export class RedisSessionCounter implements SessionCounter {
  readonly #local = new MemorySessionCounter();
  readonly #mine = new Map<string, Set<string>>();
  readonly #timer: Timer;
  /** Operations failing now: each logged once when it starts failing, and once when it works again. */
  readonly #failing = new Set<LeaseOperation>();

  /** @param onError called once per failed Redis operation (a metric) */
  constructor(
    private readonly redis: Redis,
    private readonly log: Logger,
    private readonly leaseMs = SESSION_LEASE_MS,
    private readonly onError: (operation: LeaseOperation) => void = () => {},
    clock: Clock = systemClock,
  ) {
    this.#timer = clock.every(Math.max(10, Math.floor(leaseMs / 3)), () => this.#renew());
  }

  #failed(operation: LeaseOperation, err: unknown): void {
    this.onError(operation);
    if (this.#failing.has(operation)) return;
    this.#failing.add(operation);
    const consequence: Record<LeaseOperation, string> = {
      acquire: 'the per-subject session limit is counted on this instance alone',
      renew: "this instance's sessions may expire from the shared per-subject count, which then undercounts them",
      release: 'ended sessions stay in the shared per-subject count until their lease expires',
    };
    this.log.warn({ operation, err: (err as Error).message }, `redis session lease ${operation} failed: ${consequence[operation]}`);
  }

  #worked(operation: LeaseOperation): void {
    if (this.#failing.delete(operation)) this.log.info({ operation }, `redis session lease ${operation} works again`);
  }

  async acquire(subject: string, sessionId: string, limit: number): Promise<boolean> {
    let ok: boolean;
    try {
      ok = (await this.redis.eval(ACQUIRE, 1, keyOf(subject), sessionId, limit, this.leaseMs)) === 1;
      this.#worked('acquire');
    } catch (err) {
      // Redis is down: count on this instance alone rather than refuse everyone.
      this.#failed('acquire', err);
      ok = this.#local.acquireNow(subject, sessionId, limit);
      if (!ok) return false;
    }
    if (ok) {
      const mine = this.#mine.get(subject) ?? new Set<string>();
      mine.add(sessionId);
      this.#mine.set(subject, mine);
    }
    return ok;
  }

  release(subject: string, sessionId: string): void {
    this.#local.release(subject, sessionId);
    const mine = this.#mine.get(subject);
    mine?.delete(sessionId);
    if (mine?.size === 0) this.#mine.delete(subject);
    this.redis.zrem(keyOf(subject), sessionId).then(
      () => this.#worked('release'),
      (err: unknown) => this.#failed('release', err),
    );
  }

  #renew(): void {
    for (const [subject, ids] of this.#mine) {
      this.redis.eval(RENEW, 1, keyOf(subject), ...ids, this.leaseMs).then(
        () => this.#worked('renew'),
        (err: unknown) => this.#failed('renew', err),
      );
    }
  }

  close(): void {
    this.#timer.cancel();
  }
}
