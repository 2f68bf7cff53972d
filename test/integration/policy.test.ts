/**
 * The target policy against a real server: never-peers, the server's own endpoints, deny and
 * allow lists, DNS names checked address by address, and peers learned from heartbeats.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { startInProcess, type InProcessServer } from '../helpers/in-process.js';
import { ScriptedPeer } from '../helpers/scripted-peer.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { attempt, bearer, proxyQuery, refusal } from '../helpers/upgrade.js';
import { eventually } from '../helpers/waiter.js';
import { TestClient } from '../helpers/ws-client.js';

const KEY = randomBytes(32).toString('base64url');
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
let token: string;
beforeAll(async () => {
  token = await mintToken(TEST_SECRET, 'policy', 600);
});

async function server(flags: Record<string, string | boolean> = {}): Promise<InProcessServer> {
  const s = await startInProcess(flags);
  cleanups.push(() => s.close());
  return s;
}
const urlOf = (s: InProcessServer, host: string | string[], port: number | string) =>
  `${s.url.replace(/^http/, 'ws')}${proxyQuery({ host, port: String(port), key: KEY })}`;

describe('target policy', () => {
  it("refuses the server's own UDP endpoint (no loops) unless --allow-self-target", async () => {
    const s = await server();
    const own = await refusal(urlOf(s, '127.0.0.1', s.udp.ipv4!), bearer(token));
    expect(own).toMatchObject({ status: 403, body: { error: { code: 'target_denied', message: expect.stringMatching(/this server's own UDP endpoint/) } } });
    expect((await refusal(urlOf(s, '::1', s.udp.ipv6!), bearer(token))).status).toBe(403);
    // Another port on the same host is someone else: allowed.
    expect(await attempt(urlOf(s, '127.0.0.1', s.udp.ipv4! === 65535 ? 65534 : s.udp.ipv4! + 1), bearer(token))).toBe('open');
    const open = await server({ 'allow-self-target': true });
    expect(await attempt(urlOf(open, '127.0.0.1', open.udp.ipv4!), bearer(token))).toBe('open');
  });

  it('--deny-targets refuses the listed ranges (and ports), and nothing else', async () => {
    const s = await server({ 'deny-targets': '127.0.0.0/8, [::1/128]:9' });
    const r = await refusal(urlOf(s, '127.0.0.1', 40000), bearer(token));
    expect(r).toMatchObject({ status: 403, body: { error: { message: 'host: 127.0.0.1 port 40000 is denied by --deny-targets 127.0.0.0/8' } } });
    expect((await refusal(urlOf(s, '::1', 9), bearer(token))).status).toBe(403);
    expect(await attempt(urlOf(s, '::1', 40000), bearer(token))).toBe('open');
  });

  it('--allow-targets allows only the listed ranges', async () => {
    const s = await server({ 'allow-targets': '198.51.100.0/24' });
    expect(await attempt(urlOf(s, '198.51.100.7', 40000), bearer(token))).toBe('open');
    const r = await refusal(urlOf(s, '127.0.0.1', 40000), bearer(token));
    expect(r.body.error.message).toBe('host: 127.0.0.1 port 40000 is not in --allow-targets');
  });

  it('every address a DNS name resolves to goes through the policy (no rebinding around it)', async () => {
    const s = await server({ 'deny-targets': '127.0.0.0/8,::1/128' });
    const c = new TestClient(s.wsUrl, { hosts: ['localhost'], port: 40000, key: KEY, token });
    cleanups.push(() => c.close());
    const closed = await c.waitForStatus('CLOSED');
    expect(closed.reason).toBe('no_candidates');
    expect(closed.message).toMatch(/localhost: 127\.0\.0\.1 port 40000 is denied by --deny-targets 127\.0\.0\.0\/8/);
    expect(await c.closed).toBe(4001);
  });

  it('never learns (nor answers) an authenticated peer at a denied address', async () => {
    const psk = randomBytes(32);
    const s = await server({ 'punch-ms': '20', 'deny-targets': '127.0.0.1/32' });
    const peer = await ScriptedPeer.start('ipv4', psk); // binds 127.0.0.1: denied
    cleanups.push(() => peer.stop());
    const c = new TestClient(s.wsUrl, { hosts: ['::1'], port: peer.endpoint.port, key: psk.toString('base64url'), token });
    cleanups.push(() => c.close());
    await c.waitForStatus('UDP_WAITING');
    for (let i = 0; i < 5; i++) peer.heartbeat({ family: 'ipv4', address: '127.0.0.1', port: s.udp.ipv4! });
    const link = () => s.links.get(c.statuses[0]!.session)!;
    await eventually(() => link().stats.drops.policy >= 5, 'policy drops');
    expect(peer.received).toEqual([]); // nothing was ever sent to it
    expect(c.status?.status).toBe('UDP_WAITING');
  });
});
