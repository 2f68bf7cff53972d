/**
 * The autoprox server: HTTP + WebSocket upgrade on /v0/ws/proxy, wired to the supervisor
 * actor. Every refusal happens before the upgrade, as an HTTP status and a JSON body.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { createActor, fromPromise, waitFor, type Actor } from 'xstate';
import { sessionMachine } from '../machines/session.machine.js';
import { supervisorMachine } from '../machines/supervisor.machine.js';
import type { ResolvedTargets, ResolveInput } from '../machines/types.js';
import { authenticate, extractToken, type Verifier } from './auth/token.js';
import type { ServeConfig } from './config.js';
import { Refusal } from './errors.js';
import { parseProxyParams, type ProxyParams } from './http/proxy-params.js';
import { refuseUpgrade, sendRefusal } from './http/respond.js';
import { createBridgeActor } from './io/bridge.actor.js';
import { createResolveTargetsActor } from './io/resolve-targets.js';
import { SessionLink } from './io/session-link.js';
import { Switchboard } from './io/switchboard.js';
import { createUdpSocketActor } from './io/udp-socket.actor.js';
import type { Logger } from './log.js';
import type { Family } from './net/endpoint.js';

export const PROXY_PATH = '/v0/ws/proxy';
/** WebSocket keepalive: a client that misses a ping for this long is dropped (ms). */
export const WS_PING_INTERVAL_MS = 30_000;
/** Messages above this close the WebSocket (1009); up to it, oversized ones get an error frame. */
export const WS_MIN_FRAME_LIMIT_BYTES = 64 * 1024;
/** How long close() waits for WebSocket close handshakes after the sessions ended (ms). */
export const WS_CLOSE_WAIT_MS = 1000;

export class StartError extends Error {
  readonly code = 'start_failed';
}

export interface ServerHandle {
  /** http://host:port */
  url: string;
  udp: Record<Family, number | null>;
  supervisor: Actor<typeof supervisorMachine>;
  switchboard: Switchboard<SessionLink>;
  /** Graceful: stop accepting, close every session (CLOSED, 1001, CLOSE to the peer), close sockets. */
  close(): Promise<void>;
}

export interface ServerDeps {
  log: Logger;
  verifier: Verifier;
  /**
   * Turns a client's `host` parameters into candidates. Default: the system resolver
   * (`resolveTargets` with getaddrinfo). Tests inject slow or failing resolvers here.
   */
  resolveTargets?: (input: ResolveInput) => Promise<ResolvedTargets>;
}

