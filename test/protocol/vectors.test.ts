/**
 * The known-answer test vectors of README ("Wire protocol", "Test vectors"), read from the
 * README itself: the code produces exactly those bytes, and opens and decodes them back. A
 * compatible implementation in another language can check itself against the same block.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KeySchedule, open, seal } from '../../src/protocol/crypto.js';
import { decodeHeartbeat, encodeHeartbeat } from '../../src/protocol/heartbeat.js';
import { decodeHeader, encodeHeader, PacketType } from '../../src/protocol/packet.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

function vectors(): Map<string, Buffer> {
  const section = readme.slice(readme.indexOf('### Test vectors'));
  const block = /```text\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error('README has no test vector block under "### Test vectors"');
  const out = new Map<string, Buffer>();
  for (const line of block.split('\n').filter(Boolean)) {
    const at = line.lastIndexOf(': ');
    out.set(line.slice(0, at), Buffer.from(line.slice(at + 2), 'hex'));
  }
  return out;
}

const v = vectors();
const get = (prefix: string): Buffer => {
  const found = [...v.entries()].find(([name]) => name.startsWith(prefix));
  if (!found) throw new Error(`README vector "${prefix}..." is missing`);
  return found[1];
};

describe('README test vectors', () => {
  const psk = get('psk');
  const a = get('salt A');
  const b = get('salt B');
  const keys = new KeySchedule(psk);
  const channel = keys.channelId();

  it('has every value, of the right size', () => {
    expect([psk.length, a.length, b.length]).toEqual([32, 16, 16]);
    expect(v.size).toBe(10);
  });

  it('channel id and keys', () => {
    expect(channel).toEqual(get('channel id'));
    expect(keys.heartbeatKey(a).export()).toEqual(get('heartbeat key of A'));
    expect(keys.dataKey(a, b).export()).toEqual(get('data key A to B'));
  });

  it('HEARTBEAT: plaintext and datagram, and back', () => {
    const plaintext = encodeHeartbeat({ sentAt: 1000.5, echoSalt: b.toString('hex'), echoSentAt: 999.25, echoDelayMs: 0.125 });
    expect(plaintext).toEqual(get('heartbeat plaintext'));
    const datagram = Buffer.concat(seal(keys.heartbeatKey(a), encodeHeader(PacketType.HEARTBEAT, channel, a, 0), plaintext));
    expect(datagram).toEqual(get('HEARTBEAT from A'));
    expect(datagram).toHaveLength(90);
    expect(decodeHeader(datagram)).toEqual({ type: PacketType.HEARTBEAT, channel: channel.toString('hex'), salt: a.toString('hex'), counter: 0 });
    expect(decodeHeartbeat(open(keys.heartbeatKey(a), datagram)!)).toEqual({ sentAt: 1000.5, echoSalt: b.toString('hex'), echoSentAt: 999.25, echoDelayMs: 0.125 });
  });

  it('DATA and CLOSE from A to B, and only B opens them', () => {
    const data = Buffer.concat(seal(keys.dataKey(a, b), encodeHeader(PacketType.DATA, channel, a, 1), Buffer.from('hello, autoprox')));
    expect(data).toEqual(get('DATA from A to B'));
    expect(data).toHaveLength(65);
    const close = Buffer.concat(seal(keys.dataKey(a, b), encodeHeader(PacketType.CLOSE, channel, a, 2), Buffer.alloc(0)));
    expect(close).toEqual(get('CLOSE from A to B'));
    expect(close).toHaveLength(50);
    expect(open(keys.dataKey(a, b), data)?.toString()).toBe('hello, autoprox');
    expect(open(keys.dataKey(a, b), close)).toEqual(Buffer.alloc(0));
    // Bound to B: another receiver, the other direction, or the heartbeat key open nothing.
    expect(open(keys.dataKey(a, Buffer.alloc(16, 0xcc)), data)).toBeNull();
    expect(open(keys.dataKey(b, a), data)).toBeNull();
    expect(open(keys.heartbeatKey(a), data)).toBeNull();
  });
});
