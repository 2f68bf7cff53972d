/**
 * Sessions through a real relay (issue 12): two `autoprox serve` processes with `--relay`
 * pointing at a real `autoprox relay` process, on loopback, with fast timings.
 * - Direct punching cannot work (each client names a port no server listens on): both reach
 *   UDP_ESTABLISHED with path "relay", peer = the relay, and 1,000 messages each way arrive intact
 *   and in order.
 * - Direct works too: the path ends "direct", and the relay forwards nothing once it is.
 * - The relay is killed: the relayed sessions go UDP_WAITING (peer_timeout), the direct ones are
 *   untouched.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { httpGet, metric } from '../helpers/metrics.js';
import { assertBuilt, CLI, FAST_FLAGS, killAllServers, startServerProcess, TEST_SECRET, type ServerProcess } from '../helpers/server-process.js';
import { sleep, TestClient } from '../helpers/ws-client.js';

const RELAY_SECRET = 'relay-secret-for-tests';
const MESSAGES = 1000;

interface RelayProcess {
  proc: ChildProcess;
  url: string;
  port: number;
}

async function startRelayProcess(): Promise<RelayProcess> {
  assertBuilt();
  const proc = spawn(
    process.execPath,
    [CLI, 'relay', '--udp-port', '0', '--port', '0', '--no-ipv6', '--udp-bind4', '127.0.0.1', '--relay-secret', RELAY_SECRET, '--log-level', 'warn'],
    { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const stderr: string[] = [];
  createInterface({ input: proc.stderr! }).on('line', (l) => stderr.push(l));
  const at = await new Promise<{ url: string; udp: { ipv4: number } }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay did not listen: ${stderr.join('\n')}`)), 10_000);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as { msg: string; url: string; udp: { ipv4: number } };
      if (entry.msg === 'listening') {
        clearTimeout(timer);
        resolve(entry);
      }
    });
    proc.once('exit', (code) => reject(new Error(`relay exited with ${code}: ${stderr.join('\n')}`)));
  });
  return { proc, url: at.url, port: at.udp.ipv4 };
}

/** A UDP port on loopback that nobody listens on (bound and closed at once). */
async function deadPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

async function forwarded(relay: RelayProcess): Promise<number> {
  return metric((await httpGet(`${relay.url}/metrics`)).body, 'autoprox_relay_forwarded_datagrams_total') ?? 0;
}

/**
 * The direct path between two servers, as a pair of loopback sockets that can be blocked: what
 * server A sends to `portA` leaves from `portB` towards server B, and the other way round (to
 * each server the other is at the forwarder's port, as behind a NAT).
 */
class DirectPath {
  blocked = false;
  private constructor(
    private readonly a: Socket,
    private readonly b: Socket,
  ) {}

  static async start(serverA: number, serverB: number): Promise<DirectPath> {
    const bind = async () => {
      const socket = createSocket('udp4');
      await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
      return socket;
    };
    const path = new DirectPath(await bind(), await bind());
    path.a.on('message', (m) => !path.blocked && path.b.send(m, serverB, '127.0.0.1'));
    path.b.on('message', (m) => !path.blocked && path.a.send(m, serverA, '127.0.0.1'));
    return path;
  }

  get portA(): number {
    return this.a.address().port;
  }

  get portB(): number {
    return this.b.address().port;
  }

  stop(): void {
    this.a.close();
    this.b.close();
  }
}

let relay: RelayProcess;
let a: ServerProcess;
let b: ServerProcess;
let token: string;
const clients: TestClient[] = [];

function open(server: ServerProcess, psk: Buffer, port: number, withToken = token): TestClient {
  const client = new TestClient(server.wsUrl, { hosts: ['127.0.0.1'], port, key: psk.toString('base64url'), token: withToken });
  clients.push(client);
  return client;
}