export async function startServer(config: ServeConfig, { log, verifier, resolveTargets }: ServerDeps): Promise<ServerHandle> {
  const switchboard = new Switchboard<SessionLink>(config.maxPayload);
  const machine = supervisorMachine.provide({
    actors: {
      udpSocket: createUdpSocketActor(switchboard, log),
      session: sessionMachine.provide({
        actors: {
          bridge: createBridgeActor(switchboard),
          resolveTargets: resolveTargets
            ? fromPromise<ResolvedTargets, ResolveInput>(({ input }) => resolveTargets(input))
            : createResolveTargetsActor(),
        },
      }),
    },
  });
  const supervisor = createActor(machine, {
    input: {
      udp: {
        port: config.udpPort,
        bind4: config.udpBind4,
        bind6: config.udpBind6,
        ipv6: config.ipv6,
        ipv6Required: config.ipv6Required,
      },
      timing: {
        punchMs: config.punchMs,
        heartbeatMs: config.heartbeatMs,
        peerTimeoutMs: config.peerTimeoutMs,
        fallbackMs: config.fallbackMs,
        punchTimeoutMs: config.punchTimeoutMs,
      },
      drainMs: config.shutdownGraceMs,
    },
  });
  supervisor.on('udp.unavailable', (e) => log.warn({ family: e.family, err: e.message }, 'no IPv6 UDP socket: serving IPv4 only'));
  supervisor.on('session.failed', (e) => log.error({ session: e.actorId, err: String(e.error) }, 'session failed'));
  supervisor.start();
  const bound = await waitFor(supervisor, (s) => s.matches('running') || s.status !== 'active');
  if (!bound.matches('running')) {
    supervisor.stop();
    throw new StartError(bound.context.failure ?? 'the UDP sockets could not be bound');
  }

  const links = new Set<SessionLink>();
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: Math.max(config.maxPayload * 2, WS_MIN_FRAME_LIMIT_BYTES),
    perMessageDeflate: false,
  });

  const openSession = (ws: WebSocket, params: ProxyParams, client: string) => {
    const id = randomUUID();
    const link = new SessionLink({ id, ws, psk: params.key, maxPayload: config.maxPayload, switchboard, log });
    links.add(link);
    ws.once('close', () => links.delete(link));
    switchboard.admit(link);
    log.info({ session: id, client, hosts: params.hosts, port: params.port }, 'session opened');
    supervisor.send({ type: 'session.open', id, hosts: params.hosts, port: params.port });
    if (switchboard.isPending(id)) {
      // The supervisor is no longer accepting (shutting down).
      switchboard.release(link);
      ws.close(1001, 'server_shutdown');
    }
  };

  const handleUpgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const refusal = await admit(req);
    if (refusal instanceof Refusal) {
      refuseUpgrade(socket, refusal);
      return;
    }
    if (socket.destroyed) return;
    const client = req.socket.remoteAddress ?? 'unknown';
    wss.handleUpgrade(req, socket, head, (ws) => openSession(ws, refusal, client));
  };

  const admit = async (req: IncomingMessage): Promise<ProxyParams | Refusal> => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://autoprox.invalid');
    } catch {
      return new Refusal(400, 'bad_parameter', 'the request URL cannot be parsed');
    }
    if (url.pathname !== PROXY_PATH) return new Refusal(404, 'not_found', `no such path: ${url.pathname}`);
    if (req.method !== 'GET') return new Refusal(405, 'method_not_allowed', 'use GET to open a session', { Allow: 'GET' });
    if (!supervisor.getSnapshot().matches('running')) return new Refusal(503, 'unavailable', 'the server is shutting down');
    const token = extractToken(req, url.searchParams);
    if (token instanceof Refusal) return token;
    const claims = await authenticate(verifier, token);
    if (claims instanceof Refusal) return claims;
    return parseProxyParams(url.searchParams);
  };

  const handleRequest = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === PROXY_PATH) {
      sendRefusal(res, new Refusal(426, 'upgrade_required', 'this endpoint speaks WebSocket only', { Upgrade: 'websocket' }));
      return;
    }
    sendRefusal(res, new Refusal(404, 'not_found', `no such path: ${path}`));
  };

  const server: Server = createServer(handleRequest);
  server.on('upgrade', (req, socket, head) => {
    handleUpgrade(req, socket, head).catch((err: unknown) => {
      log.error({ err: (err as Error).message }, 'upgrade failed');
      refuseUpgrade(socket, new Refusal(503, 'unavailable', 'internal error'));
    });
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    supervisor.stop();
    const e = err as NodeJS.ErrnoException;
    throw new StartError(`HTTP listen on ${config.host}:${config.port} failed: ${e.code ?? ''} ${e.message}`);
  }

  const pingTimer = setInterval(() => {
    for (const link of links) link.ping();
  }, WS_PING_INTERVAL_MS);
  pingTimer.unref();

  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const { ports } = supervisor.getSnapshot().context;

  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= (async () => {
      clearInterval(pingTimer);
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      supervisor.send({ type: 'shutdown' });
      await waitFor(supervisor, (s) => s.status !== 'active', { timeout: config.shutdownGraceMs + 1000 }).catch(() => {});
      supervisor.stop();
      await waitForClosed(wss, WS_CLOSE_WAIT_MS);
      for (const ws of wss.clients) ws.terminate();
      server.closeAllConnections();
      await serverClosed;
    })();
    return closing;
  };

  return { url: `http://${host}:${address.port}`, udp: { ...ports }, supervisor, switchboard, close };
}

async function waitForClosed(wss: WebSocketServer, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (wss.clients.size > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
