import { describe, expect, it } from 'vitest';
import { PUNCHES_AT_FULL_RATE, punchDelayMs, punchTargets, sessionMachine } from '../../machines/session.machine.js';
import { settle, startSession, V4, V6 } from '../helpers/session-harness.js';

describe('session machine alone (test IO actors, simulated clock)', () => {
  it('reports CONNECTED, then punches IPv6 first', async () => {
    const s = startSession();
    expect(s.statuses()).toEqual(['CONNECTED']);
    await settle();
    expect(s.state()).toEqual({ udp_waiting: { ipv6: 'tick' } });
    expect(s.statuses()).toEqual(['CONNECTED', 'UDP_WAITING/ipv6']);
    expect(s.heartbeats().at(-1)?.to).toEqual([V6]);
  });

  it('heartbeats every punch interval while waiting', async () => {
    const s = startSession();
    await settle();
    const before = s.heartbeats().length;
    s.advance(200 * 5);
    expect(s.heartbeats().length - before).toBe(5);
  });

  it('backs off after the full-rate punches of a phase to the heartbeat interval, and starts each phase at the full rate', async () => {
    // IPv4 only: one phase for as long as it waits.
    const s = startSession({ resolved: { candidates: [V4], problems: [] } });
    await settle();
    const sent = () => s.heartbeats().length;
    expect(sent()).toBe(1); // the entry punch
    for (let k = 1; k < PUNCHES_AT_FULL_RATE; k++) {
      s.advance(200);
      expect(sent()).toBe(1 + k);
    }
    // Then 400 ms, 800 ms, and the heartbeat interval from there on: each punch exactly then.
    for (const gap of [400, 800, 1000, 1000, 1000]) {
      const before = sent();
      s.advance(gap - 1);
      expect(sent()).toBe(before);
      s.advance(1);
      expect(sent()).toBe(before + 1);
    }
    // A newly heard peer session is still answered at once, and waits for nothing.
    const before = s.heartbeats().length;
    s.heartbeat(V4, { echoesUs: false });
    expect(s.heartbeats().length).toBe(before + 1);
  });

  it('paces punches by the count of the phase (pure)', () => {
    const timing = { punchMs: 200, heartbeatMs: 1000, peerTimeoutMs: 5000, fallbackMs: 3000, punchTimeoutMs: 0 };
    expect(Array.from({ length: PUNCHES_AT_FULL_RATE + 4 }, (_, k) => punchDelayMs(timing, k))).toEqual([
      ...Array(PUNCHES_AT_FULL_RATE).fill(200), 400, 800, 1000, 1000,
    ]);
    // A punch interval longer than the heartbeat interval is never shortened.
    expect(punchDelayMs({ ...timing, punchMs: 2000 }, PUNCHES_AT_FULL_RATE + 3)).toBe(2000);
  });

  it('falls back to IPv4 after the fallback delay and says so with a second UDP_WAITING', async () => {
    const s = startSession();
    await settle();
    s.advance(2999);
    expect(s.state()).toEqual({ udp_waiting: { ipv6: 'tick' } });
    s.advance(1);
    expect(s.state()).toEqual({ udp_waiting: { ipv4: 'tick' } });
    expect(s.statuses()).toEqual(['CONNECTED', 'UDP_WAITING/ipv6', 'UDP_WAITING/ipv4']);
    expect(s.heartbeats().at(-1)?.to).toEqual([V4]);
  });

  it('starts with IPv4 when there are no IPv6 candidates', async () => {
    const s = startSession({ resolved: { candidates: [V4], problems: [] } });
    await settle();
    expect(s.statuses()).toEqual(['CONNECTED', 'UDP_WAITING/ipv4']);
  });

  it('stays on IPv6 after the fallback delay when there is no IPv4 candidate', async () => {
    const s = startSession({ resolved: { candidates: [V6], problems: [] } });
    await settle();
    s.advance(10_000);
    expect(s.state()).toEqual({ udp_waiting: { ipv6: 'tick' } });
  });

  it('answers the first heartbeat of a peer session at once, at its source only', async () => {
    const s = startSession();
    await settle();
    const before = s.heartbeats().length;
    s.heartbeat(V4, { echoesUs: false });
    expect(s.state()).toEqual({ udp_waiting: { ipv6: 'tick' } });
    const reply = s.heartbeats().at(-1)!;
    expect(s.heartbeats().length).toBe(before + 1);
    expect(reply.to).toEqual([V4]);
    expect(reply.echo).toMatchObject({ salt: 'aaaaaaaaaaaaaaaa' });
  });

  it('sends an unproven source no more heartbeats than it sent (no reflection, no amplification)', async () => {
    const s = startSession({ resolved: { candidates: [V6], problems: [] } });
    await settle();
    const stranger = { ...V4, address: '198.51.100.99' };
    s.heartbeat(stranger, { echoesUs: false }); // e.g. a replayed recording, from a spoofed address
    s.advance(200 * 10); // ten punch intervals
    const toStranger = s.heartbeats().filter((h) => h.to.some((t) => t.address === stranger.address)).length;
    expect(toStranger).toBe(1);
    // Each further heartbeat from it earns one more, no more.
    s.heartbeat(stranger, { echoesUs: false });
    s.heartbeat(stranger, { echoesUs: false });
    s.advance(200 * 10);
    expect(s.heartbeats().filter((h) => h.to.some((t) => t.address === stranger.address)).length).toBeLessThanOrEqual(3);
  });

  it('alternating peer sessions earn one answer per heartbeat, each at its own source', async () => {
    const s = startSession({ resolved: { candidates: [V6], problems: [] } });
    await settle();
    const before = s.heartbeats().length;
    for (let i = 0; i < 50; i++) s.heartbeat(V4, { salt: i % 2 ? 'aaaaaaaaaaaaaaaa' : 'bbbbbbbbbbbbbbbb', echoesUs: false });
    const sent = s.heartbeats().slice(before);
    expect(sent.reduce((n, h) => n + h.to.length, 0)).toBeLessThanOrEqual(50);
    expect(sent.every((h) => h.to.every((t) => t.address === V4.address))).toBe(true);
  });

  it('establishes on a heartbeat that echoes us, on whatever family it came', async () => {
    const s = startSession();
    await settle();
    s.heartbeat(V4, { rttMs: 1.25 });
    expect(s.actor.getSnapshot().matches('udp_established')).toBe(true);
    const established = s.frames().at(-1)!;
    expect(established).toMatchObject({ status: 'UDP_ESTABLISHED', family: 'ipv4', peer: '203.0.113.7:40000', rttMs: 1.25 });
    // The path's IO sends a heartbeat at once (so the peer can establish too, without waiting a
    // whole interval), echoing what the machine heard: test/io/channel-and-peer-link.test.ts.
    expect(s.commands).toContainEqual({ type: 'path.up', peerSalt: 'aaaaaaaaaaaaaaaa', endpoint: V4, echo: expect.objectContaining({ salt: 'aaaaaaaaaaaaaaaa' }), rttMs: 1.25 });
  });

  it('refuses stale proofs (an echo older than the peer timeout)', async () => {
    const s = startSession();
    await settle();
    s.heartbeat(V6, { echoAgeMs: 5001 });
    expect(s.actor.getSnapshot().matches('udp_waiting')).toBe(true);
  });

  it('keeps no timer of its own while established: the path\'s IO beats and watches (issue 13)', async () => {
    const s = startSession();
    await settle();
    s.heartbeat(V6);
    const before = s.commands.length;
    s.advance(60_000);
    expect(s.commands.length).toBe(before); // no heartbeat commands, no timeout: the IO sends them and says peer.silent
    expect(s.actor.getSnapshot().matches('udp_established')).toBe(true);
  });

  it('goes back to UDP_WAITING when the peer is silent for the peer timeout, and keeps punching its last endpoint', async () => {
    const s = startSession({ resolved: { candidates: [V6], problems: [] } });
    await settle();
    const moved = { ...V6, port: 50000 };
    s.heartbeat(moved);
    expect(s.actor.getSnapshot().matches('udp_established')).toBe(true);
    s.silent(); // the IO's watchdog: no fresh echo for the peer timeout
    expect(s.actor.getSnapshot().matches('udp_waiting')).toBe(true);
    expect(s.frames().at(-1)).toMatchObject({ status: 'UDP_WAITING', family: 'ipv6', reason: 'peer_timeout' });
    expect(s.commands.at(-1)?.type === 'heartbeat' && s.commands.at(-1)).toMatchObject({ to: [V6, moved] });
    expect(s.commands).toContainEqual({ type: 'path.down' });
  });

  it('a heartbeat from the peer at a new address moves the peer endpoint (NAT rebinding)', async () => {
    const s = startSession();
    await settle();
    s.heartbeat(V4);
    const rebound = { ...V4, port: 41234 };
    s.heartbeat(rebound);
    expect(s.frames().at(-1)).toMatchObject({ status: 'UDP_ESTABLISHED', peer: '203.0.113.7:41234' });
    expect(s.commands).toContainEqual(expect.objectContaining({ type: 'path.up', peerSalt: 'aaaaaaaaaaaaaaaa', endpoint: rebound }));
    const count = s.frames().length;
    s.heartbeat(rebound);
    expect(s.frames().length).toBe(count); // same place: no new frame
  });

  it('a heartbeat of the peer that does not echo us freshly neither moves the path nor keeps it alive (protocol v1)', async () => {
    const s = startSession();
    await settle();
    s.heartbeat(V4);
    const frames = s.frames().length;
    // From a new address, with a stale echo or none: a recording, or a peer that no longer hears us.
    s.heartbeat({ ...V4, port: 41234 }, { echoAgeMs: 5001 });
    s.heartbeat({ ...V4, port: 41235 }, { echoesUs: false });
    expect(s.frames().length).toBe(frames);
    expect(s.commands.filter((c) => c.type === 'path.up')).toHaveLength(1);
    // Keeping it alive is the IO's watchdog (test/io): only its peer.silent ends the path.
    s.heartbeat(V4, { echoesUs: false });
    expect(s.actor.getSnapshot().matches('udp_established')).toBe(true);
    s.silent();
    expect(s.frames().at(-1)).toMatchObject({ status: 'UDP_WAITING', reason: 'peer_timeout' });
  });

  it('after the peer fell silent, echoes the peer\'s latest heartbeat the IO heard (so the peer can prove the path again)', async () => {
    const s = startSession();
    await settle();
    s.heartbeat(V4);
    s.silent({ salt: 'aaaaaaaaaaaaaaaa', sentAt: 42 }); // heard by the IO after the adoption
    s.advance(200);
    expect(s.heartbeats().at(-1)?.echo).toMatchObject({ salt: 'aaaaaaaaaaaaaaaa', sentAt: 42 });
  });

  it('ignores other peer sessions while established', async () => {
    const s = startSession();
    await settle();
    s.heartbeat(V4);
    s.heartbeat({ ...V4, port: 1 }, { salt: 'bbbbbbbbbbbbbbbb' });
    expect(s.frames().at(-1)).toMatchObject({ peer: '203.0.113.7:40000' });
    s.silent(); // only the other session spoke: the peer is silent
    expect(s.actor.getSnapshot().matches('udp_waiting')).toBe(true);
  });

  it('a CLOSE from the peer sends the session back to waiting at once, and that peer session is never adopted again', async () => {
    const s = startSession();
    await settle();
    s.heartbeat(V4);
    s.actor.send({ type: 'peer.close', peerSalt: 'aaaaaaaaaaaaaaaa' });
    expect(s.frames().at(-1)).toMatchObject({ status: 'UDP_WAITING', reason: 'peer_closed' });
    s.heartbeat(V4); // a replay of the closed session
    expect(s.actor.getSnapshot().matches('udp_waiting')).toBe(true);
    s.heartbeat(V4, { salt: 'cccccccccccccccc' }); // the peer's new session
    expect(s.actor.getSnapshot().matches('udp_established')).toBe(true);
  });

  it('a peer session that says CLOSE while the session is established with another one is never adopted either', async () => {
    const s = startSession();
    await settle();
    s.heartbeat(V6, { salt: 'aaaaaaaaaaaaaaaa', echoesUs: false }); // heard, not adopted
    s.heartbeat(V6, { salt: 'bbbbbbbbbbbbbbbb' }); // adopted
    s.actor.send({ type: 'peer.close', peerSalt: 'aaaaaaaaaaaaaaaa' }); // not the peer: stay established
    expect(s.actor.getSnapshot().matches('udp_established')).toBe(true);
    s.silent(); // the peer goes silent
    expect(s.actor.getSnapshot().matches('udp_waiting')).toBe(true);
    s.heartbeat(V6, { salt: 'aaaaaaaaaaaaaaaa' }); // a late heartbeat of the closed session, echoing us
    expect(s.actor.getSnapshot().matches('udp_waiting')).toBe(true);
  });

  it('a peer session that says CLOSE while the session is resolving is never adopted', async () => {
    const s = startSession();
    s.heartbeat(V6, { salt: 'aaaaaaaaaaaaaaaa', echoesUs: false }); // the peer was quicker than our DNS
    s.actor.send({ type: 'peer.close', peerSalt: 'aaaaaaaaaaaaaaaa' });
    expect(s.state()).toBe('connected');
    await settle();
    s.heartbeat(V6, { salt: 'aaaaaaaaaaaaaaaa' });
    expect(s.actor.getSnapshot().matches('udp_waiting')).toBe(true);
  });

  it('closes with punch_timeout (code 4000) when no proof comes within the punch timeout', async () => {
    const s = startSession({ timing: { punchTimeoutMs: 10_000 } });
    await settle();
    s.advance(10_000);
    expect(s.actor.getSnapshot().status).toBe('done');
    expect(s.frames().at(-1)).toMatchObject({ status: 'CLOSED', reason: 'punch_timeout' });
    expect(s.frames().at(-1)?.message).toMatch(/punching failed/);
    expect(s.commands.at(-1)).toEqual({ type: 'close', code: 4000, reason: 'punch_timeout' });
    expect(s.bridgeStopped).toBe(true);
  });

  it('waits for ever with punch timeout 0', async () => {
    const s = startSession({ timing: { punchTimeoutMs: 0 } });
    await settle();
    s.advance(3_600_000);
    expect(s.actor.getSnapshot().matches('udp_waiting')).toBe(true);
  });

  it('the punch timeout restarts each time the session goes back to waiting', async () => {
    const s = startSession({ timing: { punchTimeoutMs: 10_000 } });
    await settle();
    s.advance(9000);
    s.heartbeat(V6);
    s.silent(); // peer timeout -> waiting again
    expect(s.actor.getSnapshot().matches('udp_waiting')).toBe(true);
    s.advance(9999);
    expect(s.actor.getSnapshot().matches('udp_waiting')).toBe(true);
    s.advance(1);
    expect(s.actor.getSnapshot().status).toBe('done');
  });

  it.each([
    ['connected', async () => {}],
    ['udp_waiting', settle],
  ])('closes from %s when the WebSocket closes (code 1000) and when the server shuts down (1001)', async (_, ready) => {
    for (const [event, code, reason] of [
      [{ type: 'ws.closed', code: 1000 } as const, 1000, 'client_closed'],
      [{ type: 'server.shutdown' } as const, 1001, 'server_shutdown'],
    ] as const) {
      const s = startSession();
      await ready();
      s.actor.send(event);
      expect(s.actor.getSnapshot().status).toBe('done');
      expect(s.actor.getSnapshot().output).toEqual({ id: 'test-session', reason });
      expect(s.commands.at(-1)).toEqual({ type: 'close', code, reason });
    }
  });

  it('closes with token_expired (code 4003) from any state when the token runs out', async () => {
    for (const ready of [async (_: ReturnType<typeof startSession>) => {}, async (s: ReturnType<typeof startSession>) => {
      await settle();
      s.heartbeat(V6);
    }]) {
      const s = startSession();
      await ready(s);
      s.actor.send({ type: 'token.expired' });
      expect(s.actor.getSnapshot().output).toEqual({ id: 'test-session', reason: 'token_expired' });
      expect(s.frames().at(-1)).toMatchObject({ status: 'CLOSED', reason: 'token_expired', message: 'the token of this session expired' });
      expect(s.commands.at(-1)).toEqual({ type: 'close', code: 4003, reason: 'token_expired' });
    }
  });

  it('closes from udp_established on WebSocket close, after releasing the path', async () => {
    const s = startSession();
    await settle();
    s.heartbeat(V6);
    s.actor.send({ type: 'ws.closed', code: 1000 });
    const types = s.commands.slice(-3).map((c) => c.type);
    expect(types).toEqual(['path.down', 'status', 'close']);
  });

  it('closes with no_candidates when nothing resolved, naming the problem', async () => {
    const s = startSession({ resolved: { candidates: [], problems: ['nowhere.invalid: ENOTFOUND'] } });
    await settle();
    expect(s.frames().at(-1)).toMatchObject({ status: 'CLOSED', reason: 'no_candidates' });
    expect(s.frames().at(-1)?.message).toContain('nowhere.invalid: ENOTFOUND');
    expect(s.commands.at(-1)).toEqual({ type: 'close', code: 4001, reason: 'no_candidates' });
  });

  it('punchTargets never lists an endpoint twice nor one of a family the server cannot send on', () => {
    const snapshotContext = {
      ...sessionMachine.config.context,
      candidates: [V6, V4],
      learned: [
        { endpoint: V4, credit: null },
        { endpoint: { ...V6, port: 1 }, credit: null },
        { endpoint: { ...V4, port: 2 }, credit: 0 },
      ],
      families: ['ipv4' as const],
    } as Parameters<typeof punchTargets>[0];
    expect(punchTargets(snapshotContext, 'ipv4')).toEqual([V4]);
  });
});
