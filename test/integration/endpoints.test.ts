/**
 * Public endpoint discovery against real servers and real STUN servers on loopback: the
 * `endpoints` frame after CONNECTED and on change, GET /v0/endpoints, the NAT verdict from two
 * responders at different addresses, forged and garbage STUN at the peer port, coturn.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { connect, type EndpointsFrame } from '../../src/client/node.js';
import { encodeBindingSuccess, encodeStun, METHOD_BINDING } from '../../src/protocol/stun.js';
import { coturnAvailable, coturnRequired, startCoturn, type Coturn } from '../helpers/coturn.js';
import { startInProcess, type InProcessServer } from '../helpers/in-process.js';
import { httpGet, metricsByLabel } from '../helpers/metrics.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { startStunResponder, type StunResponder } from '../helpers/stun-responder.js';
import { proxyUrl, sleep } from '../helpers/ws-client.js';

type Frame = Record<string, unknown> & { type: string };

/** Retries an assertion until it holds (or throws its last failure after `timeoutMs`). */
async function eventually(assertion: () => unknown, { timeoutMs = 5000 } = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await assertion();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(20);
    }
  }
}

const servers: InProcessServer[] = [];
const responders: StunResponder[] = [];
const sockets: Socket[] = [];
const clients: WebSocket[] = [];
let coturn: Coturn | null = null;

afterEach(async () => {
  for (const ws of clients.splice(0)) ws.terminate();
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await Promise.all(responders.splice(0).map((r) => r.close()));
  for (const s of sockets.splice(0)) s.close();
  await coturn?.stop();
  coturn = null;
});

async function responder(address = '127.0.0.1'): Promise<StunResponder> {
  const r = await startStunResponder(address);
  responders.push(r);
  return r;
}

async function server(flags: Record<string, string | boolean> = {}): Promise<InProcessServer> {
  const s = await startInProcess(flags);
  servers.push(s);
  return s;
}

/** A WebSocket session that records every text frame in order. */
function session(s: InProcessServer, token: string): { frames: Frame[]; ws: WebSocket } {
  const ws = new WebSocket(proxyUrl(s.wsUrl, { hosts: ['127.0.0.1'], port: 9, key: randomBytes(32).toString('base64url') }), { headers: { Authorization: `Bearer ${token}` } });
  clients.push(ws);
  const frames: Frame[] = [];
  ws.on('message', (data, binary) => {
    if (!binary) frames.push(JSON.parse(data.toString()) as Frame);
  });
  ws.on('error', () => {});
  return { frames, ws };
}

const token = () => mintToken(TEST_SECRET, 'alice', 600);
const trail = (frames: Frame[]) => frames.map((f) => (f.type === 'status' ? String(f.status) : f.type));

