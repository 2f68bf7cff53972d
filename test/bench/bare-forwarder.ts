/**
 * The relay's baseline: the fastest UDP forwarder a person would write by hand with node:dgram.
 * No admission, no cookies, no limits, no metrics.
 *
 *   node --import tsx test/bench/bare-forwarder.ts
 *
 * A datagram `HELLO <id>` registers its source under `id`; two sources with the same id are a
 * pair, and from then on every datagram from one goes, unchanged, to the other. It gets the same
 * socket buffers and binding as the relay. It prints a `listening` JSON line like autoprox.
 */
import { createSocket, type SocketOptions } from 'node:dgram';

const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
const HELLO = 'HELLO ';

function literalLookup(address: string, family: number, callback: (err: Error | null, address: string, family: number) => void): void {
  callback(null, address, family);
}

const socket = createSocket({ type: 'udp4', lookup: literalLookup as SocketOptions['lookup'] });
const waiting = new Map<string, { address: string; port: number }>();
const routes = new Map<string, { address: string; port: number }>();

socket.on('message', (datagram, rinfo) => {
  const to = routes.get(`${rinfo.address}:${rinfo.port}`);
  if (to) {
    socket.send(datagram, to.port, to.address);
    return;
  }
  if (datagram.length < 64 && datagram.toString('latin1', 0, HELLO.length) === HELLO) {
    const id = datagram.toString('latin1', HELLO.length);
    const other = waiting.get(id);
    const me = { address: rinfo.address, port: rinfo.port };
    if (other && `${other.address}:${other.port}` !== `${me.address}:${me.port}`) {
      routes.set(`${me.address}:${me.port}`, other);
      routes.set(`${other.address}:${other.port}`, me);
      waiting.delete(id);
    } else {
      waiting.set(id, me);
    }
    socket.send(Buffer.from(`OK ${id}`), rinfo.port, rinfo.address);
  }
});

// Bound like the relay by default (`--udp-bind4 0.0.0.0`): the kernel picks the source address per send for both.
socket.bind(0, '0.0.0.0', () => {
  socket.setRecvBufferSize(SOCKET_BUFFER_BYTES);
  socket.setSendBufferSize(SOCKET_BUFFER_BYTES);
  process.stdout.write(`${JSON.stringify({ msg: 'listening', url: '', udp: { ipv4: socket.address().port } })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
