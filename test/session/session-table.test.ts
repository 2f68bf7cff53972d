/**
 * The session table and its records, on real WebSockets: server-wide slots, a record per
 * WebSocket handed to the supervisor, everything released once whichever way the session ends.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createActor, fromPromise } from 'xstate';
import { sessionMachine } from '../../machines/session.machine.js';
import type { SessionActor } from '../../machines/session-host.js';
import type { ResolvedTargets, ResolveInput } from '../../machines/types.js';
import { Refusal } from '../../src/errors.js';
import type { Admitted } from '../../src/http/admission.js';
import { createBridgeActor } from '../../src/io/bridge.actor.js';
import type { PeerLink } from '../../src/io/peer-link.js';
import { HeartbeatWheel } from '../../src/io/heartbeat-wheel.js';
import { SessionLink } from '../../src/io/session-link.js';
import { Switchboard } from '../../src/io/switchboard.js';
import { createLogger } from '../../src/log.js';
import { SessionRegistry } from '../../src/observe/registry.js';
import type { Session } from '../../src/session/session.js';
import { SessionTable } from '../../src/session/table.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { eventually } from '../helpers/waiter.js';
import { wsPair, type WsPair } from '../helpers/ws-pair.js';

const pairs: WsPair[] = [];
afterEach(async () => {
  for (const p of pairs.splice(0)) await p.close();
});

function table(maxSessions = 2, wsPingMs = 30_000) {
  const clock = new FakeClock();
  const log = createLogger('silent');
  const switchboard = new Switchboard<PeerLink>({ maxPayloadBytes: 1200, preauth: { perSourcePerS: 0, totalPerS: 0 }, log, clock });
  const registry = new SessionRegistry(() => clock.wallMs());
  const wheel = new HeartbeatWheel(clock, (err) => {
    throw err;
  });
  const started: Session[] = [];
  let accepting = true;
  const t = new SessionTable({
    maxSessions,
    wsPingMs,
    clock,
    registry,
    accepting: () => accepting,
    makeLink: (ws, socket, admitted) =>
      new SessionLink({ id: admitted.id, ws, socket, psk: admitted.params.key, maxPayload: 1200, switchboard, log, clock, limits: { clientMsgsPerS: 0, clientBytesPerS: 0, udpOutPerS: 0 }, deny: () => null, tokenExpiresAtMs: null, wheel, timing: { heartbeatMs: 1000, peerTimeoutMs: 5000 } }),
    start: (session) => started.push(session),
  });
  return { t, clock, registry, started, stopAccepting: () => (accepting = false) };
}

function admitted(t: SessionTable, id: string, released: string[]): Admitted {
  const slot = t.reserve();
  if (slot instanceof Refusal) throw slot;
  return {
    id,
    params: { hosts: ['192.0.2.7'], port: 40000, key: randomBytes(32) },
    grants: { subject: 'alice', expiresAtMs: 0, targets: null, maxSessions: null, admin: false },
    client: '127.0.0.1',
    release: () => (released.push(id), slot()),
  } as unknown as Admitted;
}

async function open(t: SessionTable, id: string, released: string[]) {
  const pair = await wsPair();
  pairs.push(pair);
  return { pair, session: t.open(pair.ws, pair.socket, admitted(t, id, released)) };
}

describe('SessionTable', () => {
  it('refuses beyond --max-sessions (503 server_full) and while not accepting (503 unavailable)', () => {
    const { t, stopAccepting } = table(1);
    const slot = t.reserve();
    expect(slot).toBeInstanceOf(Function);
    expect(t.reserve()).toMatchObject({ status: 503, code: 'server_full' });
    (slot as () => void)();
    expect(t.reserve()).toBeInstanceOf(Function);
    stopAccepting();
    expect(t.reserve()).toMatchObject({ status: 503, code: 'unavailable' });
  });

  it('a record per WebSocket, handed to the supervisor; its actor\'s end releases everything, once', async () => {
    const { t, started, registry } = table();
    const released: string[] = [];
    const { session, pair } = await open(t, 'one', released);
    expect(started).toEqual([session]);
    expect(t.links.get('one')).toBe(session.link);
    // The session machine with the server's bridge (the record's own IO) and a resolver that answers.
    const machine = sessionMachine.provide({
      actors: { bridge: createBridgeActor(), resolveTargets: fromPromise<ResolvedTargets, ResolveInput>(async () => ({ candidates: [{ family: 'ipv4', address: '192.0.2.7', port: 40000 }], problems: [] })) },
    });
    const timing = { punchMs: 200, heartbeatMs: 1000, peerTimeoutMs: 5000, fallbackMs: 3000, punchTimeoutMs: 0 };
    const actor: SessionActor = createActor(machine, { input: { id: session.id, hosts: session.hosts, port: session.port, io: session.io, families: ['ipv4'], timing } });
    session.started(actor);
    actor.start();
    expect(registry.get('one')).toMatchObject({ subject: 'alice', client: '127.0.0.1' });
    pair.client.close(1000); // the client leaves: the machine closes, the record releases
    await pair.closed;
    await new Promise((r) => setTimeout(r, 50));
    expect(actor.getSnapshot().status).toBe('done');
    expect(released).toEqual(['one']);
    expect(t.size).toBe(0);
    expect(t.links.size).toBe(0);
    expect(registry.size).toBe(0);
    expect(t.reserve()).toBeInstanceOf(Function); // the slot came back
  });

  it('a refused record closes its WebSocket with 1001 and releases its slot', async () => {
    const { t } = table();
    const released: string[] = [];
    const { session, pair } = await open(t, 'late', released);
    session.refused();
    expect(await pair.closed).toMatchObject({ code: 1001, reason: 'server_shutdown' });
    expect(released).toEqual(['late']);
    expect(t.size).toBe(0);
  });

  it('pings a slice of the clients per tick (at most a second apart), each once per --ws-ping-ms; one that never answers is dropped', async () => {
    const { t, clock } = table(3, 3_000);
    const released: string[] = [];
    const opened = [await open(t, 'a', released), await open(t, 'b', released), await open(t, 'c', released)];
    const pings = [0, 0, 0];
    opened.forEach(({ pair }, i) => pair.client.on('ping', () => pings[i]!++));
    const settle = async (total: number) => {
      await eventually(() => pings.reduce((a, b) => a + b, 0) >= total, `${total} pings`, 2_000);
      await new Promise((r) => setTimeout(r, 30)); // and nothing more arrives
    };
    t.startPings();
    clock.advance(1_000);
    await settle(1);
    expect(pings).toEqual([1, 0, 0]); // one slice of three, not all at once
    clock.advance(2_000);
    await settle(3);
    expect(pings).toEqual([1, 1, 1]);
    // 'b' stops reading: it never sees (nor answers) its next ping, and is dropped at the one after.
    (opened[1]!.pair.client as unknown as { _socket: { pause(): void } })._socket.pause();
    clock.advance(3_000);
    await settle(5);
    expect(pings).toEqual([2, 1, 2]);
    clock.advance(3_000);
    await settle(7);
    expect(pings).toEqual([3, 1, 3]);
    // The table learns of the drop from the server end's close event, which no client event announces.
    await eventually(() => t.size === 2, "'b' dropped", 2_000);
    expect(t.get('b')).toBeUndefined();
    expect(t.get('a')).toBeDefined();
    expect(t.get('c')).toBeDefined();
    t.stopPings();
  });
});
