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
  });

  it('reads the interfaces again after the TTL: the same answer is the same object, a new address a new one', () => {
    const clock = new FakeClock();
    const nic = (address: string) => ({ address, netmask: '255.255.255.0', family: 'IPv4' as const, mac: '00:00:00:00:00:00', internal: false, cidr: `${address}/24` });
    let interfaces: Record<string, ReturnType<typeof nic>[]> = { eth0: [nic('198.51.100.7')] };
    let reads = 0;
    let port = 40000;
    const own = ownEndpointsOf(() => ({ ipv4: port, ipv6: null }), { ipv4: '0.0.0.0', ipv6: '::' }, clock, () => (reads++, interfaces));
    const first = own();
    expect(first.addresses.check('198.51.100.7', 'ipv4')).toBe(true);
    expect(own()).toBe(first);
    expect(reads).toBe(1);
    clock.advance(LOCAL_ADDRESSES_TTL_MS);
    expect(own()).toBe(first); // read again, nothing changed: the same object
    expect(reads).toBe(2);
    interfaces = { eth0: [nic('198.51.100.7')], eth1: [nic('203.0.113.9')] };
    clock.advance(LOCAL_ADDRESSES_TTL_MS);
    const second = own();
    expect(reads).toBe(3);
    expect(second).not.toBe(first);
    expect(second.addresses.check('203.0.113.9', 'ipv4')).toBe(true);
    port = 40001; // a rebound socket is a change too
    expect(own()).not.toBe(second);
    expect(own().ports.ipv4).toBe(40001);
  });

  it('only the bind address when it is not a wildcard', () => {
    const own = ownEndpointsOf(() => ({ ipv4: 1, ipv6: 1 }), { ipv4: '192.0.2.1', ipv6: '2001:db8::1' }, new FakeClock());
    expect(own().addresses.check('192.0.2.1', 'ipv4')).toBe(true);
    expect(own().addresses.check('127.0.0.1', 'ipv4')).toBe(false);
  });
});
