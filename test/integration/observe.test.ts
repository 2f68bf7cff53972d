/**
 * Watching live sessions: health, metrics, the sessions API and its event stream, and the
 * Stately inspector stream, against a real server with a real peer.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { startInspector, type InspectorHandle } from '../../src/observe/inspector.js';
import { startInProcess, type InProcessServer } from '../helpers/in-process.js';
import { ScriptedPeer } from '../helpers/scripted-peer.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { httpGet as get, metric } from '../helpers/metrics.js';
import { eventually } from '../helpers/waiter.js';
import { TestClient } from '../helpers/ws-client.js';

const secret = new TextEncoder().encode(TEST_SECRET);
const adminToken = () => new SignJWT({ apx_admin: true }).setProtectedHeader({ alg: 'HS256' }).setSubject('ops').setExpirationTime('10m').sign(secret);

let inspector: InspectorHandle;
let s: InProcessServer;
let peer: ScriptedPeer;
let client: TestClient;
let admin: string;
let psk: Buffer;
const streamed: string[] = [];
let stream: WebSocket;
let userToken: string;

beforeAll(async () => {
  inspector = await startInspector(0);
  stream = new WebSocket(`ws://127.0.0.1:${inspector.port}/stream`);
  stream.on('message', (m) => streamed.push(m.toString()));
  await new Promise((resolve) => stream.once('open', resolve));
  s = await startInProcess({ 'punch-ms': '20', 'heartbeat-ms': '50', 'peer-timeout-ms': '1000', 'fallback-ms': '200' }, { inspect: inspector.inspect });
  admin = await adminToken();
  psk = randomBytes(32);
  peer = await ScriptedPeer.start('ipv4', psk);
  peer.autoReply = false; // the peer comes up later
  userToken = await mintToken(TEST_SECRET, 'alice', 600);
  client = new TestClient(s.wsUrl, { hosts: ['::1', '127.0.0.1'], port: peer.endpoint.port, key: psk.toString('base64url'), token: userToken });
  await client.waitForStatus('UDP_WAITING', { family: 'ipv4' });
});
afterAll(async () => {
  await client.close();
  peer.stop();
  await s.close();
  stream.close();
  await inspector.close();
});

describe('health and readiness', () => {
  it('GET /healthz is 200 while the process runs; GET /readyz is 200 once the UDP sockets are bound', async () => {
    expect(await get(`${s.url}/healthz`)).toMatchObject({ status: 200, body: '{"status":"ok"}' });
    expect(await get(`${s.url}/readyz`)).toMatchObject({ status: 200, body: '{"status":"ready"}' });
  });
});

describe('the sessions API', () => {
  it('needs a token with apx_admin: 401 without one, 403 with an ordinary one', async () => {
    expect((await get(`${s.url}/v0/sessions`)).status).toBe(401);
    const forbidden = await get(`${s.url}/v0/sessions`, { Authorization: `Bearer ${userToken}` });
    expect(forbidden.status).toBe(403);
    expect(JSON.parse(forbidden.body).error).toMatchObject({ code: 'forbidden', message: expect.stringMatching(/apx_admin/) });
  });

  it('lists each session with its state (the fallback sub-state too), peer, counters and age', async () => {
    const r = await get(`${s.url}/v0/sessions`, { Authorization: `Bearer ${admin}` });
    expect(r.status).toBe(200);
    const { sessions, total } = JSON.parse(r.body);
    expect(total).toBe(1);
    expect(sessions[0]).toMatchObject({
      id: client.statuses[0]!.session,
      state: 'udp_waiting.ipv4',
      status: 'UDP_WAITING',
      family: 'ipv4',
      peer: null,
      subject: 'alice',
      client: '127.0.0.1',
      candidates: [`[::1]:${peer.endpoint.port}`, `127.0.0.1:${peer.endpoint.port}`],
      datagramsOut: expect.any(Number),
      drops: expect.objectContaining({ auth_failed: 0 }),
    });
    expect(sessions[0].ageMs).toBeGreaterThanOrEqual(0);
  });

  it('GET /v0/sessions/:id gives one session, 404 for an unknown id', async () => {
    const id = client.statuses[0]!.session;
    const one = await get(`${s.url}/v0/sessions/${id}?access_token=${admin}`);
    expect(JSON.parse(one.body)).toMatchObject({ id, status: 'UDP_WAITING' });
    const none = await get(`${s.url}/v0/sessions/nope?access_token=${admin}`);
    expect(none.status).toBe(404);
  });

  it('streams every change live: the session moves to UDP_ESTABLISHED when its peer comes up', async () => {
    const updates: Array<{ sessions: Array<{ status: string; peer: string | null; rttMs: number | null }> }> = [];
    const req = request(`${s.url}/v0/sessions/events?access_token=${admin}`);
    req.on('response', (res) => {
      let buffer = '';
      res.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (data) updates.push(JSON.parse(data.slice(6)));
        }
      });
    });
    req.end();
    await eventually(() => updates.length > 0, 'the first update');
    expect(updates[0]!.sessions[0]!.status).toBe('UDP_WAITING');
    peer.autoReply = true;
    await eventually(() => updates.some((u) => u.sessions[0]?.status === 'UDP_ESTABLISHED'), 'UDP_ESTABLISHED in the stream');
    const established = updates.find((u) => u.sessions[0]?.status === 'UDP_ESTABLISHED')!.sessions[0]!;
    expect(established.peer).toBe(`127.0.0.1:${peer.endpoint.port}`);
    expect(established.rttMs).toEqual(expect.any(Number));
    req.destroy();
  });
});

describe('GET /metrics', () => {
  it('speaks Prometheus text: sessions by state, transitions, traffic, drops, refusals, histograms, event-loop lag', async () => {
    await client.waitForStatus('UDP_ESTABLISHED');
    client.send(Buffer.from('hello'));
    await peer.until(() => peer.dataReceived().length === 1, 'data');
    await get(`${s.url}/v0/sessions`); // a 401, counted
    const r = await get(`${s.url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^text\/plain/);
    const text = r.body;
    expect(metric(text, 'autoprox_sessions{state="udp_established"}')).toBe(1);
    expect(metric(text, 'autoprox_sessions{state="udp_waiting.ipv6"}')).toBe(0);
    expect(metric(text, 'autoprox_session_transitions_total{from="connected",to="udp_waiting.ipv6"}')).toBe(1);
    expect(metric(text, 'autoprox_session_transitions_total{from="udp_waiting.ipv6",to="udp_waiting.ipv4"}')).toBe(1);
    expect(metric(text, 'autoprox_session_transitions_total{from="udp_waiting.ipv4",to="udp_established"}')).toBe(1);
    expect(metric(text, 'autoprox_messages_total{direction="out"}')).toBe(1);
    expect(metric(text, 'autoprox_bytes_total{direction="out"}')).toBe(5);
    expect(metric(text, 'autoprox_datagrams_total{direction="in"}')).toBeGreaterThan(0);
    expect(metric(text, 'autoprox_drops_total{cause="replay"}')).toBe(0);
    expect(metric(text, 'autoprox_refusals_total{status="401",code="missing_token"}')).toBeGreaterThanOrEqual(1);
    expect(metric(text, 'autoprox_auth_failures_total{code="missing_token"}')).toBeGreaterThanOrEqual(1);
    expect(metric(text, 'autoprox_time_to_established_seconds_count')).toBe(1);
    expect(metric(text, 'autoprox_rtt_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/^autoprox_nodejs_eventloop_lag_seconds /m);
  });
});

describe('the Stately inspector stream', () => {
  it('shows the session actor appear, reach UDP_ESTABLISHED and stop', async () => {
    await client.close();
    await eventually(() => streamed.some((m) => m.includes('"done"') && m.includes('"closed"')), 'the session to stop', 5000);
    const events = streamed.map((m) => JSON.parse(m) as { type: string; name?: string; sessionId: string; snapshot?: { value?: unknown; status?: string } });
    // The session actor shows up under its systemId, with the session id of the status frames.
    const created = events.find((e) => e.type === '@xstate.actor' && e.name === `session:${client.statuses[0]!.session}`);
    expect(created).toBeDefined();
    const mine = events.filter((e) => e.sessionId === created!.sessionId);
    const values = mine.filter((e) => e.type === '@xstate.snapshot').map((e) => JSON.stringify(e.snapshot?.value));
    expect(values.some((v) => v.includes('udp_waiting'))).toBe(true);
    expect(values.some((v) => v.includes('udp_established'))).toBe(true);
    expect(mine.some((e) => e.type === '@xstate.snapshot' && e.snapshot?.status === 'done')).toBe(true);
    // The supervisor and the UDP socket actors are there too.
    expect(events.some((e) => e.type === '@xstate.actor' && e.name === 'supervisor')).toBe(true);
  });

  it('never carries a key or a token', () => {
    const all = streamed.join('\n');
    expect(streamed.length).toBeGreaterThan(10);
    for (const secretText of [psk.toString('base64url'), psk.toString('hex'), userToken, admin, TEST_SECRET]) {
      expect(all).not.toContain(secretText);
    }
  });
});
