import { describe, expect, it } from 'vitest';
import type { Endpoint } from '../../machines/endpoint.js';
import { endpointsFrame, natMapping, type StunResult } from '../../src/net/nat-mapping.js';

const v4 = (address: string, port: number): Endpoint => ({ family: 'ipv4', address, port });
const v6 = (address: string, port: number): Endpoint => ({ family: 'ipv6', address, port });
const answer = (server: string, to: Endpoint, mapped: Endpoint | null): StunResult => ({ server, family: to.family, to, mapped, rttMs: mapped ? 1 : null, error: mapped ? null : 'timeout' });

describe('natMapping and the endpoints frame', () => {
  it.each<[string, StunResult[], string]>([
    ['no answers', [], 'unknown'],
    ['one server', [answer('a', v4('192.0.2.1', 3478), v4('203.0.113.1', 9))], 'unknown'],
    ['two ports of one address', [answer('a', v4('192.0.2.1', 3478), v4('203.0.113.1', 9)), answer('b', v4('192.0.2.1', 3479), v4('203.0.113.1', 10))], 'unknown'],
    ['two addresses, one mapping', [answer('a', v4('192.0.2.1', 3478), v4('203.0.113.1', 9)), answer('b', v4('192.0.2.2', 3478), v4('203.0.113.1', 9))], 'endpoint-independent'],
    ['two addresses, two mappings', [answer('a', v4('192.0.2.1', 3478), v4('203.0.113.1', 9)), answer('b', v4('192.0.2.2', 3478), v4('203.0.113.1', 10))], 'endpoint-dependent'],
    ['one of two silent', [answer('a', v4('192.0.2.1', 3478), v4('203.0.113.1', 9)), answer('b', v4('192.0.2.2', 3478), null)], 'unknown'],
    [
      'independent on IPv6, dependent on IPv4: dependent',
      [
        answer('a', v6('2001:db8::1', 3478), v6('2001:db8::9', 9)),
        answer('b', v6('2001:db8::2', 3478), v6('2001:db8::9', 9)),
        answer('a', v4('192.0.2.1', 3478), v4('203.0.113.1', 9)),
        answer('b', v4('192.0.2.2', 3478), v4('203.0.113.1', 10)),
      ],
      'endpoint-dependent',
    ],
  ])('%s: %s', (_name, results, want) => {
    expect(natMapping(results)).toBe(want);
  });

  it('names the first answering server\'s endpoint per family, in the contract\'s text forms', () => {
    const results = [answer('a', v4('192.0.2.1', 3478), null), answer('b', v4('192.0.2.2', 3478), v4('203.0.113.1', 10)), answer('c', v6('2001:db8::1', 3478), v6('2001:db8::9', 9))];
    expect(endpointsFrame(results, null)).toEqual({ type: 'endpoints', ipv4: '203.0.113.1:10', ipv6: '[2001:db8::9]:9', nat: 'unknown', relay: null });
    expect(JSON.stringify(endpointsFrame([], 'relay.test:3478'))).toBe('{"type":"endpoints","ipv4":null,"ipv6":null,"nat":"unknown","relay":"relay.test:3478"}');
  });
});
