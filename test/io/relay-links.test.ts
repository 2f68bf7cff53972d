/**
 * RelayLinks: one binder per (relay, channel) on the first relay.want, stopped with the channel's
 * last session; the switchboard hands it the relay control messages that come from a relay
 * (and only from one), before the v1 header decode.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Endpoint, Family } from '../../machines/endpoint.js';
import { RelayLinks } from '../../src/io/relay-links.js';
import { Switchboard } from '../../src/io/switchboard.js';
import type { PeerLink } from '../../src/io/peer-link.js';
import { admissionKey, bindProof, sign } from '../../src/protocol/relay-auth.js';
import { decodeRelayMessage, encodeRelayMessage, relayTypeOf, RelayType } from '../../src/protocol/relay-packet.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { captureLogs } from '../helpers/logs.js';

const RELAY4: Endpoint = { family: 'ipv4', address: '198.51.100.9', port: 3478 };
const RELAY6: Endpoint = { family: 'ipv6', address: '2001:db8::9', port: 3478 };
const SECRET = 'relay secret';

function setup(families: Family[] = ['ipv4']) {
  const clock = new FakeClock();
  const { log } = captureLogs();
  const sent: Array<{ to: Endpoint; type: number | null; bytes: Buffer }> = [];
  const links = new RelayLinks({
    relays: [RELAY4, RELAY6],
    admissionKey: admissionKey(SECRET),
    sender: {
      send: (to, pieces) => {
        const bytes = Buffer.concat(pieces);
        sent.push({ to, type: relayTypeOf(bytes), bytes });
        return true;
      },
      families: () => families,
    },
    clock,
    log,
  });
  const sb = new Switchboard<PeerLink>({ maxPayloadBytes: 1200, preauth: { perSourcePerS: 0, totalPerS: 0 }, log, clock });
  sb.receiveRelayWith(links);
  const channel = sb.channelFor(randomBytes(32));
  return { clock, links, sent, sb, channel };
}

function challengeFor(channelId: string, observed: Endpoint, secret = SECRET): Buffer {
  const message = encodeRelayMessage({ type: RelayType.CHALLENGE, channel: Buffer.from(channelId, 'hex'), cookie: randomBytes(16), observed });
  return sign(admissionKey(secret), message);
}

describe('RelayLinks', () => {
  it('binds a channel once per relay of a family the server has a socket for, however many sessions want it', () => {
    const { links, sent, channel } = setup(['ipv4']);
    links.want(channel, {});
    links.want(channel, {});
    expect(sent.map((s) => [s.to, s.type])).toEqual([[RELAY4, RelayType.BIND_REQUEST]]);
    expect(links.states(channel)).toEqual([{ relay: '198.51.100.9:3478', state: 'binding', paired: [], observed: null }]);
  });

  it('a CHALLENGE from the relay reaches the binder (which BINDs); the same from anywhere else is malformed', () => {
    const { links, sent, sb, channel } = setup(['ipv4', 'ipv6']);
    links.want(channel, {});
    expect(sent.map((s) => s.to)).toEqual([RELAY4, RELAY6]);
    const observed: Endpoint = { family: 'ipv4', address: '203.0.113.7', port: 40000 };
    sb.deliver('ipv4', challengeFor(channel.id, observed), '192.0.2.66', 3478);
    expect(sb.drops.malformed).toBe(1);
    expect(sent.length).toBe(2);
    sb.deliver('ipv4', challengeFor(channel.id, observed), RELAY4.address, RELAY4.port);
    expect(sent.at(-1)).toMatchObject({ to: RELAY4, type: RelayType.BIND });
    expect(links.states(channel)[0]!.observed).toBe('203.0.113.7:40000');
    expect(links.counts).toEqual({ handled: 1, unwanted: 0 });
    expect(sb.drops.malformed).toBe(1);
    // A control message for a channel nobody here wants, from the relay: taken and counted, not malformed.
    sb.deliver('ipv4', challengeFor('0011223344556677', observed), RELAY4.address, RELAY4.port);
    expect(links.counts.unwanted).toBe(1);
    expect(sb.drops.malformed).toBe(1);
  });

  it('a relay with another secret binds nothing (its answer does not verify)', () => {
    const { links, sent, sb, channel } = setup();
    links.want(channel, {});
    sb.deliver('ipv4', challengeFor(channel.id, { family: 'ipv4', address: '203.0.113.7', port: 40000 }, 'another secret'), RELAY4.address, RELAY4.port);
    expect(sent.map((s) => s.type)).toEqual([RelayType.BIND_REQUEST]);
  });

  it('stops the binders with the channel\'s last session, and binds again for a new one', () => {
    const { clock, links, sent, channel } = setup();
    const one = {};
    const two = {};
    links.want(channel, one);
    links.want(channel, two);
    links.leave(channel, one);
    clock.advance(300);
    expect(sent.length).toBe(2); // the first session left; the other still wants it: retried
    links.leave(channel, two);
    clock.advance(60_000);
    expect(sent.length).toBe(2);
    expect(links.states(channel)).toEqual([]);
    links.want(channel, one);
    expect(sent.length).toBe(3);
  });

  it('knows its relays (the target policy exempts them)', () => {
    const { links } = setup();
    expect(links.isRelay(RELAY4)).toBe(true);
    expect(links.isRelay({ ...RELAY4, port: 3479 })).toBe(false);
  });

  it('tells the channel\'s sessions the paired ends\' sources (only those with a right PSK proof) when they change, and a late session at once', async () => {
    const { links, sent, sb, channel } = setup(['ipv4']);
    const heard: Array<{ who: string; endpoints: Endpoint[] }> = [];
    const first = {};
    links.want(channel, first, (endpoints) => heard.push({ who: 'first', endpoints }));
    sb.deliver('ipv4', challengeFor(channel.id, { family: 'ipv4', address: '203.0.113.7', port: 40000 }), RELAY4.address, RELAY4.port);
    const bind = decodeRelayMessage(sent.at(-1)!.bytes);
    if (bind?.type !== RelayType.BIND) throw new Error('no BIND');
    const id = Buffer.from(channel.id, 'hex');
    const bindKey = channel.keys.relayBindKey();
    const peer: Endpoint = { family: 'ipv4', address: '198.51.100.2', port: 50123 };
    const stranger: Endpoint = { family: 'ipv4', address: '192.0.2.66', port: 40000 };
    const end = (source: Endpoint, proofFor: Endpoint = source) => {
      const nonce = randomBytes(16);
      return { nonce, source, proof: bindProof(bindKey, id, proofFor, nonce), paired: true };
    };
    const bound = (ends: ReturnType<typeof end>[]) =>
      sb.deliver('ipv4', sign(admissionKey(SECRET), encodeRelayMessage({ type: RelayType.BOUND, channel: id, nonce: bind.nonce, ends })), RELAY4.address, RELAY4.port);

    bound([]); // bound, nobody paired: nothing to tell
    expect(heard).toEqual([]);
    // A tenant with the relay secret but not the PSK (a proof made for another source) is left out.
    bound([end(peer), end(stranger, peer)]);
    expect(heard).toEqual([{ who: 'first', endpoints: [peer] }]);
    bound([end(peer), end(stranger, peer)]); // the same again (a refresh): no news
    expect(heard.length).toBe(1);

    const late = {};
    links.want(channel, late, (endpoints) => heard.push({ who: 'late', endpoints }));
    links.want(channel, late, (endpoints) => heard.push({ who: 'again', endpoints }));
    expect(heard.length).toBe(1);
    await Promise.resolve();
    expect(heard.slice(1)).toEqual([{ who: 'late', endpoints: [peer] }]);

    // The peer's NAT rebinds: its new source reaches both; a session that left hears nothing.
    links.leave(channel, first);
    const moved: Endpoint = { ...peer, port: 50999 };
    bound([end(moved)]);
    expect(heard.slice(2)).toEqual([{ who: 'late', endpoints: [moved] }]);
  });
});
