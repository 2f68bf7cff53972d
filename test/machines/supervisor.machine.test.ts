import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise, waitFor, type EventObject } from 'xstate';
import { createSessionHost, type SessionActor, type SessionRequest } from '../../machines/session-host.js';
import { sessionMachine } from '../../machines/session.machine.js';
import { supervisorMachine, type SupervisorInput } from '../../machines/supervisor.machine.js';
import type { BridgeCommand, BridgeInput, ResolvedTargets, ResolveInput, SessionPort, UdpSocketInput } from '../../machines/types.js';
import { TEST_TIMING } from '../helpers/session-harness.js';

type BindResult = { port: number } | { code: string };

/**
 * A supervisor whose IO is swapped for test actors: UDP sockets that "bind" as told, and
 * sessions whose bridge records commands.
 */
function startSupervisor(
  bind: (input: UdpSocketInput) => BindResult,
  overrides: Partial<SupervisorInput['udp']> = {},
  guards: { hasCandidates?: () => boolean } = {},
) {
  const binds: UdpSocketInput[] = [];
  const stoppedSockets: string[] = [];
  const commands = new Map<string, BridgeCommand[]>();
  const sessions = new Map<string, SessionActor>();
  const machine = supervisorMachine.provide({
    actors: {
      udpSocket: fromCallback<EventObject, UdpSocketInput>(({ input, sendBack }) => {
        binds.push(input);
        const result = bind(input);
        queueMicrotask(() =>
          sendBack(
            'port' in result
              ? { type: 'udp.bound', family: input.family, port: result.port }
              : { type: 'udp.failed', family: input.family, code: result.code, message: 'test' },
          ),
        );
        return () => stoppedSockets.push(input.family);
      }),
      sessionHost: createSessionHost(
        sessionMachine.provide({
          actors: {
            bridge: fromCallback<BridgeCommand, BridgeInput>(({ input, receive }) => {
              const list: BridgeCommand[] = [];
              commands.set(input.sessionId, list);
              receive((c) => list.push(c));
            }),
            resolveTargets: fromPromise<ResolvedTargets, ResolveInput>(async () => ({
              candidates: [{ family: 'ipv4' as const, address: '192.0.2.1', port: 40000 }],
              problems: [],
            })),
          },
          guards,
        }),
      ),
    },
  });
  const actor = createActor(machine, {
    input: {
      udp: { port: 40000, bind4: '0.0.0.0', bind6: '::', ipv6: true, ipv6Required: false, ...overrides },
      timing: TEST_TIMING,
      drainMs: 1000,
    },
  });
  const warnings: string[] = [];
  actor.on('udp.unavailable', (e) => warnings.push(e.message));
  actor.start();
  const refused: string[] = [];
  /** What the server sends for an accepted WebSocket: the live actors are tracked as the server's table does. */
  const open = (id: string) => {
    const request: SessionRequest = {
      id,
      hosts: ['192.0.2.1'],
      port: 40000,
      io: NO_IO,
      started: (session) => {
        sessions.set(id, session);
        session.subscribe({ complete: () => sessions.delete(id), error: () => sessions.delete(id) });
      },
      refused: () => refused.push(id),
    };
    actor.send({ type: 'session.open', request });
  };
  return { actor, binds, stoppedSockets, commands, warnings, sessions, open, refused };
}

/** The test's bridge records commands itself: the sessions need no IO of their own. */
const NO_IO: SessionPort = { attach: () => {}, handle: () => {}, detach: () => {}, deny: () => null };

