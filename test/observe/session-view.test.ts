import { describe, expect, it } from 'vitest';
import type { SessionContext } from '../../machines/session.machine.js';
import { activeStateIds, stateLabel, viewOf } from '../../src/observe/session-view.js';

const context = (peer: SessionContext['peer'] = null) => ({ peer }) as unknown as SessionContext;

describe('session view', () => {
  it.each([
    ['connected', 'connected'],
    [{ udp_waiting: { ipv6: 'tick' } }, 'udp_waiting.ipv6'],
    [{ udp_waiting: 'select_family' }, 'udp_waiting'],
    [{ udp_established: { heartbeat: 'tick', watchdog: 'alive' } }, 'udp_established'],
    ['closed', 'closed'],
  ] as const)('labels %j as %s', (value, label) => {
    expect(stateLabel(value)).toBe(label);
  });

  it('lists every active state node, for the diagram', () => {
    expect(activeStateIds({ udp_waiting: { ipv4: 'tick' } })).toEqual(['session.udp_waiting', 'session.udp_waiting.ipv4', 'session.udp_waiting.ipv4.tick']);
  });

  it('shows status, family, peer and RTT as a person reads them', () => {
    const established = viewOf({
      value: { udp_established: { heartbeat: 'tick', watchdog: 'alive' } },
      context: context({ salt: 'ab', endpoint: { family: 'ipv6', address: '2001:db8::7', port: 40000 }, rttMs: 1.23456 }),
    });
    expect(established).toMatchObject({ state: 'udp_established', status: 'UDP_ESTABLISHED', family: 'ipv6', peer: '[2001:db8::7]:40000', rttMs: 1.235 });
    const waiting = viewOf({ value: { udp_waiting: { ipv4: 'tick' } }, context: context() });
    expect(waiting).toMatchObject({ status: 'UDP_WAITING', family: 'ipv4', peer: null, rttMs: null });
  });

  it('lends the previous view its active states when the state is the same (no new array per heartbeat)', () => {
    const value = { udp_waiting: { ipv6: 'tick' } };
    const first = viewOf({ value, context: context() });
    expect(viewOf({ value: { udp_waiting: { ipv6: 'tick' } }, context: context() }, first).activeStates).toBe(first.activeStates);
  });
});
