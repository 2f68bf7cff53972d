/**
 * A small STUN server for tests: a real UDP socket answering Binding requests with the
 * responder encoder of src/protocol/stun.ts. `mapAs` rewrites what it reports (to play a NAT
 * that maps per destination), `silent` stops answers, `onRequest` sees each request.
 */
import { createSocket, type Socket } from 'node:dgram';
import { encodeBindingSuccess, type StunEndpoint } from '../../src/protocol/stun.js';

export interface StunResponder {
  address: string;
  port: number;
  /** `host:port` / `[v6]:port`, as --stun takes it. */
  text: string;
  requests: number;
  silent: boolean;
  mapAs: ((source: StunEndpoint) => StunEndpoint) | null;
  onRequest: ((request: Buffer, source: StunEndpoint) => void) | null;
  socket: Socket;
  close(): Promise<void>;
}

export async function startStunResponder(address = '127.0.0.1', port = 0): Promise<StunResponder> {
  const family = address.includes(':') ? 'ipv6' : 'ipv4';
  const socket = createSocket({ type: family === 'ipv6' ? 'udp6' : 'udp4', ipv6Only: family === 'ipv6' });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => resolve());
  });
  const bound = socket.address().port;
  const responder: StunResponder = {
    address,
    port: bound,
    text: family === 'ipv6' ? `[${address}]:${bound}` : `${address}:${bound}`,
    requests: 0,
    silent: false,
    mapAs: null,
    onRequest: null,
    socket,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
  socket.on('message', (datagram, rinfo) => {
    responder.requests++;
    const source: StunEndpoint = { family, address: rinfo.address, port: rinfo.port };
    responder.onRequest?.(datagram, source);
    if (responder.silent) return;
    const answer = encodeBindingSuccess(datagram, responder.mapAs ? responder.mapAs(source) : source);
    if (answer) socket.send(answer, rinfo.port, rinfo.address);
  });
  return responder;
}
