import { describe, expect, it } from 'vitest';
import { LOCAL_ADDRESSES_TTL_MS, ownEndpointsOf } from '../../src/io/own-endpoints.js';
import { FakeClock } from '../helpers/fake-clock.js';

describe('ownEndpointsOf', () => {
  it('names the bound ports on every local address of a wildcard bind, read again only after the TTL', () => {
    const clock = new FakeClock();
    const own = ownEndpointsOf(() => ({ ipv4: 40000, ipv6: null }), { ipv4: '0.0.0.0', ipv6: '::' }, clock);
    const first = own();
    expect(first.ports).toEqual({ ipv4: 40000, ipv6: null });
    expect(first.addresses.check('127.0.0.5', 'ipv4')).toBe(true);
    expect(first.addresses.check('::1', 'ipv6')).toBe(true);
    expect(own().addresses).toBe(first.addresses); // cached
    clock.advance(LOCAL_ADDRESSES_TTL_MS);
    expect(own().addresses).not.toBe(first.addresses);
  });

  it('only the bind address when it is not a wildcard', () => {
    const own = ownEndpointsOf(() => ({ ipv4: 1, ipv6: 1 }), { ipv4: '192.0.2.1', ipv6: '2001:db8::1' }, new FakeClock());
    expect(own().addresses.check('192.0.2.1', 'ipv4')).toBe(true);
    expect(own().addresses.check('127.0.0.1', 'ipv4')).toBe(false);
  });
});
