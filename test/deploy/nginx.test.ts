/**
 * autoprox behind real nginx with the documented server block (`autoprox nginx`): TLS at nginx,
 * the upgrade proxied, idle sessions kept alive past nginx's read timeout by autoprox's pings,
 * and the client address taken from X-Forwarded-For only with --trust-proxy.
 * CI installs nginx and sets AUTOPROX_REQUIRE_NGINX=1, so there it is never skipped.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { nginxConfig } from '../../src/deploy/nginx.js';
import { makeCa } from '../helpers/certs.js';
import { freePort } from '../helpers/free-port.js';
import { nginxAvailable, nginxRequired, startNginx } from '../helpers/nginx.js';
import { ScriptedPeer } from '../helpers/scripted-peer.js';
import { killAllServers, startServerProcess, TEST_SECRET } from '../helpers/server-process.js';
import { eventually } from '../helpers/waiter.js';
import { proxyUrl, sleep } from '../helpers/ws-client.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await killAllServers();
});


/** autoprox, nginx in front of it (TLS, the documented block), and a scripted peer. */
async function stack(autoproxFlags: string[], idleTimeoutS: number) {
  const server = await startServerProcess(['--udp-port', '0', '--jwt-secret', TEST_SECRET, '--punch-ms', '20', ...autoproxFlags]);
  const ca = makeCa();
  const pair = ca.issue('nginx');
  const port = await freePort();
  const nginx = await startNginx(
    nginxConfig({ listen: `127.0.0.1:${port} ssl`, serverName: 'localhost', upstream: new URL(server.url).host, tls: { cert: pair.cert, key: pair.key }, idleTimeoutS }),
    port,
  );
  cleanups.push(() => nginx.stop());
  const psk = randomBytes(32);
  const peer = await ScriptedPeer.start('ipv4', psk);
  cleanups.push(() => peer.stop());
  const token = await mintToken(TEST_SECRET, 'behind-nginx', 600);
  const open = (localAddress?: string) => {
    const ws = new WebSocket(proxyUrl(`wss://127.0.0.1:${port}/v0/ws/proxy`, { hosts: ['127.0.0.1'], port: peer.endpoint.port, key: psk.toString('base64url') }), {
      headers: { Authorization: `Bearer ${token}` },
      ca: readFileSync(ca.caCert),
      ...(localAddress ? { localAddress } : {}),
    });
    const frames: string[] = [];
    ws.on('message', (m, binary) => !binary && frames.push(m.toString()));
    ws.on('error', () => {});
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    cleanups.push(() => ws.terminate());
    return { ws, frames, closed };
  };
  const admin = await new SignJWT({ apx_admin: true }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('10m').sign(new TextEncoder().encode(TEST_SECRET));
  const sessions = async () => (await (await fetch(`${server.url}/v0/sessions`, { headers: { Authorization: `Bearer ${admin}` } })).json()) as { sessions: Array<{ client: string }> };
  return { server, peer, open, sessions };
}

describe.runIf(nginxAvailable || nginxRequired)('behind nginx', () => {
  it('relays a session through nginx (TLS, upgrade), with the client address from X-Forwarded-For under --trust-proxy', async () => {
    const { peer, open, sessions } = await stack(['--trust-proxy', '127.0.0.1'], 3600);
    const c = open('127.0.0.2');
    await eventually(() => c.frames.some((f) => f.includes('UDP_ESTABLISHED')), 'UDP_ESTABLISHED through nginx');
    c.ws.send(Buffer.from('through nginx'));
    await peer.until(() => peer.dataReceived().some((d) => d.toString() === 'through nginx'), 'data through nginx');
    expect((await sessions()).sessions[0]!.client).toBe('127.0.0.2');
  });

  it('without --trust-proxy, X-Forwarded-For is ignored: the client is nginx', async () => {
    const { open, sessions } = await stack([], 3600);
    const c = open('127.0.0.2');
    await eventually(() => c.frames.some((f) => f.includes('UDP_WAITING')), 'a session');
    expect((await sessions()).sessions[0]!.client).toBe('127.0.0.1');
  });

  it("keeps idle sessions open past nginx's read timeout: autoprox's pings are traffic (and without them nginx cuts)", async () => {
    // Scaled down: nginx times out after 2 s of silence; autoprox pings every 0.5 s.
    const kept = await stack(['--ws-ping-ms', '500'], 2);
    const idle = kept.open();
    await eventually(() => idle.frames.some((f) => f.includes('UDP_ESTABLISHED')), 'established');
    await sleep(5000);
    expect(idle.ws.readyState).toBe(WebSocket.OPEN);

    // The control: pings rarer than nginx's timeout, and nginx closes the idle connection.
    const cut = await stack(['--ws-ping-ms', '60000'], 2);
    const quiet = cut.open();
    await eventually(() => quiet.frames.some((f) => f.includes('UDP_ESTABLISHED')), 'established');
    const started = Date.now();
    await Promise.race([quiet.closed, sleep(6000)]);
    expect(quiet.ws.readyState).not.toBe(WebSocket.OPEN);
    expect(Date.now() - started).toBeLessThan(5000);
  }, 30_000);
});
