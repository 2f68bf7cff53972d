/**
 * A flood of forged datagrams from 10,000 source addresses (one socket each, 127.3.x.y) at a
 * server with its default limits, while one session is established and relaying and another of
 * the same key waits for its peer. Every forged heartbeat names their channel and a new salt:
 * a waiting session listens to any peer session of its key, so each one that gets past the
 * budgets costs the server a key derivation and an AES-GCM open. (With no session of the key
 * waiting, a new salt costs nothing at all: test/io/channel-and-peer-link.test.ts.) A fresh per-source budget per address
 * does not help the flood: the server-wide budget caps the work. The session stays established,
 * every message of it arrives, and every forged datagram is counted by cause.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { deriveChannelId } from '../../src/protocol/crypto.js';
import { encodeHeader, PacketType } from '../../src/protocol/packet.js';
import { httpGet, metric, metricsByLabel } from '../helpers/metrics.js';
import { ScriptedPeer } from '../helpers/scripted-peer.js';
import { killAllServers, startServerProcess, TEST_SECRET } from '../helpers/server-process.js';
import { sleep, TestClient } from '../helpers/ws-client.js';

const SOURCES = 10_000;
/** Forged datagrams per source address. */
const PER_SOURCE = 6;
/** Sockets bound at once (well under the file descriptor limit). */
const BATCH = 250;
const MESSAGES = 200;
/**
 * The flood's rate: twice the server-wide budget, from ever new addresses. (A flood faster than
 * the server can read fills the kernel's socket buffer, and the kernel drops genuine datagrams
 * with forged ones: README, "beyond any userland program". This one the server can read while
 * other tests load the machine.)
 */
const FLOOD_PER_S = 10_000;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await killAllServers();
});

/** 127.3.0.1, ..., 127.3.0.250, 127.3.1.1, ...: 250 addresses per /24, none ending in 0 or 255. */
function sourceAddress(i: number): string {
  return `127.3.${Math.floor(i / 250)}.${(i % 250) + 1}`;
}

async function bindAt(address: string): Promise<Socket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, address, () => resolve());
  });
  return socket;
}

