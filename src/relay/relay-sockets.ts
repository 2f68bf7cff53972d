/**
 * The relay's UDP edge: one socket per family on the same port number where possible, each
 * handing what it receives to the Relay and sending what the Relay sends. Failing to bind the
 * IPv4 socket is fatal; IPv6 is given up with a warning when the host has none (as serve does).
 */
import { createSocket, type Socket, type SocketOptions } from 'node:dgram';
import { StartError } from '../errors.js';
import { literalLookup } from '../io/udp-socket.actor.js';
import type { Logger } from '../log.js';
import type { Family, Relay } from './relay.js';

/** Receive and send buffers asked for (bytes): bursts of many sessions at once. */
export const RELAY_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

export interface RelaySockets {
  ports: Record<Family, number | null>;
  close(): Promise<void>;
}

function bindOne(relay: Relay, family: Family, address: string, port: number, log: Logger): Promise<Socket> {
  const socket = createSocket({ type: family === 'ipv6' ? 'udp6' : 'udp4', ipv6Only: family === 'ipv6', lookup: literalLookup as SocketOptions['lookup'] });
  return new Promise((resolve, reject) => {
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.close();
      reject(new StartError(`UDP ${family} bind on ${address} port ${port} failed: ${err.code ?? err.message}${err.code === 'EADDRINUSE' ? ' (another program uses that port: give another --udp-port, or 0 for any free port)' : ''}`, { listener: 'udp', action: `UDP ${family} bind`, port, errno: err.code ?? 'EUNKNOWN' }));
    });
    socket.bind({ port, address, exclusive: true }, () => {
      socket.removeAllListeners('error');
      socket.on('error', (err) => log.error({ family, err: err.message }, 'relay udp socket error'));
      try {
        socket.setRecvBufferSize(RELAY_SOCKET_BUFFER_BYTES);
        socket.setSendBufferSize(RELAY_SOCKET_BUFFER_BYTES);
      } catch (err) {
        log.warn({ family, err: (err as Error).message }, 'could not size udp socket buffers');
      }
      socket.on('message', (datagram, rinfo) => relay.deliver(family, datagram, rinfo.address, rinfo.port));
      relay.attach(family, (_family, bytes, to, toPort) => socket.send(bytes, toPort, to));
      resolve(socket);
    });
  });
}

export async function bindRelaySockets(relay: Relay, options: { port: number; bind4: string; bind6: string; ipv6: boolean }, log: Logger): Promise<RelaySockets> {
  const sockets: Socket[] = [];
  const v4 = await bindOne(relay, 'ipv4', options.bind4, options.port, log);
  sockets.push(v4);
  const port4 = v4.address().port;
  let port6: number | null = null;
  if (options.ipv6) {
    try {
      const v6 = await bindOne(relay, 'ipv6', options.bind6, port4, log);
      sockets.push(v6);
      port6 = v6.address().port;
    } catch (err) {
      if (options.port !== 0 || !(err instanceof StartError) || err.bind?.errno !== 'EADDRINUSE') {
        log.warn({ err: (err as Error).message }, 'no IPv6 socket: the relay serves IPv4 only');
      } else {
        // The IPv4 port is free on IPv6 too, nearly always; if not, any port.
        const v6 = await bindOne(relay, 'ipv6', options.bind6, 0, log).catch(() => null);
        if (v6) {
          sockets.push(v6);
          port6 = v6.address().port;
        }
      }
    }
  }
  return {
    ports: { ipv4: port4, ipv6: port6 },
    close: async () => {
      relay.detach('ipv4');
      relay.detach('ipv6');
      await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}
