/** The relay's table of ends and pairs: limits, eviction, expiry, re-binding. Pure, time handed in. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MAX_CHANNEL_ENDS, type Endpoint } from '../../src/protocol/relay-packet.js';
import { MAX_CHANNEL_ENDS_PER_GROUP, RelayTable, type End } from '../../src/relay/relay-table.js';

const LIMITS = { maxBindings: 100, maxBindingsPerSource: 10, datagramsPerS: 0, bytesPerS: 0, idleMs: 30_000 };
const at = (address: string, port: number): Endpoint => ({ family: 'ipv4', address, port });
const key = (e: Endpoint) => `${e.address}:${e.port}`;
/** A datagram of `bytes` bytes on `channel`, as a server sends it (its channel id at bytes 2-10). */
const datagramOf = (channel: Buffer, bytes: number) => Buffer.concat([Buffer.from([0xa1, 2]), channel, Buffer.alloc(Math.max(0, bytes - 10))]);

function bind(table: RelayTable, channel: Buffer, source: Endpoint, now = 0, nonce = randomBytes(16)): End {
  const result = table.bind(channel, source, key(source), nonce, randomBytes(16), now);
  if (typeof result === 'string') throw new Error(result);
  return result.end;
}

function pair(table: RelayTable, a: End, b: End): void {
  table.approve(a, b.nonce, 0);
  table.approve(b, a.nonce, 0);
}

describe('RelayTable', () => {
  it('pairs two ends only when each approved the other, and forwards only between pairs', () => {
    const table = new RelayTable(LIMITS);
    const channel = randomBytes(8);
    const a = bind(table, channel, at('10.0.0.1', 1000));
    const b = bind(table, channel, at('10.0.0.2', 2000));
    expect(table.forward(a.sourceKey, datagramOf(a.channel, 100), 0)).toBe('unpaired');
    expect(table.approve(a, b.nonce, 0)).toMatchObject({ paired: false });
    expect(table.pairs).toBe(0);
    expect(table.approve(b, a.nonce, 0)).toMatchObject({ paired: true });
    expect(table.pairs).toBe(1);
    expect(table.forward(a.sourceKey, datagramOf(a.channel, 100), 0)).toEqual([b]);
    expect(table.forward(b.sourceKey, datagramOf(b.channel, 100), 0)).toEqual([a]);
    expect(table.forward('10.0.0.3:1', datagramOf(a.channel, 100), 0)).toBe('unbound');
  });

  it('two channels of one source that share the low half of their id are told apart', () => {
    const table = new RelayTable(LIMITS);
    const one = Buffer.from('0102030405060708', 'hex');
    const two = Buffer.from('01020304a5a6a7a8', 'hex');
    const [a1, b1] = [bind(table, one, at('10.0.0.1', 1)), bind(table, one, at('10.0.0.2', 1))];
    const [a2, b2] = [bind(table, two, at('10.0.0.1', 1)), bind(table, two, at('10.0.0.2', 1))];
    pair(table, a1, b1);
    pair(table, a2, b2);
    expect(table.forward(a1.sourceKey, datagramOf(one, 60), 0)).toEqual([b1]);
    expect(table.forward(a1.sourceKey, datagramOf(two, 60), 0)).toEqual([b2]);
    table.remove(a1);
    expect(table.forward(a1.sourceKey, datagramOf(one, 60), 0)).toBe('unbound');
    expect(table.forward(a2.sourceKey, datagramOf(two, 60), 0)).toEqual([b2]);
  });

  it('a new nonce from the same source (a restarted server) starts its pairs again', () => {
    const table = new RelayTable(LIMITS);
    const channel = randomBytes(8);
    const a = bind(table, channel, at('10.0.0.1', 1000));
    const b = bind(table, channel, at('10.0.0.2', 2000));
    pair(table, a, b);
    const again = table.bind(channel, a.source, a.sourceKey, randomBytes(16), randomBytes(16), 1);
    expect(again).toMatchObject({ end: a, changed: true });
    expect(table.pairs).toBe(0);
    expect(table.forward(b.sourceKey, datagramOf(b.channel, 1), 1)).toBe('unpaired');
    // The same nonce and proof again is a refresh, not a change.
    expect(table.bind(channel, a.source, a.sourceKey, a.nonce, a.proof, 2)).toMatchObject({ changed: false });
  });

  it('a full channel makes room by dropping its oldest unpaired end, never a paired one', () => {
    const table = new RelayTable({ ...LIMITS, maxBindingsPerSource: 100 });
    const channel = randomBytes(8);
    const a = bind(table, channel, at('10.0.0.1', 1));
    const b = bind(table, channel, at('10.0.0.2', 1));
    pair(table, a, b);
    const strangers = Array.from({ length: MAX_CHANNEL_ENDS - 2 }, (_, i) => bind(table, channel, at(`10.1.0.${i}`, 1)));
    const late = bind(table, channel, at('10.2.0.1', 1));
    expect(table.find(strangers[0]!.sourceKey, channel.toString('latin1'))).toBeUndefined();
    expect(table.find(late.sourceKey, channel.toString('latin1'))).toBe(late);
    expect(table.pairs).toBe(1);
    expect(table.forward(a.sourceKey, datagramOf(a.channel, 1), 0)).toEqual([b]);
  });

  it('one source group gets at most two ends of a channel, and its share of all ends', () => {
    const table = new RelayTable({ ...LIMITS, maxBindingsPerSource: 3 });
    const channel = randomBytes(8);
    for (let i = 0; i < MAX_CHANNEL_ENDS_PER_GROUP; i++) bind(table, channel, at('10.0.0.1', 1000 + i));
    expect(table.bind(channel, at('10.0.0.1', 2000), '10.0.0.1:2000', randomBytes(16), randomBytes(16), 0)).toBe('limit_channel');
    bind(table, randomBytes(8), at('10.0.0.1', 3000));
    expect(table.bind(randomBytes(8), at('10.0.0.1', 3001), '10.0.0.1:3001', randomBytes(16), randomBytes(16), 0)).toBe('limit_source');
    const small = new RelayTable({ ...LIMITS, maxBindings: 1 });
    bind(small, channel, at('10.0.0.1', 1));
    expect(small.bind(channel, at('10.0.0.2', 1), '10.0.0.2:1', randomBytes(16), randomBytes(16), 0)).toBe('limit_total');
  });

  it('forgets ends idle past the limit; traffic keeps them; rates are per end', () => {
    const table = new RelayTable({ ...LIMITS, datagramsPerS: 10 });
    const channel = randomBytes(8);
    const a = bind(table, channel, at('10.0.0.1', 1));
    const b = bind(table, channel, at('10.0.0.2', 1));
    pair(table, a, b);
    let sent = 0;
    for (let i = 0; i < 20; i++) if (Array.isArray(table.forward(a.sourceKey, datagramOf(a.channel, 10), 20_000))) sent++;
    expect(sent).toBe(10);
    expect(table.forward(a.sourceKey, datagramOf(a.channel, 10), 20_000)).toBe('rate_limited');
    expect(table.expire(40_000)).toBe(1); // b was last seen at 0; a at 20,000
    expect(table).toMatchObject({ ends: 1, pairs: 0 });
    expect(table.forward(a.sourceKey, datagramOf(a.channel, 10), 40_000)).toBe('unpaired');
    expect(table.expire(60_001)).toBe(1);
    expect(table.ends).toBe(0);
  });
});
