/**
 * Graceful shutdown of a real server process, and its logs: SIGTERM and SIGINT close every
 * session (CLOSED with a reason, code 1001, CLOSE to the peer), close the sockets and exit 0
 * within a bounded time; every log line is JSON and every line about a session names it.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { PacketType } from '../../src/protocol/packet.js';
import { ScriptedPeer } from '../helpers/scripted-peer.js';
import { killAllServers, startServerProcess, TEST_SECRET } from '../helpers/server-process.js';
import { TestClient } from '../helpers/ws-client.js';
import { eventuallyAsync as eventually } from '../helpers/waiter.js';

/** A graceful stop with live sessions must finish well within this (ms). */
const STOP_BOUND_MS = 3000;
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await killAllServers();
});

describe.each(['SIGTERM', 'SIGINT'] as const)('on %s', (signal) => {
  it('closes every session (CLOSED, 1001, CLOSE to the peer), then exits 0 in bounded time', async () => {
    const server = await startServerProcess(['--udp-port', '0', '--jwt-secret', TEST_SECRET, '--punch-ms', '20', '--heartbeat-ms', '50', '--log-level', 'debug']);
    const psk = randomBytes(32);
    const peer = await ScriptedPeer.start('ipv4', psk);
    cleanups.push(() => peer.stop());
    const token = await mintToken(TEST_SECRET, 'shutdown', 600);
    const clients = [0, 1].map(() => new TestClient(server.wsUrl, { hosts: ['127.0.0.1'], port: peer.endpoint.port, key: psk.toString('base64url'), token }));
    cleanups.push(() => Promise.all(clients.map((c) => c.close())));
    await Promise.all(clients.map((c) => c.waitForStatus('UDP_ESTABLISHED')));

    const started = Date.now();
    server.proc.kill(signal);
    for (const c of clients) {
      expect(await c.waitForStatus('CLOSED')).toMatchObject({ reason: 'server_shutdown', message: 'the server is shutting down' });
      expect(await c.closed).toBe(1001);
    }
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(STOP_BOUND_MS);
    await peer.until(() => peer.received.filter((r) => r.header.type === PacketType.CLOSE && r.plaintext !== null).length >= 1, 'CLOSE from the server');

    // Logs: JSON lines; everything about a session names it; no key, no token.
    const lines = server.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    const ids = clients.map((c) => c.statuses[0]!.session);
    const aboutSessions = lines.filter((l) => ['session opened', 'status', 'session ended'].includes(String(l.msg)));
    expect(aboutSessions.length).toBeGreaterThanOrEqual(2 * 5);
    expect(aboutSessions.every((l) => ids.includes(String(l.session)))).toBe(true);
    for (const l of lines) {
      if (JSON.stringify(l).includes(ids[0]!) || JSON.stringify(l).includes(ids[1]!)) expect(ids).toContain(l.session);
    }
    const all = server.logs.join('\n');
    expect(all).not.toContain(psk.toString('base64url'));
    expect(all).not.toContain(token);
    expect(all).not.toContain(TEST_SECRET);
  });
});

describe('draining with --drain-delay-ms', () => {
  it('says draining on /readyz and refuses new upgrades while open sessions go on, then closes them', async () => {
    const server = await startServerProcess(['--udp-port', '0', '--jwt-secret', TEST_SECRET, '--punch-ms', '20', '--drain-delay-ms', '1500']);
    const psk = randomBytes(32);
    const peer = await ScriptedPeer.start('ipv4', psk);
    cleanups.push(() => peer.stop());
    const token = await mintToken(TEST_SECRET, 'drain', 600);
    const open = () => new TestClient(server.wsUrl, { hosts: ['127.0.0.1'], port: peer.endpoint.port, key: psk.toString('base64url'), token });
    const c = open();
    cleanups.push(() => c.close());
    await c.waitForStatus('UDP_ESTABLISHED');
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);

    server.proc.kill('SIGTERM');
    await eventually(async () => (await fetch(`${server.url}/readyz`)).status === 503, 'readyz to say draining');
    expect(await (await fetch(`${server.url}/readyz`)).json()).toEqual({ status: 'draining' });
    const late = open();
    cleanups.push(() => late.close());
    await expect(late.opened).rejects.toThrow(/503/);
    // The open session still carries data while draining.
    c.send(Buffer.from('while draining'));
    await peer.until(() => peer.dataReceived().some((d) => d.toString() === 'while draining'), 'data while draining');
    expect(c.status?.status).toBe('UDP_ESTABLISHED');

    expect(await c.waitForStatus('CLOSED', {}, 5000)).toMatchObject({ reason: 'server_shutdown' });
    expect(await server.exited).toEqual({ code: 0, signal: null });
  });
});
