import { BlockList } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { Endpoint, Family } from '../../machines/endpoint.js';
import { parseTargetRules, TargetPolicy, type TargetRule } from '../../src/net/target-policy.js';

function loopback(): BlockList {
  const list = new BlockList();
  list.addSubnet('127.0.0.0', 8, 'ipv4');
  return list;
}

const at = (address: string, port: number): Endpoint => ({ family: 'ipv4', address, port });

describe('target policy decisions, remembered', () => {
  it('answers the same as before for the same endpoint, and again after its own endpoints change', () => {
    // Own endpoints come as one object until something in them changes (own-endpoints.ts).
    let own = { ports: { ipv4: 40000, ipv6: null } as Record<Family, number | null>, addresses: loopback() };
    const policy = new TargetPolicy({ allow: null, deny: [], allowSelf: false, ownEndpoints: () => own });
    const path = at('127.0.0.1', 40001); // one object, asked about every heartbeat
    expect(policy.deny(at('127.0.0.1', 40001))).toBeNull();
    expect(policy.deny(path)).toBeNull();
    expect(policy.deny(path)).toBeNull();
    expect(policy.deny(at('127.0.0.1', 40000))).toMatch(/own UDP endpoint/);
    // The server's port moves (a restart of the socket): the old decisions must not stick.
    own = { ...own, ports: { ipv4: 40001, ipv6: null } };
    expect(policy.deny(at('127.0.0.1', 40001))).toMatch(/own UDP endpoint/);
    expect(policy.deny(path)).toMatch(/own UDP endpoint/);
    expect(policy.deny(at('127.0.0.1', 40000))).toBeNull();
    // The interface addresses are read again (a new list): decisions are made afresh.
    own = { ...own, addresses: new BlockList() };
    expect(policy.deny(at('127.0.0.1', 40001))).toBeNull();
    expect(policy.deny(path)).toBeNull();
  });

  it('decides once per endpoint object and rules: the same object asked again costs no decision', () => {
    const own = { ports: { ipv4: 40000, ipv6: null } as Record<Family, number | null>, addresses: loopback() };
    let lookups = 0;
    const counting = loopback();
    const check = counting.check.bind(counting);
    counting.check = ((address: string, family?: 'ipv4' | 'ipv6') => (lookups++, check(address, family))) as BlockList['check'];
    const policy = new TargetPolicy({ allow: null, deny: [], allowSelf: false, ownEndpoints: () => ({ ...own, addresses: counting }) });
    const rules = parseTargetRules('127.0.0.0/8') as TargetRule[];
    const path = at('127.0.0.1', 40000);
    // A fresh own-endpoints object every call would be a change every call: decided each time.
    expect(policy.deny(path, rules)).toMatch(/own UDP endpoint/);
    expect(policy.deny(path, rules)).toMatch(/own UDP endpoint/);
    expect(lookups).toBe(2);
    const stable = { ...own, addresses: counting };
    const steady = new TargetPolicy({ allow: null, deny: [], allowSelf: false, ownEndpoints: () => stable });
    lookups = 0;
    for (let i = 0; i < 100; i++) expect(steady.deny(path, rules)).toMatch(/own UDP endpoint/);
    expect(lookups).toBe(1);
    expect(steady.deny(path, null)).toMatch(/own UDP endpoint/); // other rules: decided apart
    expect(lookups).toBe(2);
  });

  it('keeps the decisions of different token rules apart', () => {
    const own = { ports: { ipv4: 40000, ipv6: null } as Record<Family, number | null>, addresses: loopback() };
    const policy = new TargetPolicy({ allow: null, deny: [], allowSelf: false, ownEndpoints: () => own });
    const rules = parseTargetRules('192.0.2.0/24') as TargetRule[];
    const other = parseTargetRules('198.51.100.0/24') as TargetRule[];
    expect(policy.deny(at('192.0.2.7', 40000), rules)).toBeNull();
    expect(policy.deny(at('192.0.2.7', 40000), other)).toMatch(/not among the token's allowed targets/);
    expect(policy.deny(at('192.0.2.7', 40000))).toBeNull();
    expect(policy.deny(at('0.0.0.0', 40000), rules)).toMatch(/unspecified/);
  });
});
