/**
 * The discovery with a fake clock, and the responder's encoder answering on the other side of
 * an in-memory wire: matching by transaction id and source, retransmissions, timeouts, the NAT
 * verdict, what counts and what is dropped without state.
 */
import { describe, expect, it } from 'vitest';
import type { Endpoint, Family } from '../../machines/endpoint.js';
import { StunDiscovery, type StunTiming } from '../../src/io/stun-discovery.js';
import type { EndpointsFrame } from '../../src/net/nat-mapping.js';
import { parseHostPort, type HostPort } from '../../src/net/host-port.js';
import { decodeStun, encodeBindingSuccess, encodeStun, METHOD_BINDING, StunAttr, type StunMessage } from '../../src/protocol/stun.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { captureLogs } from '../helpers/logs.js';

const TIMING: StunTiming = { rtoMs: 500, maxSends: 4, timeoutMs: 5000, refreshMs: 60_000 };
const hp = (text: string): HostPort => parseHostPort(text) as HostPort;

/** A wire: records what is sent; `answer` plays a STUN server that saw `mapped` as the source. */
function setup(servers: string[], families: Family[] = ['ipv4']) {
  const clock = new FakeClock();
  const sent: Array<{ to: Endpoint; bytes: Buffer }> = [];
  let n = 0;
  const discovery = new StunDiscovery({
    servers: servers.map(hp),
    sender: { send: (to, pieces) => (sent.push({ to, bytes: Buffer.concat(pieces) }), true), families: () => families },
    clock,
    log: captureLogs().log,
    timing: TIMING,
    resolve: async (host) => (host === 'dual.test' ? [{ family: 'ipv4', address: '192.0.2.50' }, { family: 'ipv6', address: '2001:db8::50' }] : host === 'nowhere.test' ? Promise.reject(new Error('ENOTFOUND')) : [{ family: host.includes(':') ? 'ipv6' : 'ipv4', address: host }]),
    transactionId: () => Buffer.from(String(++n).padStart(12, '0')),
  });
  const frames: EndpointsFrame[] = [];
  discovery.subscribe((f) => frames.push(f));
  const answer = (i: number, mapped: Endpoint, from?: Endpoint) => {
    const { to, bytes } = sent[i]!;
    const src = from ?? to;
    discovery.receive(src.family, encodeBindingSuccess(bytes, mapped)!, src.address, src.port);
  };
  const tick = async (ms = 0) => {
    clock.advance(ms);
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return { clock, sent, discovery, frames, answer, tick };
}

const MAPPED: Endpoint = { family: 'ipv4', address: '203.0.113.7', port: 41000 };

describe('StunDiscovery', () => {
  it('asks each server on each family, reports the first server\'s endpoint, with RTT from the clock', async () => {
    const { sent, discovery, frames, answer, tick } = setup(['192.0.2.1:3478', '192.0.2.2:3478']);
    const round = discovery.start();
    await tick();
    expect(sent.map((s) => `${s.to.address}:${s.to.port}`)).toEqual(['192.0.2.1:3478', '192.0.2.2:3478']);
    expect(discovery.frame()).toBeNull(); // not before the round is over
    await tick(12);
    answer(1, MAPPED);
    await tick(3);
    answer(0, MAPPED);
    await round;
    expect(frames).toEqual([{ type: 'endpoints', ipv4: '203.0.113.7:41000', ipv6: null, nat: 'endpoint-independent', relay: null }]);
    expect(discovery.view().servers).toEqual([
      { server: '192.0.2.1:3478', family: 'ipv4', address: '192.0.2.1:3478', mapped: '203.0.113.7:41000', rttMs: 15, error: null },
      { server: '192.0.2.2:3478', family: 'ipv4', address: '192.0.2.2:3478', mapped: '203.0.113.7:41000', rttMs: 12, error: null },
    ]);
    expect(discovery.counts).toMatchObject({ request_sent: 2, answer: 2, unsolicited: 0 });
  });

  it('two servers at different addresses that see different endpoints: endpoint-dependent; one server: unknown', async () => {
    const two = setup(['192.0.2.1:3478', '192.0.2.2:3478']);
    const round = two.discovery.start();
    await two.tick();
    two.answer(0, MAPPED);
    two.answer(1, { ...MAPPED, port: 41001 });
    await round;
    expect(two.frames.at(-1)).toMatchObject({ ipv4: '203.0.113.7:41000', nat: 'endpoint-dependent' });

    const one = setup(['192.0.2.1:3478', '192.0.2.1:3479']); // one address, two ports: not enough to tell
    const round1 = one.discovery.start();
    await one.tick();
    one.answer(0, MAPPED);
    one.answer(1, MAPPED);
    await round1;
    expect(one.frames.at(-1)).toMatchObject({ nat: 'unknown' });
  });

  it('retransmits with a doubling RTO (each request its own transaction), gives up at the timeout', async () => {
    const { sent, discovery, frames, tick } = setup(['192.0.2.1:3478']);
    const round = discovery.start();
    await tick();
    const times: number[] = [];
    const at = () => times.push(sent.length);
    for (let t = 0; t <= 5000; t += 100) {
      at();
      await tick(100);
    }
    await round;
    // sends at 0, 500, 1500, 3500; then nothing until the 5000 ms timeout
    expect(times.slice(0, 5)).toEqual([1, 1, 1, 1, 1]);
    expect([times[5], times[15], times[35], times[50]]).toEqual([2, 3, 4, 4]);
    expect(new Set(sent.map((s) => decodedOf(s.bytes).transactionId.toString('hex'))).size).toBe(4);
    expect(frames).toEqual([{ type: 'endpoints', ipv4: null, ipv6: null, nat: 'unknown', relay: null }]);
    expect(discovery.view().servers[0]).toMatchObject({ mapped: null, error: 'timeout' });
  });

  it('an answer to a retransmission measures its RTT from that request', async () => {
    const { sent, discovery, answer, tick } = setup(['192.0.2.1:3478']);
    const round = discovery.start();
    await tick();
    await tick(500); // the second request goes out at 500
    await tick(7);
    answer(1, MAPPED); // RTT 7, from the request it answers, not 507 from the first
    await round;
    expect(sent.length).toBe(2);
    expect(discovery.view().servers[0]).toMatchObject({ mapped: '203.0.113.7:41000', rttMs: 7 });

    const late = setup(['192.0.2.1:3478']);
    const again = late.discovery.start();
    await late.tick();
    await late.tick(500);
    await late.tick(7);
    late.answer(0, MAPPED); // a late answer to the first request still counts while the probe is open: RTT 507
    await again;
    expect(late.discovery.view().servers[0]).toMatchObject({ rttMs: 507 });
  });

  it('drops unsolicited and forged answers without state: wrong id, wrong source address or port, wrong family, after the round', async () => {
    const { sent, discovery, frames, answer, tick } = setup(['192.0.2.1:3478']);
    const round = discovery.start();
    await tick();
    const forged = encodeBindingSuccess(encodeStun(METHOD_BINDING, 'request', Buffer.alloc(12, 7), [], true), { family: 'ipv4', address: '198.51.100.66', port: 6666 })!;
    discovery.receive('ipv4', forged, '192.0.2.1', 3478); // an id never sent
    answer(0, { ...MAPPED, address: '198.51.100.66' }, { family: 'ipv4', address: '192.0.2.99', port: 3478 }); // right id, wrong host
    answer(0, { ...MAPPED, address: '198.51.100.66' }, { family: 'ipv4', address: '192.0.2.1', port: 3479 }); // wrong port
    answer(0, { ...MAPPED, address: '198.51.100.66' }, { family: 'ipv6', address: '192.0.2.1', port: 3478 }); // wrong socket
    expect(discovery.counts.unsolicited).toBe(4);
    answer(0, MAPPED);
    await round;
    answer(0, { ...MAPPED, address: '198.51.100.66' }); // a replay of a settled transaction
    expect(discovery.counts).toMatchObject({ answer: 1, unsolicited: 5 });
    expect(frames).toEqual([{ type: 'endpoints', ipv4: '203.0.113.7:41000', ipv6: null, nat: 'unknown', relay: null }]);
  });

  it('garbage with a STUN header, requests and bad fingerprints are counted and change nothing', async () => {
    const { sent, discovery, answer, tick } = setup(['192.0.2.1:3478']);
    const round = discovery.start();
    await tick();
    const header = Buffer.alloc(24);
    header.writeUInt32BE(0x2112a442, 4);
    header.writeUInt16BE(4, 2);
    header.writeUInt32BE(0xffff0000, 20); // an attribute claiming 0 bytes... of a huge type, fine, but then:
    header.writeUInt16BE(999, 22); // a length past the end
    discovery.receive('ipv4', header, '192.0.2.1', 3478);
    discovery.receive('ipv4', sent[0]!.bytes, '192.0.2.1', 3478); // a Binding request (ours, reflected)
    const bad = Buffer.from(encodeBindingSuccess(sent[0]!.bytes, MAPPED)!);
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 1;
    discovery.receive('ipv4', bad, '192.0.2.1', 3478);
    expect(discovery.counts).toMatchObject({ malformed: 2, ignored: 1, answer: 0 });
    answer(0, MAPPED);
    await round;
    expect(discovery.frame()?.ipv4).toBe('203.0.113.7:41000');
  });

  it('asks again every refresh interval and tells subscribers only when the frame changes; refresh() joins a round under way', async () => {
    const { sent, discovery, frames, answer, tick } = setup(['192.0.2.1:3478']);
    const first = discovery.start();
    expect(discovery.refresh()).toBe(discovery.refresh());
    await tick();
    answer(0, MAPPED);
    await first;
    await tick(60_000);
    expect(sent.length).toBe(2);
    answer(1, MAPPED);
    await tick();
    expect(frames.length).toBe(1); // the same frame: no new one
    await tick(60_000);
    answer(2, { ...MAPPED, port: 50000 }); // the NAT re-mapped
    await tick();
    expect(frames.map((f) => f.ipv4)).toEqual(['203.0.113.7:41000', '203.0.113.7:50000']);
    discovery.stop();
    await tick(120_000);
    expect(sent.length).toBe(3);
  });

  it('names resolve per family; a family without an address or a name that does not resolve is an error of that server', async () => {
    const { sent, discovery, answer, tick } = setup(['dual.test:3478', 'nowhere.test:3478', '[2001:db8::9]:3478'], ['ipv6', 'ipv4']);
    const round = discovery.start();
    await tick();
    expect(sent.map((s) => `${s.to.family} ${s.to.address}`)).toEqual(['ipv6 2001:db8::50', 'ipv4 192.0.2.50', 'ipv6 2001:db8::9']);
    answer(0, { family: 'ipv6', address: '2001:db8::77', port: 40000 });
    answer(1, MAPPED);
    answer(2, { family: 'ipv6', address: '2001:db8::77', port: 40000 });
    await round;
    const view = discovery.view();
    expect(view).toMatchObject({ ipv4: '203.0.113.7:41000', ipv6: '[2001:db8::77]:40000', nat: 'endpoint-independent' });
    expect(view.servers.map((s) => [s.server, s.family, s.error])).toEqual([
      ['dual.test:3478', 'ipv6', null],
      ['dual.test:3478', 'ipv4', null],
      ['nowhere.test:3478', 'ipv6', 'resolve_failed'],
      ['nowhere.test:3478', 'ipv4', 'resolve_failed'],
      ['[2001:db8::9]:3478', 'ipv6', null],
      ['[2001:db8::9]:3478', 'ipv4', 'no_address'],
    ]);
  });

  it('an error response is an answer with an error, not an endpoint', async () => {
    const { sent, discovery, tick } = setup(['192.0.2.1:3478']);
    const round = discovery.start();
    await tick();
    const id = decodedOf(sent[0]!.bytes).transactionId;
    discovery.receive('ipv4', encodeStun(METHOD_BINDING, 'error', id, [[StunAttr.ERROR_CODE, Buffer.from([0, 0, 4, 0])]], true), '192.0.2.1', 3478);
    await round;
    expect(discovery.view().servers[0]).toMatchObject({ mapped: null, error: 'error_response' });
  });
});

function decodedOf(bytes: Buffer): StunMessage {
  return decodeStun(bytes) as StunMessage;
}