describe('the endpoints frame', () => {
  it('comes right after CONNECTED, names the peer sockets\' public endpoints, and nat is endpoint-independent with two responders at different addresses', async () => {
    const a = await responder('127.0.0.1');
    const b = await responder('127.0.0.2');
    const six = await responder('::1');
    const s = await server({ stun: [a.text, b.text, six.text].join(',') });
    await eventually(() => expect(s.discovery?.ready).toBe(true));
    const { frames } = session(s, await token());
    await eventually(() => expect(trail(frames)).toContain('UDP_WAITING'));
    expect(trail(frames).slice(0, 3)).toEqual(['CONNECTED', 'endpoints', 'UDP_WAITING']);
    expect(frames[1]).toEqual({ type: 'endpoints', ipv4: `127.0.0.1:${s.udp.ipv4}`, ipv6: s.udp.ipv6 ? `[::1]:${s.udp.ipv6}` : null, nat: 'endpoint-independent', relay: null });
    // Exactly the contract's keys, in its order.
    expect(Object.keys(frames[1]!)).toEqual(['type', 'ipv4', 'ipv6', 'nat', 'relay']);
    expect([a.requests, b.requests]).toEqual([1, 1]);
  });

  it('is sent again when it changes (a refresh sees a new mapping), and not when it does not', async () => {
    const a = await responder('127.0.0.1');
    const b = await responder('127.0.0.2');
    const s = await server({ stun: `${a.text},${b.text}`, 'no-ipv6': true });
    await eventually(() => expect(s.discovery?.ready).toBe(true));
    const { frames } = session(s, await token());
    await eventually(() => expect(trail(frames)).toContain('endpoints'));
    await s.discovery!.refresh();
    await sleep(50);
    expect(frames.filter((f) => f.type === 'endpoints')).toHaveLength(1);
    // Now the second server sees another port: a NAT that maps per destination.
    b.mapAs = (source) => ({ ...source, port: source.port === 1 ? 2 : 1 });
    await s.discovery!.refresh();
    await eventually(() => expect(frames.filter((f) => f.type === 'endpoints')).toHaveLength(2));
    expect(frames.filter((f) => f.type === 'endpoints')[1]).toEqual({ type: 'endpoints', ipv4: `127.0.0.1:${s.udp.ipv4}`, ipv6: null, nat: 'endpoint-dependent', relay: null });
  });

  it('comes once the first answers are in when a client connects before them', async () => {
    const a = await responder('127.0.0.1');
    a.silent = true;
    const s = await server({ stun: a.text, 'no-ipv6': true });
    const { frames } = session(s, await token());
    await eventually(() => expect(trail(frames)).toEqual(['CONNECTED', 'UDP_WAITING']));
    a.silent = false; // the retransmissions now get answers
    await eventually(() => expect(trail(frames)).toEqual(['CONNECTED', 'UDP_WAITING', 'endpoints']), { timeoutMs: 8000 });
    expect(frames[2]).toMatchObject({ ipv4: `127.0.0.1:${s.udp.ipv4}`, nat: 'unknown' });
  });

  it('the client library reads it as its typed endpoints event', async () => {
    const a = await responder('127.0.0.1');
    const s = await server({ stun: a.text, 'no-ipv6': true });
    await eventually(() => expect(s.discovery?.ready).toBe(true));
    const seen: EndpointsFrame[] = [];
    const session = await connect(s.url, { hosts: ['127.0.0.1'], port: 9, key: randomBytes(32).toString('base64url'), token: await token() });
    session.on('endpoints', (frame) => seen.push(frame));
    await eventually(() => expect(seen).toEqual([{ type: 'endpoints', ipv4: `127.0.0.1:${s.udp.ipv4}`, ipv6: null, nat: 'unknown', relay: null }]));
    session.close();
  });

  it('without --stun: no endpoints frame, the frame sequence of today', async () => {
    const s = await server();
    expect(s.discovery).toBeNull();
    const { frames } = session(s, await token());
    await eventually(() => expect(trail(frames)).toContain('UDP_WAITING'));
    await sleep(200);
    expect(trail(frames)).toEqual(['CONNECTED', 'UDP_WAITING']);
  });
});

describe('GET /v0/endpoints', () => {
  it('with any valid token: the frame\'s fields and each server\'s answer and RTT; 401 without one', async () => {
    const a = await responder('127.0.0.1');
    const b = await responder('127.0.0.2');
    const dead = await responder('127.0.0.3');
    dead.silent = true;
    const s = await server({ stun: `${a.text},${b.text},${dead.text}`, 'no-ipv6': true });
    await eventually(() => expect(s.discovery?.ready).toBe(true), { timeoutMs: 8000 });
    const res = await httpGet(`${s.url}/v0/endpoints`, { Authorization: `Bearer ${await token()}` });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body) as { servers: Array<Record<string, unknown>> };
    expect(body).toMatchObject({ ipv4: `127.0.0.1:${s.udp.ipv4}`, ipv6: null, nat: 'endpoint-independent', relay: null });
    expect(body.servers).toHaveLength(3);
    expect(body.servers[0]).toMatchObject({ server: a.text, family: 'ipv4', address: a.text, mapped: `127.0.0.1:${s.udp.ipv4}`, error: null });
    expect(body.servers[0]!.rttMs).toEqual(expect.any(Number));
    expect(body.servers[2]).toEqual({ server: dead.text, family: 'ipv4', address: dead.text, mapped: null, rttMs: null, error: 'timeout' });
    expect((await httpGet(`${s.url}/v0/endpoints`)).status).toBe(401);
    expect((await httpGet(`${s.url}/v0/endpoints?access_token=nonsense`)).status).toBe(401);
  });

  it('without --stun: nulls, unknown, no servers', async () => {
    const s = await server();
    const res = await httpGet(`${s.url}/v0/endpoints`, { Authorization: `Bearer ${await token()}` });
    expect(JSON.parse(res.body)).toEqual({ ipv4: null, ipv6: null, nat: 'unknown', relay: null, servers: [] });
  });
});