/** `count` messages each way, paced in bursts; both sides get all of them, intact and in order. */
async function exchange(x: TestClient, y: TestClient, count: number): Promise<void> {
  const payload = (side: string, i: number) => Buffer.from(`${side} ${String(i).padStart(4, '0')} ${'x'.repeat(64)}`);
  const xBefore = x.data.length;
  const yBefore = y.data.length;
  // About 1,000 a second each way: well inside the relay's per-end limits, and gentle on
  // loopback's socket buffers on a busy machine (datagram delivery: a datagram dropped there
  // would be lost for good).
  for (let i = 0; i < count; i += 10) {
    for (let j = i; j < Math.min(count, i + 10); j++) {
      x.send(payload('x', j));
      y.send(payload('y', j));
    }
    await sleep(10);
  }
  const missing = (c: TestClient, from: number, side: string) => {
    const got = new Set(c.data.slice(from).map(String));
    return Array.from({ length: count }, (_, i) => i).filter((i) => !got.has(payload(side, i).toString()));
  };
  await x.until(() => x.data.length - xBefore >= count, `${count} messages at x (missing ${missing(x, xBefore, 'y').slice(0, 20)})`, 15_000);
  await y.until(() => y.data.length - yBefore >= count, `${count} messages at y (missing ${missing(y, yBefore, 'x').slice(0, 20)})`, 15_000);
  expect(x.data.slice(xBefore).map(String)).toEqual(Array.from({ length: count }, (_, i) => payload('y', i).toString()));
  expect(y.data.slice(yBefore).map(String)).toEqual(Array.from({ length: count }, (_, i) => payload('x', i).toString()));
}

beforeAll(async () => {
  token = await mintToken(TEST_SECRET, 'relay-sessions', 600);
  relay = await startRelayProcess();
  const flags = [...FAST_FLAGS, '--udp-port', '0', '--no-ipv6', '--jwt-secret', TEST_SECRET, '--relay', `127.0.0.1:${relay.port}`, '--relay-secret', RELAY_SECRET, '--relay-after-ms', '0'];
  [a, b] = await Promise.all([startServerProcess(flags), startServerProcess(flags)]);
}, 20_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  relay?.proc.kill('SIGKILL');
  await killAllServers();
});

