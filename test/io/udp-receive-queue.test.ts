/**
 * The UDP receive queue of a server is kept short enough that what waits in it is still fresh:
 * the event loop reads at most 32 datagrams a turn (libuv), so when the server is short of CPU
 * the queue fills, and a heartbeat that sat in it longer than the peer timeout (with its echo on
 * the way back) proves nothing. Measured here on real sockets: the queue is filled while the
 * event loop is blocked, then what it held is counted (the rest the kernel dropped).
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { SERVE_OPTIONS } from '../../src/config.js';
import { Switchboard } from '../../src/io/switchboard.js';
import { createUdpSocketActor, UDP_RECV_BUFFER_BYTES } from '../../src/io/udp-socket.actor.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { captureLogs } from '../helpers/logs.js';

/** A heartbeat's size on the wire (bytes): header, 40-byte body, tag. */
const HEARTBEAT_BYTES = 104;
/**
 * Datagrams a starved server still reads per second: 32 a turn of the event loop, a turn every
 * 10 ms when the loop is saturated (bringing up sessions on a machine with no CPU to spare).
 */
const STARVED_READS_PER_S = 3_200;
/** More than any receive buffer granted here can hold. */
const FLOOD = 20_000;

const sockets: Socket[] = [];
const actors: Array<{ stop(): void }> = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
  for (const a of actors.splice(0)) a.stop();
});

describe('the UDP receive queue', () => {
  it('holds less than half a peer timeout of heartbeats at the read rate of a starved server', async () => {
    const { log } = captureLogs();
    const board = new Switchboard({ maxPayloadBytes: 1200, preauth: { perSourcePerS: 0, totalPerS: 0 }, log, clock: new FakeClock() });
    const bound = new Promise<number>((resolve, reject) => {
      const actor = createActor(createUdpSocketActor(board, log), { input: { family: 'ipv4', address: '127.0.0.1', port: 0 } });
      actors.push(actor);
      // The actor reports to its parent (none here): see the socket it attached instead.
      actor.start();
      const poll = setInterval(() => {
        const socket = board.socketOf('ipv4');
        if (!socket) return;
        clearInterval(poll);
        resolve(socket.address().port);
      }, 5);
      setTimeout(() => reject(new Error('not bound')), 2000).unref();
    });
    const port = await bound;
    const granted = board.socketOf('ipv4')!.getRecvBufferSize();
    // The kernel may grant less (net.core.rmem_max), and Linux reports twice what it grants.
    expect(granted).toBeLessThanOrEqual(2 * UDP_RECV_BUFFER_BYTES);

    const tx = createSocket('udp4');
    sockets.push(tx);
    await new Promise<void>((resolve) => tx.bind(0, '127.0.0.1', resolve));
    const datagram = Buffer.alloc(HEARTBEAT_BYTES);
    // The sends go out at once (an empty send queue), while this loop keeps the receiver from reading.
    for (let i = 0; i < FLOOD; i++) tx.send(datagram, port, '127.0.0.1');
    await new Promise((resolve) => setTimeout(resolve, 500));
    const held = board.datagramsIn;

    const peerTimeoutMs = SERVE_OPTIONS.find((o) => o.key === 'peerTimeoutMs')!.default as number;
    const halfPeerTimeoutS = peerTimeoutMs / 2 / 1000;
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThan(STARVED_READS_PER_S * halfPeerTimeoutS);
  });
});
