/**
 * Protocol versions: a server speaking v1 meets datagrams of v0 (autoprox 0.1) and of a version
 * it does not know. Each is dropped, counted as `version`, never answered, and logged once per
 * source with a line that tells the operator what to do. A real server process, real sockets.
 */
import { createHmac, createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, expect, it } from 'vitest';
import { httpGet, metric } from '../helpers/metrics.js';
import { killAllServers, startServerProcess, TEST_SECRET } from '../helpers/server-process.js';
import { eventually } from '../helpers/waiter.js';
import { sleep } from '../helpers/ws-client.js';

const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  await killAllServers();
});

/** A genuine v0 datagram, built from the v0 specification (README of autoprox 0.1). */
function v0Datagram(type: 1 | 3, psk: Buffer): Buffer {
  const channel = Buffer.from(hkdfSync('sha256', psk, Buffer.alloc(0), 'autoprox v0 channel id', 8));
  const salt = randomBytes(8);
  const key = Buffer.from(hkdfSync('sha256', psk, salt, 'autoprox v0 packet key', 32));
  const header = Buffer.concat([Buffer.from([0xa0, type]), channel, salt, Buffer.alloc(8)]);
  const cipher = createCipheriv('aes-256-gcm', key, Buffer.alloc(12));
  cipher.setAAD(header);
  const plaintext = type === 1 ? Buffer.alloc(32) : Buffer.alloc(0);
  return Buffer.concat([header, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

async function from(address: string): Promise<{ socket: Socket; answers: Buffer[] }> {
  const socket = createSocket('udp4');
  sockets.push(socket);
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  const answers: Buffer[] = [];
  socket.on('message', (m) => answers.push(m));
  return { socket, answers };
}

it('drops v0 and unknown-version datagrams, counts them as `version`, logs once per source, answers nothing', async () => {
  const server = await startServerProcess(['--udp-port', '0', `--jwt-secret=${TEST_SECRET}`, '--no-ipv6']);
  const psk = randomBytes(32);
  const heartbeat = v0Datagram(1, psk);
  const close = v0Datagram(3, psk);
  expect([heartbeat.length, close.length]).toEqual([74, 42]); // v0's sizes: a real v0 server sends these
  const later = Buffer.from(heartbeat);
  later[0] = 0xa7; // a version this server does not know

  const old1 = await from('127.0.0.31');
  const old2 = await from('127.0.0.32');
  const newer = await from('127.0.0.33');
  for (let i = 0; i < 5; i++) old1.socket.send(heartbeat, server.udp.ipv4, '127.0.0.1');
  old1.socket.send(close, server.udp.ipv4, '127.0.0.1');
  old2.socket.send(heartbeat, server.udp.ipv4, '127.0.0.1');
  newer.socket.send(later, server.udp.ipv4, '127.0.0.1');
  // Garbage that merely starts like autoprox is malformed, not a version problem.
  old2.socket.send(Buffer.concat([Buffer.from([0xa0, 0x09]), randomBytes(60)]), server.udp.ipv4, '127.0.0.1');

  const metrics = async () => (await httpGet(`${server.url}/metrics`)).body;
  await eventually(() => server.logs.filter((l) => l.includes('same protocol version')).length >= 3, 'three log lines');
  const text = await metrics();
  expect(metric(text, 'autoprox_udp_datagrams_received_total')).toBe(9);
  expect(metric(text, 'autoprox_drops_total{cause="version"}')).toBe(8);
  expect(metric(text, 'autoprox_drops_total{cause="malformed"}')).toBe(1);

  await sleep(200);
  const lines = server.logs.map((l) => JSON.parse(l) as { level: string; msg: string; from?: string }).filter((l) => l.msg.includes('protocol version'));
  expect(lines.map((l) => l.from).sort()).toEqual([`127.0.0.31:${old1.socket.address().port}`, `127.0.0.32:${old2.socket.address().port}`, `127.0.0.33:${newer.socket.address().port}`]);
  expect(lines.every((l) => l.level === 'warn')).toBe(true);
  const v0Line = lines.find((l) => l.from?.startsWith('127.0.0.31'))!;
  expect(v0Line.msg).toContain('protocol v0');
  expect(v0Line.msg).toContain('this server speaks protocol v1; both ends must run the same protocol version');
  expect(lines.find((l) => l.from?.startsWith('127.0.0.33'))!.msg).toContain('unknown protocol version (0xa7)');
  expect([...old1.answers, ...old2.answers, ...newer.answers]).toEqual([]);
});

it('builds its v0 datagrams as v0 did (HKDF labels of v0, 26-byte header as AAD)', () => {
  // A check on the test's own v0 builder, against HKDF written out with HMAC (RFC 5869).
  const psk = Buffer.alloc(32, 7);
  const prk = createHmac('sha256', Buffer.alloc(0)).update(psk).digest();
  const okm = createHmac('sha256', prk).update(Buffer.concat([Buffer.from('autoprox v0 channel id'), Buffer.from([1])])).digest();
  expect(v0Datagram(1, psk).subarray(2, 10)).toEqual(okm.subarray(0, 8));
});
