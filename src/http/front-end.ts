/**
 * The HTTP front end of a server: one HTTP (or HTTPS) server for the routes (health, readiness,
 * metrics, the sessions API and its stream, the live page) and the WebSocket upgrades, with the
 * timeouts that kill half-open connections, TLS files read at start and again on SIGHUP.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { Refusal, StartError } from '../errors.js';
import type { Logger } from '../log.js';
import { refuseUpgrade } from './respond.js';

/** A connection must send its request headers within this time (ms): half-open upgrades die. */
export const HEADERS_TIMEOUT_MS = 10_000;
/** How often connections are checked against that timeout (ms). */
export const CONNECTIONS_CHECK_MS = 1000;

export interface FrontEndOptions {
  host: string;
  port: number;
  tlsCert: string | null;
  tlsKey: string | null;
  headersTimeoutMs?: number;
  log: Logger;
  route: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => Promise<void>;
}

export interface FrontEnd {
  /** http(s)://host:port */
  url: string;
  /** Stops listening and ends every connection. */
  close(): Promise<void>;
  /** Reads --tls-cert/--tls-key again for new connections; a broken pair throws and the old one stays. */
  reloadTls(): Promise<void>;
}

/** The TLS certificate and key files, read now; a StartError names the flag that failed. */
async function readTls(options: Pick<FrontEndOptions, 'tlsCert' | 'tlsKey'>): Promise<{ cert: Buffer; key: Buffer } | null> {
  if (options.tlsCert === null || options.tlsKey === null) return null;
  const read = async (path: string, flag: string) => {
    try {
      return await readFile(path);
    } catch (err) {
      throw new StartError(`--${flag}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  return { cert: await read(options.tlsCert, 'tls-cert'), key: await read(options.tlsKey, 'tls-key') };
}

export async function startFrontEnd(options: FrontEndOptions): Promise<FrontEnd> {
  const { log } = options;
  const tls = await readTls(options);
  const handleRequest = (req: IncomingMessage, res: ServerResponse) => {
    options.route(req, res).catch((err: unknown) => {
      log.error({ err: (err as Error).message, path: (req.url ?? '/').split('?')[0] }, 'request failed');
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'internal', message: 'internal error' } }));
    });
  };
  const headersTimeout = options.headersTimeoutMs ?? HEADERS_TIMEOUT_MS;
  const httpOptions = { headersTimeout, requestTimeout: headersTimeout, connectionsCheckingInterval: Math.min(CONNECTIONS_CHECK_MS, headersTimeout) };
  let server: Server | TlsServer;
  try {
    server = tls ? createTlsServer({ ...httpOptions, ...tls }, handleRequest) : createServer(httpOptions, handleRequest);
  } catch (err) {
    throw new StartError(`--tls-cert/--tls-key: ${(err as Error).message}`);
  }
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    options.upgrade(req, socket, head).catch((err: unknown) => {
      log.error({ err: (err as Error).message }, 'upgrade failed');
      refuseUpgrade(socket, new Refusal(503, 'unavailable', 'internal error', { 'Retry-After': '1' }));
    });
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
    else socket.destroy();
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new StartError(`HTTP listen on ${options.host}:${options.port} failed: ${e.code ?? ''} ${e.message}`, e.code ? { listener: 'http', action: `HTTP listen on ${options.host}:${options.port}`, port: options.port, errno: e.code } : null);
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `${tls ? 'https' : 'http'}://${host}:${address.port}`,
    close: () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      return closed;
    },
    reloadTls: async () => {
      const fresh = await readTls(options);
      if (!fresh || !('setSecureContext' in server)) return;
      (server as TlsServer).setSecureContext(fresh); // throws on a bad pair: the old one stays
      log.info({ cert: options.tlsCert }, 'tls certificate reloaded');
    },
  };
}
