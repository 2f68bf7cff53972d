/**
 * TLS served directly (--tls-cert/--tls-key): wss:// with a private CA, verified for real; the
 * certificate reloaded on SIGHUP without dropping open sessions; `autoprox connect --ca`.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { makeCa } from '../helpers/certs.js';
import { ScriptedPeer } from '../helpers/scripted-peer.js';
import { CLI, killAllServers, startServerProcess, TEST_SECRET } from '../helpers/server-process.js';
import { eventually } from '../helpers/waiter.js';
import { proxyUrl } from '../helpers/ws-client.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await killAllServers();
});

/** The serial number of the certificate a TLS server presents now. */
function presentedSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(ca), servername: 'localhost' }, () => {
      resolve(socket.getPeerCertificate().serialNumber.toUpperCase());
      socket.end();
    });
    socket.on('error', reject);
  });
}

describe('TLS', () => {
  it('serves wss:// that a client verifies against the private CA, refuses clients that do not trust it, and reloads on SIGHUP without dropping sessions', async () => {
    const ca = makeCa();
    const first = ca.issue('first');
    const live = { cert: `${ca.dir}/live.pem`, key: `${ca.dir}/live.key` };
    copyFileSync(first.cert, live.cert);
    copyFileSync(first.key, live.key);
    const server = await startServerProcess(['--udp-port', '0', '--jwt-secret', TEST_SECRET, '--tls-cert', live.cert, '--tls-key', live.key, '--punch-ms', '20']);
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const port = Number(new URL(server.url).port);
    const wss = server.wsUrl.replace(/^ws:/, 'wss:').replace(/^wss?:/, 'wss:');

    // Without the CA: refused by the client's own verification.
    const untrusted = new WebSocket(`${wss}?host=127.0.0.1&port=9&key=${randomBytes(32).toString('base64url')}`);
    await expect(new Promise((resolve, reject) => { untrusted.on('open', resolve); untrusted.on('error', reject); })).rejects.toThrow(/self-signed|unable to verify|certificate/i);

    // With the CA: a session, and data through it.
    const psk = randomBytes(32);
    const peer = await ScriptedPeer.start('ipv4', psk);
    cleanups.push(() => peer.stop());
    const token = await mintToken(TEST_SECRET, 'tls', 600);
    const ws = new WebSocket(proxyUrl(wss, { hosts: ['127.0.0.1'], port: peer.endpoint.port, key: psk.toString('base64url') }), {
      headers: { Authorization: `Bearer ${token}` },
      ca: readFileSync(ca.caCert),
    });
    cleanups.push(() => ws.close());
    const frames: string[] = [];
    ws.on('message', (m, binary) => !binary && frames.push(m.toString()));
    await eventually(() => frames.some((f) => f.includes('UDP_ESTABLISHED')), 'UDP_ESTABLISHED over wss');
    expect(await presentedSerial(port, ca.caCert)).toBe(first.serial);

    // A new certificate, then SIGHUP: new connections get it; the open session goes on.
    const second = ca.issue('second');
    copyFileSync(second.cert, live.cert);
    copyFileSync(second.key, live.key);
    server.proc.kill('SIGHUP');
    await eventually(() => server.logs.some((l) => l.includes('tls certificate reloaded')), 'the reload');
    expect(await presentedSerial(port, ca.caCert)).toBe(second.serial);
    expect(ws.readyState).toBe(WebSocket.OPEN);
    ws.send(Buffer.from('after the reload'));
    await peer.until(() => peer.dataReceived().some((d) => d.toString() === 'after the reload'), 'data after the reload');

    // A broken pair on SIGHUP keeps the old certificate and says why.
    copyFileSync(first.key, live.key); // the second cert with the first key: not a pair
    server.proc.kill('SIGHUP');
    await eventually(() => server.stderr.some((l) => l.includes('the TLS files were not reloaded')), 'the refusal');
    expect(await presentedSerial(port, ca.caCert)).toBe(second.serial);
  });

  it('autoprox connect speaks wss:// with --ca', async () => {
    const ca = makeCa();
    const pair = ca.issue('server');
    const server = await startServerProcess(['--udp-port', '0', '--jwt-secret', TEST_SECRET, '--tls-cert', pair.cert, '--tls-key', pair.key, '--punch-ms', '20']);
    const psk = randomBytes(32);
    const peer = await ScriptedPeer.start('ipv4', psk);
    cleanups.push(() => peer.stop());
    const token = await mintToken(TEST_SECRET, 'tls', 600);
    const wss = server.wsUrl.replace(/^wss?:/, 'wss:');
    const proc = spawn(process.execPath, [CLI, 'connect', wss, '--host', '127.0.0.1', '--port', String(peer.endpoint.port), `--key=${psk.toString('base64url')}`, '--token', token, '--ca', ca.caCert]);
    cleanups.push(() => proc.kill('SIGKILL'));
    const err: string[] = [];
    createInterface({ input: proc.stderr }).on('line', (l) => err.push(l));
    await eventually(() => err.some((l) => l.includes('UDP_ESTABLISHED')), `connect to establish: ${err.join('\n')}`);
    proc.stdin.write('over tls\n');
    await peer.until(() => peer.dataReceived().some((d) => d.toString() === 'over tls'), 'the line');
  });

  it('refuses to start with a missing certificate file, naming the flag', async () => {
    await expect(startServerProcess(['--udp-port', '0', '--jwt-secret', TEST_SECRET, '--tls-cert', '/nonexistent/cert.pem', '--tls-key', '/nonexistent/key.pem'])).rejects.toThrow(/--tls-cert: cannot read \/nonexistent\/cert\.pem: ENOENT/);
  });
});
