/**
 * A UDP socket actor: one per address family, shared by every session of the server.
 * Binds, reports `udp.bound` / `udp.failed` to the supervisor, and hands every datagram to
 * the switchboard, which routes it to its session. A bound socket that fails (an error event, or
 * closed by anything but the server) is closed and reported as `udp.error`: never left running
 * half-dead behind a log line. The IPv6 socket is IPv6-only, so the two
 * families never share a socket and IPv4 peers always arrive on the IPv4 socket.
 */
import { createSocket, type SocketOptions } from 'node:dgram';
import type { Logger } from 'pino';
import { fromCallback, type EventObject } from 'xstate';
import type { UdpSocketEvent, UdpSocketInput } from '../../machines/types.js';
import type { Endpoint, Family } from '../../machines/endpoint.js';
import type { Switchboard } from './switchboard.js';

/** Requested socket buffer sizes; the kernel caps them at net.core.rmem_max / wmem_max. */
export const UDP_RECV_BUFFER_BYTES = 4 * 1024 * 1024;
export const UDP_SEND_BUFFER_BYTES = 1024 * 1024;

/**
 * Every destination is an IP literal (names are resolved once per session, before punching),
 * so the per-send lookup answers at once: dgram's default defers each send by a tick through
 * dns.lookup, which costs time per datagram and loses a CLOSE sent just before close().
 */
export function literalLookup(address: string, family: number, callback: (err: Error | null, address: string, family: number) => void): void {
  callback(null, address, family);
}

export function createUdpSocketActor(switchboard: Switchboard, log: Logger) {
  return fromCallback<EventObject, UdpSocketInput>(({ input, sendBack }) => {
    const { family } = input;
    const socket = createSocket({
      type: family === 'ipv6' ? 'udp6' : 'udp4',
      ipv6Only: family === 'ipv6',
      lookup: literalLookup as SocketOptions['lookup'],
    });
    let bound = false;
    let closed = false;
    /** Closes the socket once, whoever asks (the server, or a failure). */
    const shut = () => {
      if (closed) return false;
      closed = true;
      switchboard.detach(family);
      try {
        socket.close();
      } catch {
        // Already closed (that may be how it failed), or its bind failed: nothing to close.
      }
      return true;
    };
    /** A bound socket that failed: closed, and the supervisor told (it says so on /readyz). */
    const dead = (code: string, message: string) => {
      if (shut()) sendBack({ type: 'udp.error', family, code, message } satisfies UdpSocketEvent);
    };

    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!bound) {
        sendBack({ type: 'udp.failed', family, code: err.code ?? 'EUNKNOWN', message: err.message } satisfies UdpSocketEvent);
        return;
      }
      dead(err.code ?? 'EUNKNOWN', err.message);
    });
    socket.on('close', () => {
      if (bound) dead('ECLOSED', 'the socket was closed by something other than the server');
    });
    socket.on('message', (datagram, rinfo) => switchboard.deliver(family, datagram, rinfo.address, rinfo.port));
    socket.bind({ port: input.port, address: input.address, exclusive: true }, () => {
      bound = true;
      try {
        socket.setRecvBufferSize(UDP_RECV_BUFFER_BYTES);
        socket.setSendBufferSize(UDP_SEND_BUFFER_BYTES);
      } catch (err) {
        log.warn({ family, err: (err as Error).message }, 'could not size udp socket buffers');
      }
      switchboard.attach(family, socket);
      sendBack({ type: 'udp.bound', family, port: socket.address().port } satisfies UdpSocketEvent);
    });

    return () => {
      shut();
    };
  });
}

/** A plain UDP socket on any free port of one family, outside the server (`autoprox netcheck`). */
export interface ProbeSocket {
  family: Family;
  port: number;
  /** False if the socket is closed. */
  send(to: Endpoint, pieces: Buffer[]): boolean;
  close(): void;
}

/** Binds a probe socket (IPv6: IPv6-only, like the server's); its error message if it cannot. */
export function bindProbeSocket(family: Family, deliver: (datagram: Buffer, address: string, port: number) => void): Promise<ProbeSocket | { error: string }> {
  const socket = createSocket({ type: family === 'ipv6' ? 'udp6' : 'udp4', ipv6Only: family === 'ipv6', lookup: literalLookup as SocketOptions['lookup'] });
  let open = false;
  return new Promise((resolve) => {
    socket.once('error', (err) => {
      if (open) return;
      socket.close();
      resolve({ error: err.message });
    });
    socket.on('message', (datagram, rinfo) => deliver(datagram, rinfo.address, rinfo.port));
    socket.bind({ port: 0, address: family === 'ipv6' ? '::' : '0.0.0.0' }, () => {
      open = true;
      socket.on('error', () => {}); // a send to an unreachable address: that server's answer times out
      resolve({
        family,
        port: socket.address().port,
        send(to, pieces) {
          if (!open) return false;
          socket.send(pieces, to.port, to.address);
          return true;
        },
        close() {
          if (!open) return;
          open = false;
          socket.close();
        },
      });
    });
  });
}
