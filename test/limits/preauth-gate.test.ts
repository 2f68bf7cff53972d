/** The pre-authentication budgets: per source group (IPv4 address, IPv6 /64) and server-wide. Time handed in. */
import { describe, expect, it } from 'vitest';
import { PREAUTH_MAX_SOURCES, PREAUTH_TOTAL_BURST_S, PreauthGate } from '../../src/limits/preauth-gate.js';
import { sourceGroup } from '../../src/net/address.js';

describe('sourceGroup', () => {
  it.each([
    ['ipv4', '203.0.113.7', '203.0.113.7'],
    ['ipv6', '2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['ipv6', '2001:db8:1:2::ffff', '2001:db8:1:2::/64'],
    ['ipv6', '2001:db8::1', '2001:db8:0:0::/64'],
    ['ipv6', '::1', '0:0:0:0::/64'],
    ['ipv6', 'fe80::1%eth0', 'fe80:0:0:0::/64'],
  ] as const)('%s %s is counted as %s', (family, address, group) => {
    expect(sourceGroup(family, address)).toBe(group);
  });
});

describe('PreauthGate', () => {
  it('per source: a burst of twice the rate, then the rate; other sources have their own', () => {
    const gate = new PreauthGate({ perSourcePerS: 10, totalPerS: 0 });
    const admitted = Array.from({ length: 25 }, () => gate.admit('ipv4', '192.0.2.1', 0)).filter((v) => v === 'ok').length;
    expect(admitted).toBe(20);
    expect(gate.admit('ipv4', '192.0.2.1', 0)).toBe('preauth_limited');
    expect(gate.admit('ipv4', '192.0.2.2', 0)).toBe('ok');
    expect(gate.admit('ipv4', '192.0.2.1', 100)).toBe('ok'); // 100 ms at 10/s: one more
    expect(gate.admit('ipv4', '192.0.2.1', 100)).toBe('preauth_limited');
    expect(gate.refusedBy.preauth_limited).toBe(7);
  });

  it('every address of one IPv6 /64 shares one budget; another /64 has its own', () => {
    const gate = new PreauthGate({ perSourcePerS: 5, totalPerS: 0 });
    let ok = 0;
    for (let i = 0; i < 100; i++) if (gate.admit('ipv6', `2001:db8:0:1::${(i + 1).toString(16)}`, 0) === 'ok') ok++;
    expect(ok).toBe(10); // not 100 fresh bursts
    expect(gate.admit('ipv6', '2001:db8:0:2::1', 0)).toBe('ok');
    expect(gate.tracked).toBe(2);
  });

  it('server-wide: however many sources, at most the total rate (and its burst) is admitted', () => {
    const gate = new PreauthGate({ perSourcePerS: 10_000, totalPerS: 1000 });
    const burst = 1000 * PREAUTH_TOTAL_BURST_S;
    let ok = 0;
    for (let i = 0; i < 10_000; i++) if (gate.admit('ipv4', `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, 0) === 'ok') ok++;
    expect(ok).toBe(burst);
    expect(gate.refusedBy.preauth_budget).toBe(10_000 - burst);
    // One second later, one second's worth more, capped by the burst.
    let later = 0;
    for (let i = 0; i < 5000; i++) if (gate.admit('ipv4', `11.0.${i >> 8}.${i & 255}`, 1000) === 'ok') later++;
    expect(later).toBe(burst);
  });

  it('remembers a bounded number of sources, forgetting the least recent', () => {
    const gate = new PreauthGate({ perSourcePerS: 1, totalPerS: 0 });
    for (let i = 0; i < PREAUTH_MAX_SOURCES + 100; i++) gate.admit('ipv4', `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, 0);
    expect(gate.tracked).toBe(PREAUTH_MAX_SOURCES);
  });

  it('0 switches a budget off', () => {
    const gate = new PreauthGate({ perSourcePerS: 0, totalPerS: 0 });
    for (let i = 0; i < 1000; i++) expect(gate.admit('ipv4', '192.0.2.1', 0)).toBe('ok');
    expect(gate.tracked).toBe(0);
  });
});
