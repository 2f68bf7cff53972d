/**
 * A micro-benchmark of one established path's upkeep, in process: two switchboards with N
 * session pairs each, their paths up, joined by in-memory sockets (a send is delivered to the
 * other switchboard at once, as one datagram). Each round advances a fake clock by one heartbeat
 * interval: every session sends its heartbeat (the wheel), the other side opens it. Prints the
 * CPU time per heartbeat (sent and received) and the scavenges per 1,000 heartbeats: the
 * per-heartbeat bookkeeping of src/io without the kernel, for A/B comparisons of a change.
 *
 *   node --import tsx test/bench/heartbeat-micro.ts [--sessions 2000] [--rounds 50]
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from 'node:crypto';
import type { Socket } from 'node:dgram';
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { Endpoint } from '../../machines/endpoint.js';
import { HeartbeatWheel } from '../../src/io/heartbeat-wheel.js';
import { newLinkStats, PeerLink } from '../../src/io/peer-link.js';
import { Switchboard } from '../../src/io/switchboard.js';
import { createLogger } from '../../src/log.js';
import { FakeClock } from '../helpers/fake-clock.js';

const { values } = parseArgs({ options: { sessions: { type: 'string', default: '2000' }, rounds: { type: 'string', default: '50' }, bare: { type: 'boolean', default: false } } });
const SESSIONS = Number(values.sessions);
const ROUNDS = Number(values.rounds);
const TIMING = { heartbeatMs: 1000, peerTimeoutMs: 5000 };
const log = createLogger('silent');
const clock = new FakeClock();

interface Side {
  board: Switchboard<PeerLink>;
  wheel: HeartbeatWheel;
  endpoint: Endpoint;
}

function side(port: number): Side {
  const board = new Switchboard<PeerLink>({ maxPayloadBytes: 1200, preauth: { perSourcePerS: 0, totalPerS: 0 }, log, clock });
  const wheel = new HeartbeatWheel(clock, (err) => {
    throw err;
  });
  return { board, wheel, endpoint: { family: 'ipv4', address: '127.0.0.1', port } };
}

const a = side(1);
const b = side(2);
let datagrams = 0;
function wire(from: Side, to: Side): void {
  const socket = {
    send(pieces: Buffer[], _port: number, _address: string, callback?: (err: Error | null, bytes: number) => void) {
      datagrams++;
      const datagram = Buffer.concat(pieces);
      to.board.deliver('ipv4', datagram, from.endpoint.address, from.endpoint.port);
      callback?.(null, datagram.length);
    },
  };
  from.board.attach('ipv4', socket as unknown as Socket);
}
wire(a, b);
wire(b, a);

function link(s: Side, psk: Buffer, id: string): PeerLink {
  const peer = new PeerLink({
    id,
    channel: s.board.channelFor(psk),
    sender: s.board,
    log,
    deny: () => null,
    udpOutPerS: 0,
    stats: newLinkStats(),
    deliver: () => {},
    clock,
    wheel: s.wheel,
    timing: TIMING,
  });
  peer.join(() => {});
  return peer;
}

/**
 * --bare: the bench's bare AES relay's heartbeat (test/bench/bare-relay.ts) in the same harness:
 * a 12-byte id+counter header, createCipheriv per datagram, a Map lookup by id and one open.
 */
const bareBeats: Array<() => void> = [];
function bareSetup(): void {
  const key = () => createSecretKey(randomBytes(32));
  const sessions = new Map<number, { key: ReturnType<typeof createSecretKey>; counter: number }>();
  const deliver = (datagram: Buffer) => {
    const s = sessions.get(datagram.readUInt32BE(0) & 0x7fff_ffff)!;
    const header = datagram.subarray(0, 12);
    const decipher = createDecipheriv('aes-256-gcm', s.key, header);
    decipher.setAAD(header);
    decipher.setAuthTag(datagram.subarray(datagram.length - 16));
    decipher.update(datagram.subarray(12, datagram.length - 16));
    decipher.final();
  };
  const plaintext = Buffer.alloc(40);
  for (let i = 0; i < SESSIONS; i++) {
    const s = { key: key(), counter: 0 };
    sessions.set(i, s);
    bareBeats.push(() => {
      const header = Buffer.allocUnsafe(12);
      header.writeUInt32BE((i | 0x8000_0000) >>> 0, 0);
      const counter = s.counter++;
      header.writeUInt32BE(Math.floor(counter / 0x1_0000_0000), 4);
      header.writeUInt32BE(counter >>> 0, 8);
      const cipher = createCipheriv('aes-256-gcm', s.key, header);
      cipher.setAAD(header);
      const body = cipher.update(plaintext);
      cipher.final();
      datagrams++;
      deliver(Buffer.concat([header, body, cipher.getAuthTag()]));
    });
  }
}

if (values.bare) bareSetup();
for (let i = 0; i < (values.bare ? 0 : SESSIONS); i++) {
  const psk = randomBytes(32);
  const la = link(a, psk, `a${i}`);
  const lb = link(b, psk, `b${i}`);
  // Both paths up, as the machines would after the punch: each echoing the other.
  lb.openPath(la.salt, a.endpoint, null, 1);
  la.openPath(lb.salt, b.endpoint, { salt: lb.salt, sentAt: clock.now(), at: clock.now() }, 1);
  // Spread the sessions over the interval, as sessions that came up at different times.
  clock.advance(TIMING.heartbeatMs / SESSIONS);
}

let scavenges = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) if ((entry as unknown as { detail: { kind: number } }).detail.kind === 1) scavenges++;
}).observe({ entryTypes: ['gc'] });

// Warm up, then measure.
/** One heartbeat interval: the wheel's, or every bare session's beat in turn (its setInterval). */
const round = () => {
  if (!values.bare) return clock.advance(TIMING.heartbeatMs);
  for (const beat of bareBeats) beat();
};
for (let r = 0; r < 5; r++) round();
const sent0 = datagrams;
const scav0 = scavenges;
const cpu0 = process.cpuUsage();
for (let r = 0; r < ROUNDS; r++) round();
const cpu = process.cpuUsage(cpu0);
await new Promise((resolve) => setTimeout(resolve, 50));
const heartbeats = datagrams - sent0;
const us = (cpu.user + cpu.system) / heartbeats;
process.stdout.write(
  `${values.bare ? 'bare' : 'autoprox'}: ${SESSIONS} pairs, ${heartbeats} heartbeats: ${us.toFixed(2)} us of CPU per heartbeat (sent and opened), ${((1000 * (scavenges - scav0)) / heartbeats).toFixed(2)} scavenges per 1,000; wheel sizes ${a.wheel.size}/${b.wheel.size}\n`,
);
