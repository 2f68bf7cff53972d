/** The two sides of a session wired as its machine sees them (SessionPort), on a real WebSocket and a fake clock. */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { SessionEvent } from '../../machines/types.js';
import type { PeerLink } from '../../src/io/peer-link.js';
import { HeartbeatWheel } from '../../src/io/heartbeat-wheel.js';
import { SessionLink } from '../../src/io/session-link.js';
import { Switchboard } from '../../src/io/switchboard.js';
import { createLogger } from '../../src/log.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { wsPair, type WsPair } from '../helpers/ws-pair.js';

const pairs: WsPair[] = [];
afterEach(async () => {
  for (const p of pairs.splice(0)) await p.close();
});

async function setup(tokenInMs: number | null = null) {
  const pair = await wsPair();
  pairs.push(pair);
  const clock = new FakeClock();
  const log = createLogger('silent');
  const switchboard = new Switchboard<PeerLink>({ maxPayloadBytes: 1200, preauth: { perSourcePerS: 0, totalPerS: 0 }, log, clock });
  const link = new SessionLink({
    id: 's1',
    ws: pair.ws,
    socket: pair.socket,
    psk: randomBytes(32),
    maxPayload: 1200,
    switchboard,
    log,
    clock,
    limits: { clientMsgsPerS: 0, clientBytesPerS: 0, udpOutPerS: 0 },
    deny: (e) => (e.address === '192.0.2.66' ? 'denied by a test rule' : null),
    tokenExpiresAtMs: tokenInMs === null ? null : clock.wallMs() + tokenInMs,
    wheel: new HeartbeatWheel(clock, (err) => {
      throw err;
    }),
    timing: { heartbeatMs: 1000, peerTimeoutMs: 5000 },
  });
  const events: SessionEvent[] = [];
  return { pair, clock, link, events, attach: () => link.attach((e) => events.push(e)) };
}

describe('SessionLink', () => {
  it('tells the machine the token expired when the clock says so', async () => {
    const { clock, events, attach } = await setup(60_000);
    attach();
    clock.advance(59_999);
    expect(events).toEqual([]);
    clock.advance(1);
    expect(events).toEqual([{ type: 'token.expired' }]);
  });

  it('a WebSocket that closed before the machine was attached is still reported to it', async () => {
    const { pair, events, attach } = await setup();
    pair.client.close(1000);
    await new Promise((r) => setTimeout(r, 50));
    attach();
    expect(events).toEqual([{ type: 'ws.closed', code: 1000 }]);
  });

  it('carries the machine\'s commands to the right side: status frames to the client, close to both', async () => {
    const { pair, link, attach } = await setup();
    attach();
    link.handle({ type: 'status', frame: { type: 'status', status: 'CONNECTED', session: 's1' } });
    await pair.until(() => pair.texts.length === 1, 'a status frame');
    expect(pair.texts[0]).toMatchObject({ status: 'CONNECTED' });
    link.handle({ type: 'close', code: 1001, reason: 'server_shutdown' });
    expect(await pair.closed).toEqual({ code: 1001, reason: 'server_shutdown' });
  });

  it('asks its target policy (for the resolver), shows nothing of itself in the inspector, and detaches once', async () => {
    const { link, attach, clock } = await setup(1000);
    attach();
    expect(link.deny({ family: 'ipv4', address: '192.0.2.66', port: 1 })).toBe('denied by a test rule');
    expect(JSON.parse(JSON.stringify(link))).toEqual({ session: 's1' });
    link.detach();
    link.detach();
    expect(clock.pendingTimers).toBe(0); // the token timer went with it
  });
});
