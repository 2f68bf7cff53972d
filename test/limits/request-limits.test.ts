/** Per-IP limits in memory (the Redis side: test/regression/redis-errors-visible.test.ts). */
import { describe, expect, it } from 'vitest';
import { RequestLimits } from '../../src/limits/request-limits.js';

const config = { upgradesPerIpPerS: 3, authFailuresPerIp: 2, authFailureWindowS: 60, authBlockS: 60, limitLoopback: false };

describe('RequestLimits', () => {
  it('upgrade attempts per IP per second: the next one waits, other IPs do not', async () => {
    const limits = new RequestLimits(config, null);
    for (let i = 0; i < 3; i++) expect(await limits.upgradeAttempt('192.0.2.1')).toBeNull();
    expect(await limits.upgradeAttempt('192.0.2.1')).toBe(1);
    expect(await limits.upgradeAttempt('192.0.2.2')).toBeNull();
  });

  it('blocks an IP after more failed authentications than allowed, for the block time', async () => {
    const limits = new RequestLimits(config, null);
    for (let i = 0; i < 3; i++) await limits.authFailed('192.0.2.1');
    expect(await limits.authBlocked('192.0.2.1')).toBeGreaterThan(55);
    expect(await limits.authBlocked('192.0.2.2')).toBeNull();
  });

  it('exempts loopback clients unless --limit-loopback', async () => {
    const open = new RequestLimits(config, null);
    for (let i = 0; i < 10; i++) expect(await open.upgradeAttempt('127.0.0.1')).toBeNull();
    const strict = new RequestLimits({ ...config, limitLoopback: true }, null);
    for (let i = 0; i < 3; i++) await strict.upgradeAttempt('::1');
    expect(await strict.upgradeAttempt('::1')).toBe(1);
  });
});