describe('STUN at the peer port: only answers to what was asked count', () => {
  it('forged answers (wrong id; the right id from another address) change nothing and are counted', async () => {
    const a = await responder('127.0.0.1');
    const b = await responder('127.0.0.2');
    const attacker = createSocket('udp4');
    sockets.push(attacker);
    await new Promise<void>((r) => attacker.bind(0, '127.0.0.3', r));
    // b also hands each request to the attacker, who answers first with a lie of its own.
    b.onRequest = (request, source) => {
      const lie = encodeBindingSuccess(request, { family: 'ipv4', address: '198.51.100.66', port: 6666 });
      if (lie) attacker.send(lie, source.port, source.address);
    };
    const s = await server({ stun: `${a.text},${b.text}`, 'no-ipv6': true });
    await eventually(() => expect(s.discovery?.ready).toBe(true));
    // Unsolicited answers with ids never sent, from the responders' addresses and elsewhere.
    const udpPort = s.udp.ipv4!;
    for (let i = 0; i < 50; i++) {
      const forged = encodeStun(METHOD_BINDING, 'success', randomBytes(12), [], true);
      attacker.send(forged, udpPort, '127.0.0.1');
      a.socket.send(encodeBindingSuccess(encodeStun(METHOD_BINDING, 'request', randomBytes(12), [], true), { family: 'ipv4', address: '198.51.100.66', port: 6666 })!, udpPort, '127.0.0.1');
    }
    await s.discovery!.refresh();
    await eventually(async () => {
      const counts = metricsByLabel(await s.metrics.text(), 'autoprox_stun_datagrams_total', 'kind');
      expect(counts.unsolicited).toBeGreaterThanOrEqual(102); // 100 ids never sent + 2 lies from the wrong address
    });
    expect(s.discovery!.frame()).toEqual({ type: 'endpoints', ipv4: `127.0.0.1:${udpPort}`, ipv6: null, nat: 'endpoint-independent', relay: null });
    expect(JSON.stringify(s.discovery!.view())).not.toContain('198.51.100.66');
  });

  it('garbage that looks like STUN costs nothing: no crash, counted, sessions and answers go on', async () => {
    const a = await responder('127.0.0.1');
    const s = await server({ stun: a.text, 'no-ipv6': true });
    await eventually(() => expect(s.discovery?.ready).toBe(true));
    const { frames } = session(s, await token());
    await eventually(() => expect(trail(frames)).toContain('UDP_WAITING'));
    const blaster = createSocket('udp4');
    sockets.push(blaster);
    const port = s.udp.ipv4!;
    for (let i = 0; i < 5000; i++) {
      const junk = randomBytes(20 + 4 * (i % 40));
      junk[0] = junk[0]! & 0x01;
      junk.writeUInt32BE(0x2112a442, 4);
      if (i % 2 === 0) junk.writeUInt16BE(junk.length - 20, 2); // half with a plausible length
      blaster.send(junk, port, '127.0.0.1');
      if (i % 500 === 0) await sleep(1);
    }
    await eventually(async () => {
      const counts = metricsByLabel(await s.metrics.text(), 'autoprox_stun_datagrams_total', 'kind');
      expect((counts.malformed ?? 0) + (counts.unsolicited ?? 0) + (counts.ignored ?? 0)).toBeGreaterThan(4000); // loopback may drop a few
    });
    await s.discovery!.refresh();
    expect(s.discovery!.frame()).toMatchObject({ ipv4: `127.0.0.1:${port}` });
    expect((await httpGet(`${s.url}/healthz`)).status).toBe(200);
    expect(trail(frames)).toEqual(['CONNECTED', 'endpoints', 'UDP_WAITING']);
  });
});

describe.runIf(coturnAvailable || coturnRequired)('against a real STUN server (coturn)', () => {
  it('coturn tells the server its endpoint on both families', async () => {
    coturn = await startCoturn();
    const s = await server({ stun: `127.0.0.1:${coturn.port},[::1]:${coturn.port}` });
    await eventually(() => expect(s.discovery?.ready).toBe(true), { timeoutMs: 8000 });
    const { frames } = session(s, await token());
    await eventually(() => expect(trail(frames)).toContain('endpoints'));
    expect(frames.find((f) => f.type === 'endpoints')).toEqual({
      type: 'endpoints',
      ipv4: `127.0.0.1:${s.udp.ipv4}`,
      ipv6: s.udp.ipv6 ? `[::1]:${s.udp.ipv6}` : null,
      nat: 'unknown', // one server (one address per family): not enough to tell
      relay: null,
    });
    const view = s.discovery!.view();
    expect(view.servers.filter((x) => x.mapped !== null).map((x) => `${x.server} ${x.family}`)).toEqual([`127.0.0.1:${coturn.port} ipv4`, ...(s.udp.ipv6 ? [`[::1]:${coturn.port} ipv6`] : [])]);
    expect(view.servers.find((x) => x.mapped !== null)!.rttMs).toBeLessThan(1000);
  });
});
