/** The sessions as the API and the metrics see them: views, events, counters that never go backwards (wall clock handed in). */
import { describe, expect, it } from 'vitest';
import type { SessionContext } from '../../machines/session.machine.js';
import { newLinkStats } from '../../src/io/peer-link.js';
import type { SessionLink } from '../../src/io/session-link.js';
import { SessionRegistry, type RegistryEvent } from '../../src/observe/registry.js';

const ctx = (over: Partial<SessionContext> = {}) => ({ peer: null, candidates: [], ...over }) as unknown as SessionContext;
const linkWith = (rttMs: number | null = null) => ({ stats: newLinkStats(), rttMs }) as unknown as SessionLink;

describe('SessionRegistry', () => {
  it('follows a session from open to established: transitions, time to established, age, candidates', () => {
    let wall = 1_000_000;
    const registry = new SessionRegistry(() => wall);
    const events: RegistryEvent[] = [];
    registry.on((e) => events.push(e));
    const link = linkWith(0.75); // the IO's latest round trip, newer than the adoption's
    registry.add('s', { subject: 'alice', client: '192.0.2.1' }, link, { value: 'connected', context: ctx() });
    wall += 40;
    const candidates = [{ family: 'ipv4' as const, address: '192.0.2.7', port: 40000 }];
    registry.update('s', { value: { udp_waiting: { ipv4: 'tick' } }, context: ctx({ candidates }) });
    wall += 60;
    const peer = { salt: 'aa', endpoint: { family: 'ipv4' as const, address: '192.0.2.7', port: 40000 }, rttMs: 0.5 };
    registry.update('s', { value: { udp_established: { heartbeat: 'tick', watchdog: 'alive' } }, context: ctx({ peer, candidates }) });
    expect(events.filter((e) => e.type === 'transition').map((e) => `${(e as { from: string }).from}>${(e as { to: string }).to}`)).toEqual([
      'connected>udp_waiting.ipv4',
      'udp_waiting.ipv4>udp_established',
    ]);
    expect(events).toContainEqual({ type: 'established', id: 's', afterMs: 100 });
    wall += 900;
    expect(registry.get('s')).toMatchObject({ subject: 'alice', status: 'UDP_ESTABLISHED', rttMs: 0.75, ageMs: 1000, timeToEstablishedMs: 100, candidates: ['192.0.2.7:40000'] });
    expect([...registry.countByState()]).toEqual([['udp_established', 1]]);
  });

  it('keeps the counters of ended sessions in the totals, so metrics never go backwards', () => {
    const registry = new SessionRegistry(() => 0);
    const a = linkWith();
    const b = linkWith();
    registry.add('a', { subject: 'x', client: 'y' }, a, { value: 'connected', context: ctx() });
    registry.add('b', { subject: 'x', client: 'y' }, b, { value: 'connected', context: ctx() });
    a.stats.bytesIn = 10;
    a.stats.drops.replay = 2;
    b.stats.bytesIn = 5;
    registry.remove('a');
    registry.remove('a');
    a.stats.bytesIn = 999; // after it left: not counted
    expect(registry.totals()).toMatchObject({ bytesIn: 15, drops: { replay: 2 } });
    expect(registry.size).toBe(1);
    expect(registry.update('a', { value: 'closed', context: ctx() })).toBeUndefined(); // an unknown id is ignored
  });
});
