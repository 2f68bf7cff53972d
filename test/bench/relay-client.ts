/**
 * The relay bench's two servers, in one forked process: socket A and socket B on loopback, each
 * with one RelayBinder per channel (the servers' own binding code), and traffic between them
 * through the relay or through the bare forwarder. Commands come over IPC (relay-phase.ts).
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { systemClock } from '../../src/clock.js';
import { RelayBinder } from '../../src/io/relay-binder.js';
import { KeySchedule } from '../../src/protocol/crypto.js';
import { encodeHeader, PacketType } from '../../src/protocol/packet.js';
import { admissionKey } from '../../src/protocol/relay-auth.js';
import { relayTypeOf } from '../../src/protocol/relay-packet.js';

export type RelayCommand =
  | { cmd: 'bind'; port: number; secret: string; pairs: number; timeoutMs: number }
  | { cmd: 'hello'; port: number }
  | { cmd: 'send'; port: number; count: number; ratePerS: number; bytes: number; drainMs: number }
  | { cmd: 'rtt'; port: number; count: number; ratePerS: number; bytes: number }
  | { cmd: 'heartbeats'; port: number; perEndPerS: number; seconds: number };

export interface RelayReply {
  ok: boolean;
  error?: string;
  ms?: number;
  sent?: number;
  received?: number;
  rttsMs?: number[];
}

const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
const LOOPBACK = '127.0.0.1';
const ECHO = 0x80; // the counter's top byte marks a datagram B echoes back to A

async function open(): Promise<Socket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, LOOPBACK, resolve));
  socket.setRecvBufferSize(SOCKET_BUFFER_BYTES);
  socket.setSendBufferSize(SOCKET_BUFFER_BYTES);
  return socket;
}

const a = await open();
const b = await open();
/** The channels bound at the relay: one PSK each. */
let channels: Buffer[] = [Buffer.alloc(8)];
const binders: RelayBinder[] = [];
let received = 0;
const rttWaiters = new Map<number, (ms: number) => void>();

function isControl(d: Buffer): boolean {
  return relayTypeOf(d) !== null || d.toString('latin1', 0, 3) === 'OK ';
}

/** Binders by channel (latin1), per socket: a relay's answer goes to its channel's binder. */
const bindersA = new Map<string, RelayBinder>();
const bindersB = new Map<string, RelayBinder>();
const toBinder = (byChannel: Map<string, RelayBinder>, d: Buffer) => byChannel.get(d.toString('latin1', 2, 10))?.handle(d);

a.on('message', (d) => {
  if (relayTypeOf(d) !== null) return void toBinder(bindersA, d);
  if (isControl(d)) return;
  const tag = d.readUInt32BE(30);
  rttWaiters.get(tag)?.(performance.now() - d.readDoubleBE(34));
  rttWaiters.delete(tag);
});
b.on('message', (d, rinfo) => {
  if (relayTypeOf(d) !== null) return void toBinder(bindersB, d);
  if (isControl(d)) return;
  received++;
  if (d[26] === ECHO) b.send(d, rinfo.port, rinfo.address);
});

function datagram(channel: Buffer, tag: number, bytes: number, echo: boolean): Buffer {
  const header = encodeHeader(PacketType.DATA, channel, Buffer.alloc(16), tag);
  if (echo) header[26] = ECHO;
  // At least the tag (4) and the send time (8) after the header, and a GCM tag's room.
  const out = Buffer.concat([header, Buffer.alloc(Math.max(16, bytes - header.length))]);
  out.writeUInt32BE(tag, 30);
  out.writeDoubleBE(performance.now(), 34);
  return out;
}

async function paced(count: number, ratePerS: number, fn: (i: number) => void): Promise<void> {
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    fn(i);
    const due = start + ((i + 1) * 1000) / ratePerS;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    else if (i % 64 === 63) await new Promise((resolve) => setImmediate(resolve));
  }
}

async function handle(c: RelayCommand): Promise<RelayReply> {
  switch (c.cmd) {
    case 'bind': {
      const start = performance.now();
      const key = admissionKey(c.secret);
      const relay = { family: 'ipv4' as const, address: LOOPBACK, port: c.port };
      channels = [];
      for (let i = 0; i < c.pairs; i++) {
        const keys = new KeySchedule(randomBytes(32));
        channels.push(keys.channelId());
        for (const [socket, byChannel] of [[a, bindersA], [b, bindersB]] as const) {
          const binder = new RelayBinder({ relay, channel: keys.channelId(), bindKey: keys.relayBindKey(), admissionKey: key, send: (bytes, to) => socket.send(bytes, to.port, to.address), clock: systemClock });
          byChannel.set(keys.channelId().toString('latin1'), binder);
          binders.push(binder);
          binder.start();
        }
        if (i % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      while (binders.some((x) => x.state !== 'paired')) {
        if (performance.now() - start > c.timeoutMs) return { ok: false, error: `${binders.filter((x) => x.state !== 'paired').length} of ${binders.length} ends not paired within ${c.timeoutMs} ms` };
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return { ok: true, ms: performance.now() - start };
    }
    case 'hello': {
      const got = new Promise<void>((resolve) => b.once('message', () => resolve()));
      a.send('HELLO bench', c.port, LOOPBACK);
      await new Promise((resolve) => setTimeout(resolve, 50));
      b.send('HELLO bench', c.port, LOOPBACK);
      await got;
      return { ok: true };
    }
    case 'send': {
      received = 0;
      const start = performance.now();
      await paced(c.count, c.ratePerS, (i) => a.send(datagram(channels[i % channels.length]!, i, c.bytes, false), c.port, LOOPBACK));
      const ms = performance.now() - start;
      await new Promise((resolve) => setTimeout(resolve, c.drainMs));
      return { ok: true, sent: c.count, received, ms };
    }
    case 'rtt': {
      const rtts: number[] = [];
      await paced(c.count, c.ratePerS, (i) => {
        rttWaiters.set(i, (ms) => rtts.push(ms));
        a.send(datagram(channels[i % channels.length]!, i, c.bytes, true), c.port, LOOPBACK);
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      rttWaiters.clear();
      return { ok: true, rttsMs: rtts, sent: c.count, received: rtts.length };
    }
    case 'heartbeats': {
      // Each end sends a heartbeat-sized datagram every 1/perEndPerS s, as relayed sessions do.
      received = 0;
      const total = channels.length * 2 * c.perEndPerS * c.seconds;
      const start = performance.now();
      await paced(total, channels.length * 2 * c.perEndPerS, (i) => {
        const channel = channels[(i >> 1) % channels.length]!;
        (i % 2 === 0 ? a : b).send(datagram(channel, i, 90, false), c.port, LOOPBACK);
      });
      return { ok: true, sent: total, ms: performance.now() - start };
    }
  }
}

process.on('message', (c: RelayCommand) => {
  handle(c).then(
    (reply) => process.send!(reply),
    (err: unknown) => process.send!({ ok: false, error: (err as Error).message }),
  );
});
process.send!({ ok: true });
