/**
 * The session statechart's relay step and its two established paths (issue 12): the machine
 * alone, on a simulated clock.
 */
import { describe, expect, it } from 'vitest';
import { MAX_LEARNED_ENDPOINTS, RELAY_PEER_CREDIT } from '../../machines/session.machine.js';
import type { Endpoint } from '../../machines/types.js';
import { settle, startSession, V4, V6 } from '../helpers/session-harness.js';

const RELAY4: Endpoint = { family: 'ipv4', address: '198.51.100.9', port: 3478 };
const RELAY6: Endpoint = { family: 'ipv6', address: '2001:db8::9', port: 3478 };

describe('session machine with relays', () => {
  it('without relays, UDP_ESTABLISHED says path direct and nothing else changes (no relay step, no relay.want)', async () => {
    const s = startSession();
    await settle();
    s.advance(60_000 - 1);
    expect(s.actor.getSnapshot().matches({ udp_waiting: 'ipv4' })).toBe(true);
    s.heartbeat(V4);
    expect(s.frames().at(-1)).toEqual({ type: 'status', status: 'UDP_ESTABLISHED', session: 'test-session', family: 'ipv4', peer: '203.0.113.7:40000', rttMs: 0.5, path: 'direct' });
    expect(s.commands.some((c) => c.type === 'relay.want' || c.type === 'probe')).toBe(false);
    s.silent();
    expect(s.frames().at(-1)).toMatchObject({ status: 'UDP_WAITING', reason: 'peer_timeout' });
  });

  it('after --relay-after-ms without proof, asks for the relay and punches both families, the learned endpoints and the relays; no new frame', async () => {
    const s = startSession({ relays: [RELAY4, RELAY6], timing: { relayAfterMs: 5000 } });
    await settle();
    s.advance(4999);
    expect(s.actor.getSnapshot().matches({ udp_waiting: 'ipv4' })).toBe(true);
    expect(s.commands.some((c) => c.type === 'relay.want')).toBe(false);
    const frames = s.frames().length;
    s.advance(1);
    expect(s.actor.getSnapshot().matches({ udp_waiting: 'relay' })).toBe(true);
    expect(s.frames().length).toBe(frames);
    expect(s.commands).toContainEqual({ type: 'relay.want' });
    expect(s.heartbeats().at(-1)?.to).toEqual([V6, V4, RELAY4, RELAY6]);
    // Punching goes on at the full rate, then backs off like any phase.
    const before = s.heartbeats().length;
    s.advance(200 * 3);
    expect(s.heartbeats().length - before).toBe(3);
  });

  it('0 ms: the relay step at once, straight from IPv6', async () => {
    const s = startSession({ relays: [RELAY4], timing: { relayAfterMs: 0 } });
    await settle();
    s.advance(0);
    expect(s.actor.getSnapshot().matches({ udp_waiting: 'relay' })).toBe(true);
    expect(s.statuses()).toEqual(['CONNECTED', 'UDP_WAITING/ipv6']);
  });

  it('relays of a family the server cannot send on are left out', async () => {
    const s = startSession({ relays: [RELAY6], families: ['ipv4'], resolved: { candidates: [V4], problems: [] }, timing: { relayAfterMs: 0 } });
    await settle();
    s.advance(10_000);
    expect(s.actor.getSnapshot().matches({ udp_waiting: 'ipv4' })).toBe(true);
    expect(s.actor.getSnapshot().context.relays).toEqual([]);
  });

  it('a proof through the relay establishes a relayed path: peer and relay are the relay, and it probes the direct places', async () => {
    const s = startSession({ relays: [RELAY4], timing: { relayAfterMs: 0 } });
    await settle();
    s.advance(0);
    s.heartbeat(RELAY4);
    expect(s.actor.getSnapshot().matches({ udp_established: 'relayed' })).toBe(true);
    expect(s.frames().at(-1)).toMatchObject({ status: 'UDP_ESTABLISHED', family: 'ipv4', peer: '198.51.100.9:3478', path: 'relay', relay: '198.51.100.9:3478' });
    expect(s.commands.at(-1)).toEqual({ type: 'probe', to: [V6, V4] });
    const probes = () => s.commands.filter((c) => c.type === 'probe').length;
    const before = probes();
    s.advance(200 * 4);
    expect(probes() - before).toBe(4);
  });

  it('relayed -> direct on a fresh heartbeat of the same peer session from a direct place, with a new UDP_ESTABLISHED; data keeps its path', async () => {
    const s = startSession({ relays: [RELAY4], timing: { relayAfterMs: 0 } });
    await settle();
    s.advance(0);
    s.heartbeat(RELAY4);
    s.heartbeat(V6);
    expect(s.actor.getSnapshot().matches({ udp_established: 'direct' })).toBe(true);
    expect(s.frames().at(-1)).toMatchObject({ status: 'UDP_ESTABLISHED', family: 'ipv6', peer: '[2001:db8::7]:40000', path: 'direct' });
    expect(s.frames().at(-1)!.relay).toBeUndefined();
    expect(s.commands).toContainEqual(expect.objectContaining({ type: 'path.up', endpoint: V6 }));
    expect(s.commands).not.toContainEqual({ type: 'path.down' });
    // A stale heartbeat from a direct place proves nothing.
    const s2 = startSession({ relays: [RELAY4], timing: { relayAfterMs: 0 } });
    await settle();
    s2.advance(0);
    s2.heartbeat(RELAY4);
    s2.heartbeat(V6, { echoAgeMs: 10_000 });
    expect(s2.actor.getSnapshot().matches({ udp_established: 'relayed' })).toBe(true);
  });

  it('direct: the channel is bound at the relays at once (warm for a later switch); a heartbeat through the relay never pulls the path there (only what it echoes follows)', async () => {
    const s = startSession({ relays: [RELAY4] });
    await settle();
    s.heartbeat(V6);
    expect(s.commands).toContainEqual({ type: 'relay.want' });
    const frames = s.frames().length;
    s.heartbeat(RELAY4);
    expect(s.actor.getSnapshot().matches({ udp_established: 'direct' })).toBe(true);
    expect(s.frames().length).toBe(frames);
    expect(s.actor.getSnapshot().context.peer!.endpoint).toEqual(V6);
    expect(s.actor.getSnapshot().context.heard!.sentAt).toBe(2);
  });

  it('direct path dies with relays: on through the relay of its family at once (no UDP_WAITING), relay.want; relayed path dies: UDP_WAITING peer_timeout', async () => {
    const s = startSession({ relays: [RELAY6, RELAY4] });
    await settle();
    s.heartbeat(V4);
    s.silent();
    expect(s.actor.getSnapshot().matches({ udp_established: 'relayed' })).toBe(true);
    expect(s.statuses().filter((x) => x.startsWith('UDP_WAITING'))).toEqual(['UDP_WAITING/ipv6']);
    expect(s.frames().at(-1)).toMatchObject({ status: 'UDP_ESTABLISHED', family: 'ipv4', peer: '198.51.100.9:3478', path: 'relay', relay: '198.51.100.9:3478' });
    expect(s.commands).toContainEqual({ type: 'relay.want' });
    expect(s.commands).toContainEqual(expect.objectContaining({ type: 'path.up', endpoint: RELAY4 }));
    expect(s.commands).not.toContainEqual({ type: 'path.down' });
    s.silent();
    expect(s.actor.getSnapshot().matches('udp_waiting')).toBe(true);
    expect(s.frames().at(-1)).toMatchObject({ status: 'UDP_WAITING', reason: 'peer_timeout' });
    expect(s.commands).toContainEqual({ type: 'path.down' });
  });

  it('an IPv6 direct path with only an IPv4 relay falls back to that one (the first)', async () => {
    const s = startSession({ relays: [RELAY4] });
    await settle();
    s.heartbeat(V6);
    s.silent();
    expect(s.frames().at(-1)).toMatchObject({ path: 'relay', peer: '198.51.100.9:3478' });
  });

  describe('relay.peers: the peer servers\' endpoints as the relay sees them', () => {
    const REBOUND: Endpoint = { family: 'ipv4', address: '203.0.113.7', port: 50123 };

    it('relayed: learned with RELAY_PEER_CREDIT heartbeats and probed with the direct places, until the credit is spent', async () => {
      const s = startSession({ relays: [RELAY4], timing: { relayAfterMs: 0 } });
      await settle();
      s.advance(0);
      s.heartbeat(RELAY4);
      expect(s.actor.getSnapshot().matches({ udp_established: 'relayed' })).toBe(true);
      const frames = s.frames().length;
      s.actor.send({ type: 'relay.peers', endpoints: [REBOUND] });
      // Nothing for the client; the state stays.
      expect(s.frames().length).toBe(frames);
      expect(s.actor.getSnapshot().matches({ udp_established: 'relayed' })).toBe(true);
      expect(s.actor.getSnapshot().context.learned).toContainEqual({ endpoint: REBOUND, credit: RELAY_PEER_CREDIT });
      const probed = () => s.commands.filter((c) => c.type === 'probe' && c.to.some((e) => e.port === REBOUND.port)).length;
      s.advance(60_000);
      expect(probed()).toBe(RELAY_PEER_CREDIT);
      // The peer answers there: direct at its current endpoint.
      s.heartbeat(REBOUND);
      expect(s.actor.getSnapshot().matches({ udp_established: 'direct' })).toBe(true);
      expect(s.frames().at(-1)).toMatchObject({ status: 'UDP_ESTABLISHED', peer: '203.0.113.7:50123', path: 'direct' });
    });

    it('waiting (the relay step): punched with the candidates and the relay', async () => {
      const s = startSession({ relays: [RELAY4], timing: { relayAfterMs: 0 } });
      await settle();
      s.advance(0);
      s.actor.send({ type: 'relay.peers', endpoints: [REBOUND] });
      s.advance(200);
      expect(s.heartbeats().at(-1)?.to).toEqual([V6, V4, REBOUND, RELAY4]);
    });

    it('never a relay, never a family the server cannot send on, a proven endpoint stays proven, and at most MAX_LEARNED_ENDPOINTS in all', async () => {
      const s = startSession({ relays: [RELAY4], families: ['ipv4'], resolved: { candidates: [V4], problems: [] }, timing: { relayAfterMs: 0 } });
      await settle();
      s.advance(0);
      const v6: Endpoint = { family: 'ipv6', address: '2001:db8::7', port: 50000 };
      s.actor.send({ type: 'relay.peers', endpoints: [RELAY4, v6] });
      expect(s.actor.getSnapshot().context.learned).toEqual([]);
      // The lost path is proven (punched every tick); the relay's word leaves it so.
      const p = startSession({ families: ['ipv4'], resolved: { candidates: [V4], problems: [] } });
      await settle();
      p.heartbeat(V4);
      p.silent();
      expect(p.actor.getSnapshot().context.learned).toEqual([{ endpoint: V4, credit: null }]);
      p.actor.send({ type: 'relay.peers', endpoints: [V4] });
      expect(p.actor.getSnapshot().context.learned).toEqual([{ endpoint: V4, credit: null }]);
      const many = Array.from({ length: 6 }, (_, i): Endpoint => ({ family: 'ipv4', address: '203.0.113.7', port: 51000 + i }));
      s.actor.send({ type: 'relay.peers', endpoints: many });
      const learned = s.actor.getSnapshot().context.learned;
      expect(learned.length).toBe(MAX_LEARNED_ENDPOINTS);
      expect(learned.map((l) => l.endpoint)).toEqual(many.slice(0, MAX_LEARNED_ENDPOINTS));
    });
  });
});
