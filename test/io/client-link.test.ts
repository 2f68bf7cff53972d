/** The client side of a session, on a real WebSocket: what it refuses, queues, sends, delivers and reports. */
import { afterEach, describe, expect, it } from 'vitest';
import { ClientLink, QUEUE_MAX_MESSAGES, type ToPeer } from '../../src/io/client-link.js';
import { ClientReports, DRAIN_CHECK_MS } from '../../src/io/client-reports.js';
import { newLinkStats, type SendResult } from '../../src/io/peer-link.js';
import { createLogger } from '../../src/log.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { wsPair, type WsPair } from '../helpers/ws-pair.js';

const pairs: WsPair[] = [];
afterEach(async () => {
  for (const p of pairs.splice(0)) await p.close();
});

async function link(limits = { clientMsgsPerS: 0, clientBytesPerS: 0, udpOutPerS: 0 }, result: SendResult = 'sent') {
  const pair = await wsPair();
  pairs.push(pair);
  const clock = new FakeClock();
  const sent: string[] = [];
  const toPeer: ToPeer & { established: boolean } = {
    established: false,
    sendData: (p) => (sent.push(p.toString()), result),
    pathFamily: 'ipv4',
  };
  const closes: number[] = [];
  const stats = newLinkStats();
  const client = new ClientLink({ id: 'c', ws: pair.ws, socket: pair.socket, maxPayload: 100, limits, log: createLogger('silent'), clock, stats, toPeer, onClosed: (c) => closes.push(c) });
  return { pair, clock, sent, toPeer, client, stats, closes };
}

const errors = (pair: WsPair) => pair.texts.filter((t) => t.type === 'error');

describe('ClientLink', () => {
  it('refuses text frames and messages over the payload limit with coded error frames, and goes on', async () => {
    const { pair, stats, sent, toPeer } = await link();
    toPeer.established = true;
    pair.client.send('text');
    pair.client.send(Buffer.alloc(101));
    pair.client.send(Buffer.from('ok'));
    await pair.until(() => errors(pair).length === 2 && sent.length === 1, 'two errors and one message');
    expect(errors(pair).map((e) => e.code)).toEqual(['text_not_supported', 'payload_too_large']);
    expect(stats).toMatchObject({ messagesRejected: 2, messagesOut: 1, bytesOut: 2 });
  });

  it('queues while not established (bounded), sends in order once the path is up', async () => {
    const { pair, sent, toPeer, client } = await link();
    for (let i = 0; i < QUEUE_MAX_MESSAGES + 2; i++) pair.client.send(Buffer.from(`q${i}`));
    await pair.until(() => errors(pair).length === 2, 'queue_full twice');
    expect(errors(pair).every((e) => e.code === 'queue_full')).toBe(true);
    expect(client.footprint().queued).toBe(QUEUE_MAX_MESSAGES);
    toPeer.established = true;
    client.flushQueue();
    expect(sent).toEqual(Array.from({ length: QUEUE_MAX_MESSAGES }, (_, i) => `q${i}`));
  });

  it('per-session message rate: a bucket that refills with the clock, not with real time', async () => {
    const { pair, sent, toPeer, clock } = await link({ clientMsgsPerS: 5, clientBytesPerS: 0, udpOutPerS: 0 });
    toPeer.established = true;
    for (let i = 0; i < 8; i++) pair.client.send(Buffer.from(`m${i}`));
    await pair.until(() => sent.length + errors(pair).length === 8, 'eight outcomes');
    expect(sent).toHaveLength(5);
    clock.advance(400); // two more tokens
    for (let i = 0; i < 3; i++) pair.client.send(Buffer.from(`n${i}`));
    await pair.until(() => sent.length + errors(pair).length === 11, 'eleven outcomes');
    expect(sent).toHaveLength(7);
    expect(errors(pair).every((e) => e.code === 'rate_limited')).toBe(true);
  });

  it('says what the peer side could not send', async () => {
    const { pair, toPeer } = await link(undefined, 'no_socket');
    toPeer.established = true;
    pair.client.send(Buffer.from('x'));
    await pair.until(() => errors(pair).length === 1, 'an error');
    expect(errors(pair)[0]).toMatchObject({ code: 'not_delivered', message: 'message not sent: this server has no ipv4 socket' });
  });

  it('delivers peer data as binary messages; reports what never left the queue before CLOSED', async () => {
    const { pair, client } = await link();
    client.deliver(Buffer.from('from the peer'));
    pair.client.send(Buffer.from('waiting'));
    await pair.until(() => pair.binaries.length === 1, 'the delivery');
    await new Promise((r) => setTimeout(r, 20));
    client.status({ type: 'status', status: 'CLOSED', session: 'c', reason: 'punch_timeout', message: 'x' });
    await pair.until(() => pair.texts.length === 2, 'two frames');
    expect(pair.texts.map((t) => `${t.type} ${t.code ?? t.status}`)).toEqual(['error not_delivered', 'status CLOSED']);
    expect(pair.texts[0]).toMatchObject({ count: 1 });
  });

  it('tells its owner when the WebSocket closes, and closes it with a code when told', async () => {
    const { pair, client, closes } = await link();
    client.close(4000, 'punch_timeout');
    expect(await pair.closed).toEqual({ code: 4000, reason: 'punch_timeout' });
    await new Promise((r) => setTimeout(r, 20));
    expect(closes).toEqual([4000]);
    expect(client.closedWith).toBe(4000);
  });
});

describe('ClientReports', () => {
  it('reports deferred events once, one frame per code with a count, after the drain check (fake clock)', async () => {
    const pair = await wsPair();
    pairs.push(pair);
    const clock = new FakeClock();
    const reports = new ClientReports(pair.ws, clock);
    reports.defer('client_backpressure');
    reports.defer('client_backpressure');
    reports.defer('rate_limited', 'over the limit');
    await new Promise((r) => setTimeout(r, 20));
    expect(pair.texts).toEqual([]);
    clock.advance(DRAIN_CHECK_MS);
    await pair.until(() => pair.texts.length === 2, 'two reports');
    expect(pair.texts[0]).toMatchObject({ type: 'error', code: 'client_backpressure', count: 2 });
    expect(String(pair.texts[0]!.message)).toMatch(/2 message\(s\) from the peer were dropped/);
    expect(pair.texts[1]).toMatchObject({ code: 'rate_limited', count: 1, message: 'over the limit' });
    expect(clock.pendingTimers).toBe(0);
  });
});