describe('supervisor machine', () => {
  it('binds IPv4, then IPv6 on the same port, then runs', async () => {
    const s = startSupervisor((input) => ({ port: input.port === 0 ? 41000 : input.port }), { port: 0 });
    const snap = await waitFor(s.actor, (x) => x.matches('running'), { timeout: 1000 });
    expect(s.binds).toEqual([
      { family: 'ipv4', address: '0.0.0.0', port: 0 },
      { family: 'ipv6', address: '::', port: 41000 },
    ]);
    expect(snap.context.ports).toEqual({ ipv4: 41000, ipv6: 41000 });
  });

  it('takes any IPv6 port when the IPv4 port number is taken on IPv6 and the operator asked for port 0', async () => {
    const s = startSupervisor((input) => (input.family === 'ipv6' && input.port !== 0 ? { code: 'EADDRINUSE' } : { port: input.family === 'ipv4' ? 41000 : 42000 }), { port: 0 });
    const snap = await waitFor(s.actor, (x) => x.matches('running'), { timeout: 1000 });
    expect(snap.context.ports).toEqual({ ipv4: 41000, ipv6: 42000 });
  });

  it('serves IPv4 only, with a warning, when IPv6 cannot be bound and was not asked for explicitly', async () => {
    const s = startSupervisor((input) => (input.family === 'ipv6' ? { code: 'EAFNOSUPPORT' } : { port: 40000 }));
    const snap = await waitFor(s.actor, (x) => x.matches('running'), { timeout: 1000 });
    expect(snap.context.ports).toEqual({ ipv4: 40000, ipv6: null });
    expect(s.warnings).toEqual(['EAFNOSUPPORT test']);
  });

  it('fails when an explicitly requested IPv6 address cannot be bound', async () => {
    const s = startSupervisor((input) => (input.family === 'ipv6' ? { code: 'EADDRNOTAVAIL' } : { port: 40000 }), { ipv6Required: true });
    const snap = await waitFor(s.actor, (x) => x.status === 'done', { timeout: 1000 });
    expect(snap.value).toBe('failed');
    expect(snap.context.failure).toMatch(/UDP ipv6 bind failed: EADDRNOTAVAIL/);
  });

  it('fails when IPv4 cannot be bound', async () => {
    const s = startSupervisor(() => ({ code: 'EADDRINUSE' }));
    const snap = await waitFor(s.actor, (x) => x.status === 'done', { timeout: 1000 });
    expect(snap.value).toBe('failed');
  });

  it('with --no-ipv6, binds IPv4 only', async () => {
    const s = startSupervisor(() => ({ port: 40000 }), { ipv6: false });
    await waitFor(s.actor, (x) => x.matches('running'), { timeout: 1000 });
    expect(s.binds.map((b) => b.family)).toEqual(['ipv4']);
  });

  it('starts one session actor per WebSocket, each in its own actor system, and reaps it when it closes', async () => {
    const s = startSupervisor(() => ({ port: 40000 }));
    await waitFor(s.actor, (x) => x.matches('running'), { timeout: 1000 });
    s.open('one');
    s.open('two');
    expect([...s.sessions.keys()]).toEqual(['one', 'two']);
    const one = s.sessions.get('one')!;
    expect(one.id).toBe('session:one');
    expect(one.system).not.toBe(s.actor.system);
    expect(one.getSnapshot().context.timing).toEqual(TEST_TIMING);
    expect(s.actor.getSnapshot().context.sessions).toBe(2);

    one.send({ type: 'ws.closed', code: 1000 });
    expect([...s.sessions.keys()]).toEqual(['two']);
    expect(one.getSnapshot().status).toBe('done');
    expect(s.actor.getSnapshot().context.sessions).toBe(1);
    expect(s.commands.get('one')!.at(-1)).toEqual({ type: 'close', code: 1000, reason: 'client_closed' });
  });

  it('on shutdown tells every session, reaps them all, stops and closes the sockets', async () => {
    const s = startSupervisor(() => ({ port: 40000 }));
    await waitFor(s.actor, (x) => x.matches('running'), { timeout: 1000 });
    for (const id of ['a', 'b', 'c']) s.open(id);
    s.actor.send({ type: 'shutdown' });
    const snap = await waitFor(s.actor, (x) => x.status === 'done', { timeout: 1000 });
    expect(snap.value).toBe('stopped');
    for (const id of ['a', 'b', 'c']) {
      expect(s.commands.get(id)!.at(-1)).toEqual({ type: 'close', code: 1001, reason: 'server_shutdown' });
    }
    expect(s.stoppedSockets.sort()).toEqual(['ipv4', 'ipv6']);
    expect(s.sessions.size).toBe(0);
  });

  it('stops the sessions still open when it stops', async () => {
    const s = startSupervisor(() => ({ port: 40000 }));
    await waitFor(s.actor, (x) => x.matches('running'), { timeout: 1000 });
    s.open('kept');
    const kept = s.sessions.get('kept')!;
    s.actor.stop();
    expect(kept.getSnapshot().status).toBe('stopped');
    expect(s.sessions.size).toBe(0);
  });

  it('reports a session that fails, and counts it out', async () => {
    // A bug in the session machine: a guard that throws once the candidates are resolved.
    const s = startSupervisor(() => ({ port: 40000 }), {}, {
      hasCandidates: () => {
        throw new Error('guard broke');
      },
    });
    const failures: unknown[] = [];
    s.actor.on('session.failed', (e) => failures.push(e.actorId));
    await waitFor(s.actor, (x) => x.matches('running'), { timeout: 1000 });
    s.open('bad');
    await waitFor(s.actor, (x) => x.context.sessions === 0, { timeout: 1000 });
    expect(failures).toEqual(['session:bad']);
    expect(s.sessions.size).toBe(0);
  });

  it('opens no session once shutting down', async () => {
    const s = startSupervisor(() => ({ port: 40000 }));
    await waitFor(s.actor, (x) => x.matches('running'), { timeout: 1000 });
    s.actor.send({ type: 'shutdown' });
    s.open('late');
    expect(s.commands.has('late')).toBe(false);
  });

  it('the session host refuses requests once told to shut down, and says so to the requester', () => {
    const refused: string[] = [];
    const events: string[] = [];
    const host = createActor(createSessionHost(sessionMachine));
    host.start();
    host.send({ type: 'shutdown' });
    host.send({
      type: 'session.open',
      request: { id: 'late', hosts: ['192.0.2.1'], port: 40000, io: NO_IO, started: () => events.push('started'), refused: () => refused.push('late') },
      families: ['ipv4'],
      timing: TEST_TIMING,
    });
    expect(refused).toEqual(['late']);
    expect(events).toEqual([]);
  });
});