describe('sessions through a real relay', () => {
  const relayed: TestClient[] = [];
  const direct: TestClient[] = [];

  it('where direct works too: the path ends direct, and the relay forwards nothing once it is', async () => {
    const psk = randomBytes(32);
    const x = open(a, psk, b.udp.ipv4);
    const y = open(b, psk, a.udp.ipv4);
    for (const c of [x, y]) {
      await c.until(() => c.status?.status === 'UDP_ESTABLISHED' && c.status.path === 'direct', 'UDP_ESTABLISHED path direct', 10_000);
      expect(c.status).toMatchObject({ family: 'ipv4', path: 'direct' });
      expect(c.status!.relay).toBeUndefined();
    }
    expect(x.status!.peer).toBe(`127.0.0.1:${b.udp.ipv4}`);
    expect(y.status!.peer).toBe(`127.0.0.1:${a.udp.ipv4}`);
    // Give any datagram already on its way through the relay (a side's last relayed heartbeats) time to land.
    await sleep(300);
    // This pair is the relay's only tenant: once direct, the relay carries nothing of it.
    const before = await forwarded(relay);
    await exchange(x, y, MESSAGES);
    await sleep(300);
    expect(await forwarded(relay)).toBe(before);
    direct.push(x, y);
  }, 40_000);

  it('where no direct path can prove itself: both sides UDP_ESTABLISHED with path relay, peer = relay, 1,000 messages each way in order; the target policy does not apply to the relay', async () => {
    const psk = randomBytes(32);
    const [xPort, yPort] = [await deadPort(), await deadPort()];
    // Each token allows its client's candidate only: the relay is the operator's, not the client's, choice.
    const only = (port: number) => mintToken(TEST_SECRET, 'relay-sessions', 600, new Date(), { apx_targets: [`127.0.0.1/32:${port}`] });
    const x = open(a, psk, xPort, await only(xPort));
    const y = open(b, psk, yPort, await only(yPort));
    const relayText = `127.0.0.1:${relay.port}`;
    for (const c of [x, y]) {
      const frame = await c.waitForStatus('UDP_ESTABLISHED', {}, 10_000);
      expect(frame).toMatchObject({ status: 'UDP_ESTABLISHED', family: 'ipv4', peer: relayText, path: 'relay', relay: relayText });
      expect(c.statuses.map((s) => s.status)).toEqual(['CONNECTED', 'UDP_WAITING', 'UDP_ESTABLISHED']);
    }
    await exchange(x, y, MESSAGES);
    expect(await forwarded(relay)).toBeGreaterThanOrEqual(2 * MESSAGES);
    // The sessions API says so too.
    const admin = await mintToken(TEST_SECRET, 'admin', 600, new Date(), { apx_admin: true });
    const listed = JSON.parse((await httpGet(`${a.url}/v0/sessions`, { Authorization: `Bearer ${admin}` })).body) as { sessions: Array<{ path: string | null; peer: string | null; state: string }> };
    expect(listed.sessions).toContainEqual(expect.objectContaining({ path: 'relay', peer: relayText, state: 'udp_established.relayed' }));
    relayed.push(x, y);
  }, 40_000);

  it('the direct path dies: on through the relay at once (no UDP_WAITING), and back to direct when it works again', async () => {
    const psk = randomBytes(32);
    const path = await DirectPath.start(a.udp.ipv4, b.udp.ipv4);
    try {
      const x = open(a, psk, path.portA);
      const y = open(b, psk, path.portB);
      const directAt = (c: TestClient) => c.status?.status === 'UDP_ESTABLISHED' && c.status.path === 'direct';
      for (const c of [x, y]) await c.until(() => directAt(c), 'UDP_ESTABLISHED path direct', 10_000);
      expect(x.status!.peer).toBe(`127.0.0.1:${path.portA}`);
      expect(y.status!.peer).toBe(`127.0.0.1:${path.portB}`);
      await exchange(x, y, 200);
      const before = [x.statuses.length, y.statuses.length];
      path.blocked = true;
      const relayText = `127.0.0.1:${relay.port}`;
      for (const c of [x, y]) {
        await c.until(() => c.status?.path === 'relay', 'UDP_ESTABLISHED path relay', 5_000);
        expect(c.status).toMatchObject({ status: 'UDP_ESTABLISHED', peer: relayText, relay: relayText });
      }
      [x, y].forEach((c, i) => expect(c.statuses.slice(before[i]).map((f) => `${f.status} ${f.path}`)).toEqual(['UDP_ESTABLISHED relay']));
      // Both ends were paired at the relay while direct worked (a direct path keeps its channel
      // bound there), so the first message after the switch gets through.
      await exchange(x, y, 200).catch(async (err: Error) => {
        const text = (await httpGet(`${relay.url}/metrics`)).body;
        err.message += `\nrelay: ${text.split('\n').filter((l) => /^autoprox_relay_(drops|forwarded_datagrams|pairs|bindings)/.test(l) && !/ 0$/.test(l)).join('; ')}`;
        err.message += `\nx: ${JSON.stringify(x.statuses.slice(-3))} ${JSON.stringify(x.errors)}\ny: ${JSON.stringify(y.statuses.slice(-3))} ${JSON.stringify(y.errors)}`;
        throw err;
      });
      path.blocked = false;
      for (const c of [x, y]) await c.until(() => directAt(c), 'UDP_ESTABLISHED path direct again', 5_000);
      [x, y].forEach((c, i) => expect(c.statuses.slice(before[i]).map((f) => `${f.status} ${f.path}`)).toEqual(['UDP_ESTABLISHED relay', 'UDP_ESTABLISHED direct']));
      await exchange(x, y, 200);
      await Promise.all([x.close(), y.close()]);
    } finally {
      path.stop();
    }
  }, 40_000);

  it('the relay killed: relayed sessions go UDP_WAITING (peer_timeout), direct sessions are untouched', async () => {
    expect(relayed.length).toBe(2);
    expect(direct.length).toBe(2);
    const directFrames = direct.map((c) => c.statuses.length);
    relay.proc.kill('SIGKILL');
    for (const c of relayed) await c.waitForStatus('UDP_WAITING', { reason: 'peer_timeout' }, 5_000);
    await sleep(600); // longer than the peer timeout (400 ms)
    direct.forEach((c, i) => {
      expect(c.statuses.length).toBe(directFrames[i]);
      expect(c.status).toMatchObject({ status: 'UDP_ESTABLISHED', path: 'direct' });
    });
    await exchange(direct[0]!, direct[1]!, 100);
  }, 20_000);
});
