import { describe, expect, it } from 'vitest';
import { clientAddress } from '../../src/http/client-ip.js';
import { parseTargetRules, type TargetRule } from '../../src/net/target-policy.js';

const proxies = parseTargetRules('127.0.0.1/32,10.0.0.0/8') as TargetRule[];

describe('clientAddress', () => {
  it('is the socket peer without a trusted proxy: a client cannot choose its address', () => {
    expect(clientAddress('203.0.113.9', '198.51.100.1', [])).toBe('203.0.113.9');
    expect(clientAddress('203.0.113.9', '198.51.100.1', proxies)).toBe('203.0.113.9'); // not a proxy of ours
  });

  it('behind trusted proxies: the nearest address in X-Forwarded-For that is not one of them', () => {
    expect(clientAddress('127.0.0.1', '198.51.100.1', proxies)).toBe('198.51.100.1');
    expect(clientAddress('127.0.0.1', '6.6.6.6, 198.51.100.1, 10.1.2.3', proxies)).toBe('198.51.100.1');
    expect(clientAddress('127.0.0.1', ['198.51.100.1', '10.0.0.2'], proxies)).toBe('198.51.100.1');
  });

  it('reads bracketed IPv6 and ports; stops at a garbled entry, trusting nothing before it', () => {
    expect(clientAddress('::ffff:127.0.0.1', '[2001:db8::1]:4711', proxies)).toBe('2001:db8::1');
    expect(clientAddress('127.0.0.1', '192.0.2.1:4711', proxies)).toBe('192.0.2.1');
    expect(clientAddress('127.0.0.1', '198.51.100.1, not-an-ip', proxies)).toBe('127.0.0.1');
  });

  it('a missing peer address is "unknown"', () => {
    expect(clientAddress(undefined, undefined, [])).toBe('unknown');
  });
});
