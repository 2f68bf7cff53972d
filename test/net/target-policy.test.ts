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
    const own = { ports: { ipv4: 40000, ipv6: null } as Record<Family, number | null>, addresses: loopback() };
    const policy = new TargetPolicy({ allow: null, deny: [], allowSelf: false, ownEndpoints: () => own });
    expect(policy.deny(at('127.0.0.1', 40001))).toBeNull();
    expect(policy.deny(at('127.0.0.1', 40001))).toBeNull();
    expect(policy.deny(at('127.0.0.1', 40000))).toMatch(/own UDP endpoint/);
    // The server's port moves (a restart of the socket): the old decisions must not stick.
    own.ports = { ipv4: 40001, ipv6: null };
    expect(policy.deny(at('127.0.0.1', 40001))).toMatch(/own UDP endpoint/);
    expect(policy.deny(at('127.0.0.1', 40000))).toBeNull();
    // The interface addresses are read again (a new list): decisions are made afresh.
    own.addresses = new BlockList();
    expect(policy.deny(at('127.0.0.1', 40001))).toBeNull();
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