it('10,000 flooding source addresses: the session stays established and relays everything; the flood is bounded and counted', { timeout: 60_000 }, async () => {
  // Default limits: --udp-preauth-per-s 10000 per source, --udp-preauth-total-per-s 5000.
  const server = await startServerProcess(['--udp-port', '0', `--jwt-secret=${TEST_SECRET}`, '--no-ipv6', '--punch-ms', '20', '--heartbeat-ms', '100', '--peer-timeout-ms', '1500']);
  const psk = randomBytes(32);
  const peer = await ScriptedPeer.start('ipv4', psk);
  cleanups.push(() => peer.stop());
  const token = await mintToken(TEST_SECRET, 'flood', 600);
  const client = new TestClient(server.wsUrl, { hosts: ['127.0.0.1'], port: peer.endpoint.port, key: psk.toString('base64url'), token });
  cleanups.push(() => client.close());
  await client.waitForStatus('UDP_ESTABLISHED');
  const statusesBefore = client.statuses.length;
  // The same key's second session, punching towards a peer that never answers: it waits.
  const silent = createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', () => resolve()));
  cleanups.push(() => silent.close());
  const waiting = new TestClient(server.wsUrl, { hosts: ['127.0.0.1'], port: silent.address().port, key: psk.toString('base64url'), token });
  cleanups.push(() => waiting.close());
  await waiting.waitForStatus('UDP_WAITING');
  const waitingStatuses = waiting.statuses.length;
  const serverUdp = { family: 'ipv4' as const, address: '127.0.0.1', port: server.udp.ipv4 };
  const channel = deriveChannelId(psk);
  const before = (await httpGet(`${server.url}/metrics`)).body;
  const cpuBefore = metric(before, 'autoprox_process_cpu_seconds_total')!;

  // The session's traffic goes on all through the flood, both ways.
  let sent = 0;
  const traffic = setInterval(() => {
    if (sent >= MESSAGES) return;
    peer.data(serverUdp, Buffer.from(`to the client ${sent}`));
    client.send(Buffer.from(`to the peer ${sent}`));
    sent++;
  }, 10);
  cleanups.push(() => clearInterval(traffic));

  let forged = 0;
  const started = performance.now();
  for (let first = 0; first < SOURCES; first += BATCH) {
    const sockets = await Promise.all(Array.from({ length: Math.min(BATCH, SOURCES - first) }, (_, i) => bindAt(sourceAddress(first + i))));
    for (let k = 0; k < PER_SOURCE; k++) {
      for (const socket of sockets) {
        // The right channel, a salt never seen, a counter, garbage where the ciphertext and tag go.
        const header = encodeHeader(PacketType.HEARTBEAT, channel, randomBytes(16), k);
        socket.send(Buffer.concat([header, randomBytes(56)]), serverUdp.port, serverUdp.address);
        forged++;
      }
      // Paced: a flood the server can at least read (one faster than any program can read fills
      // the kernel's socket buffer, README's "beyond any userland program").
      const due = started + (forged / FLOOD_PER_S) * 1000;
      await sleep(Math.max(0, due - performance.now()));
    }
    for (const socket of sockets) socket.close();
  }
  const floodMs = performance.now() - started;

  await client.until(() => client.data.length >= MESSAGES, `${MESSAGES} messages from the peer`, 20_000);
  await peer.until(() => peer.dataReceived().length >= MESSAGES, `${MESSAGES} messages from the client`, 20_000);
  clearInterval(traffic);
  await sleep(300);

  // The session never left UDP_ESTABLISHED, and nothing of it was lost or reordered.
  expect(client.statuses.slice(statusesBefore)).toEqual([]);
  expect(waiting.statuses.slice(waitingStatuses)).toEqual([]); // still waiting, listening to every salt
  expect(client.data.map(String)).toEqual(Array.from({ length: MESSAGES }, (_, i) => `to the client ${i}`));
  expect(peer.dataReceived().map(String)).toEqual(Array.from({ length: MESSAGES }, (_, i) => `to the peer ${i}`));

  // The flood: bounded by the server-wide budget, every datagram that arrived counted by cause.
  const after = (await httpGet(`${server.url}/metrics`)).body;
  const drops = metricsByLabel(after, 'autoprox_drops_total', 'cause');
  const dropsBefore = metricsByLabel(before, 'autoprox_drops_total', 'cause');
  const delta = (cause: string) => (drops[cause] ?? 0) - (dropsBefore[cause] ?? 0);
  const received = metric(after, 'autoprox_udp_datagrams_received_total')! - metric(before, 'autoprox_udp_datagrams_received_total')!;
  const authenticated = metric(after, 'autoprox_datagrams_total{direction="in"}')! - metric(before, 'autoprox_datagrams_total{direction="in"}')!;
  const counted = Object.keys(drops).reduce((sum, cause) => sum + (cause === 'send_failed' ? 0 : delta(cause)), 0);
  const cpuS = metric(after, 'autoprox_process_cpu_seconds_total')! - cpuBefore;
  console.log(
    `flood: ${forged} forged datagrams from ${SOURCES} addresses in ${floodMs.toFixed(0)} ms; received ${received}; ` +
      `preauth_budget ${delta('preauth_budget')}, preauth_limited ${delta('preauth_limited')}, auth_failed ${delta('auth_failed')}; ` +
      `server CPU ${cpuS.toFixed(2)} s`,
  );
  expect(received).toBeGreaterThan(forged * 0.9);
  expect(counted).toBe(received - authenticated);
  expect(delta('preauth_budget')).toBeGreaterThan(0); // the server-wide budget did the bounding
  expect(delta('auth_failed')).toBeGreaterThan(0); // what the budget let through was tried, and failed
  // ... not all of it: at most the budget's rate (5,000/s by default) over the flood, plus its burst.
  expect(delta('auth_failed')).toBeLessThan(5000 * (floodMs / 1000 + 1));
});
