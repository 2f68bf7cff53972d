/** Prometheus text from the registry and the UDP plane: each drop counted once, totals added up once per scrape. */
import { describe, expect, it } from 'vitest';
import type { SessionContext } from '../../machines/session.machine.js';
import { newLinkStats } from '../../src/io/peer-link.js';
import type { SessionLink } from '../../src/io/session-link.js';
import type { PlaneDrops } from '../../src/io/switchboard.js';
import { Metrics } from '../../src/observe/metrics.js';
import { SessionRegistry } from '../../src/observe/registry.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { metric } from '../helpers/metrics.js';

const plane = (): { drops: PlaneDrops; datagramsIn: number; datagramsOut: number } => ({
  drops: { oversized: 0, malformed: 3, version: 1, unknown_channel: 0, send_failed: 0, preauth_limited: 0, preauth_budget: 7, auth_failed: 2, replay: 0, unknown_peer: 0 },
  datagramsIn: 20,
  datagramsOut: 0,
});

describe('Metrics', () => {
  it('adds the plane\'s drops and the sessions\' by cause (a cause both count is summed, not overwritten)', async () => {
    const sessions = new SessionRegistry(() => 0);
    const link = { stats: newLinkStats() } as unknown as SessionLink;
    link.stats.drops.auth_failed = 5;
    sessions.add('s', { subject: 'a', client: 'b' }, link, { value: 'connected', context: { peer: null, candidates: [] } as unknown as SessionContext });
    const text = await new Metrics({ sessions, plane: plane(), clock: new FakeClock() }).text();
    expect(metric(text, 'autoprox_drops_total{cause="auth_failed"}')).toBe(7);
    expect(metric(text, 'autoprox_drops_total{cause="preauth_budget"}')).toBe(7);
    expect(metric(text, 'autoprox_drops_total{cause="version"}')).toBe(1);
    expect(metric(text, 'autoprox_udp_datagrams_received_total')).toBe(20);
    expect(metric(text, 'autoprox_sessions{state="connected"}')).toBe(1);
  });

  it('one scrape adds the session totals up once (within its window), a later scrape again', async () => {
    const sessions = new SessionRegistry(() => 0);
    let passes = 0;
    const totals = sessions.totals.bind(sessions);
    sessions.totals = () => (passes++, totals());
    const clock = new FakeClock();
    const metrics = new Metrics({ sessions, plane: plane(), clock });
    const before = passes;
    await metrics.text();
    expect(passes - before).toBe(1);
    clock.advance(1000);
    await metrics.text();
    expect(passes - before).toBe(2);
  });
});
