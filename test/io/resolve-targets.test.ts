/** resolveTargets with a scripted DNS (the lookup is its only outside dependency). */
import { describe, expect, it } from 'vitest';
import { resolveTargets, type Lookup } from '../../src/io/resolve-targets.js';
import type { Endpoint } from '../../machines/endpoint.js';

const dns: Record<string, Array<{ address: string; family: number }> | NodeJS.ErrnoException> = {
  'dual.example': [
    { address: '192.0.2.1', family: 4 },
    { address: '2001:db8::1', family: 6 },
  ],
  'v4.example': [{ address: '192.0.2.2', family: 4 }],
  'mapped.example': [{ address: '::ffff:192.0.2.3', family: 6 }],
  'multicast.example': [{ address: '239.0.0.1', family: 4 }],
  'gone.example': Object.assign(new Error('queryA ENOTFOUND gone.example'), { code: 'ENOTFOUND' }),
};
const lookup: Lookup = async (name) => {
  const answer = dns[name];
  if (!answer) throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
  if (answer instanceof Error) throw answer;
  return answer;
};
const both = ['ipv6', 'ipv4'] as const;

describe('resolveTargets', () => {
  it('gives IPv6 candidates first, then IPv4, each in the order of the hosts; no duplicates', async () => {
    const r = await resolveTargets({ sessionId: 's', hosts: ['v4.example', 'dual.example', '192.0.2.2', '2001:db8::9'], port: 40000, families: [...both] }, lookup);
    expect(r.candidates.map((c) => c.address)).toEqual(['2001:db8::1', '2001:db8::9', '192.0.2.2', '192.0.2.1']);
    expect(r.problems).toEqual([]);
  });

  it('treats an IPv4-mapped answer as IPv4', async () => {
    const r = await resolveTargets({ sessionId: 's', hosts: ['mapped.example'], port: 1, families: ['ipv4'] }, lookup);
    expect(r.candidates).toEqual([{ family: 'ipv4', address: '192.0.2.3', port: 1 }]);
  });

  it('explains every host that gave nothing usable', async () => {
    const r = await resolveTargets({ sessionId: 's', hosts: ['gone.example', 'multicast.example', 'dual.example'], port: 1, families: ['ipv4'] }, lookup);
    expect(r.candidates).toEqual([{ family: 'ipv4', address: '192.0.2.1', port: 1 }]);
    expect(r.problems.sort()).toEqual([
      'dual.example: 2001:db8::1 is ipv6 and this server has no ipv6 socket',
      'gone.example: ENOTFOUND',
      'multicast.example: 239.0.0.1 is a multicast address',
    ]);
  });

  it('passes every resolved address through the target policy, keeping the allowed ones', async () => {
    const deny = (e: Endpoint) => (e.family === 'ipv4' ? `${e.address} port ${e.port} is denied by --deny-targets 192.0.2.0/24` : null);
    const r = await resolveTargets({ sessionId: 's', hosts: ['dual.example'], port: 7, families: [...both] }, lookup, deny);
    expect(r.candidates).toEqual([{ family: 'ipv6', address: '2001:db8::1', port: 7 }]);
    expect(r.problems).toEqual(['dual.example: 192.0.2.1 port 7 is denied by --deny-targets 192.0.2.0/24']);
  });
});

describe('resolveTargets: bounds', () => {
  it('keeps at most 16 candidates, however many records the names have, and says so', async () => {
    const zone: Lookup = async () => Array.from({ length: 500 }, (_, i) => ({ address: `198.51.100.${(i % 250) + 1}`, family: 4 }));
    const r = await resolveTargets({ sessionId: 's', hosts: ['many.example', 'more.example'], port: 1, families: ['ipv4'] }, zone);
    expect(r.candidates).toHaveLength(16);
    expect(r.problems).toEqual(['234 more addresses left out: at most 16 candidates per session']);
  });
});
