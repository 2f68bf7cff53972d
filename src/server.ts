/**
 * The autoprox server: HTTP + WebSocket upgrade on /v0/ws/proxy, wired to the supervisor
 * actor. Every refusal happens before the upgrade, as an HTTP status and a JSON body.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Redis } from 'ioredis';
import { WebSocketServer, type WebSocket } from 'ws';
import { createActor, fromPromise, waitFor, type Actor, type InspectionEvent, type Observer } from 'xstate';
import { createSessionHost, type SessionActor } from '../machines/session-host.js';
import { sessionMachine } from '../machines/session.machine.js';
import { supervisorMachine } from '../machines/supervisor.machine.js';
import type { ResolvedTargets, ResolveInput } from '../machines/types.js';
import type { Grants } from './auth/claims.js';
import type { Verifier } from './auth/verifier.js';
import type { ServeConfig } from './config.js';
import { Refusal } from './errors.js';
import { admit, PROXY_PATH, type Admitted } from './http/admission.js';
import { clientAddress } from './http/client-ip.js';
import { refuseUpgrade } from './http/respond.js';
import { createRoutes } from './http/routes.js';
import { Metrics } from './observe/metrics.js';
import { SessionRegistry } from './observe/registry.js';
import { createBridgeActor } from './io/bridge.actor.js';
import { ownEndpointsOf } from './io/own-endpoints.js';
import { createResolveTargetsActor } from './io/resolve-targets.js';
import { LinkHandoff } from './io/handoff.js';
import type { PeerLink } from './io/peer-link.js';
import { SessionLink } from './io/session-link.js';
import { Switchboard } from './io/switchboard.js';
import { createUdpSocketActor } from './io/udp-socket.actor.js';
import type { PreauthGate } from './limits/preauth-gate.js';
import { RequestLimits } from './limits/request-limits.js';
import { MemorySessionCounter, RedisSessionCounter, type SessionCounter } from './limits/session-counter.js';
import type { Logger } from './log.js';
import type { Endpoint, Family } from './net/endpoint.js';
import { TargetPolicy } from './net/target-policy.js';

export { PROXY_PATH };
/** Messages above this close the WebSocket (1009); up to it, oversized ones get an error frame. */
export const WS_MIN_FRAME_LIMIT_BYTES = 64 * 1024;
/** How long close() waits for WebSocket close handshakes after the sessions ended (ms). */
export const WS_CLOSE_WAIT_MS = 1000;
/** Upgrade requests being checked (token, limits) at once, at most; more get 503. */
export const MAX_PENDING_UPGRADES = 1024;
/** A connection must send its request headers within this time (ms): half-open upgrades die. */
export const HEADERS_TIMEOUT_MS = 10_000;
/** How often connections are checked against that timeout (ms). */
export const CONNECTIONS_CHECK_MS = 1000;
/** Seconds a client is asked to wait when the server is full. */
const FULL_RETRY_S = 10;

export class StartError extends Error {
  readonly code = 'start_failed';
}

export interface ServerHandle {
  /** http://host:port */
  url: string;
  udp: Record<Family, number | null>;
  supervisor: Actor<typeof supervisorMachine>;
  switchboard: Switchboard<PeerLink>;
  preauth: PreauthGate;
  /** Live session links by session id. */
  links: ReadonlyMap<string, SessionLink>;
  /** Live sessions as the API, the page and the metrics see them. */
  sessions: SessionRegistry;
  metrics: Metrics;
  /** Graceful: stop accepting, close every session (CLOSED, 1001, CLOSE to the peer), close sockets. */
  close(): Promise<void>;
  /** Reads --tls-cert/--tls-key again for new connections (SIGHUP); open sessions are untouched. */
  reloadTls(): Promise<void>;
}

export interface ServerDeps {
  log: Logger;
  verifier: Verifier;
  /** Shares the per-IP and per-subject limits with other instances. */
  redis?: Redis | null;
  /** Targets the server's own UDP endpoints may be (the embedded-default demo). */
  allowSelfTarget?: boolean;
  /** For tests: a shorter HEADERS_TIMEOUT_MS. */
  headersTimeoutMs?: number;
  /** Receives every inspection event of the actor system (the Stately inspector, `--inspect`). */
  inspect?: Observer<InspectionEvent>;
  /**
   * For tests: replaces the whole resolver (DNS and target policy), to hold it or make it fail.
   * Default: the system resolver through the target policy.
   */
  resolveTargets?: (input: ResolveInput) => Promise<ResolvedTargets>;
}

/** The TLS certificate and key files, read now; a StartError names the flag that failed. */
async function readTls(config: ServeConfig): Promise<{ cert: Buffer; key: Buffer } | null> {
  if (config.tlsCert === null || config.tlsKey === null) return null;
  const read = async (path: string, flag: string) => {
    try {
      return await readFile(path);
    } catch (err) {
      throw new StartError(`--${flag}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  return { cert: await read(config.tlsCert, 'tls-cert'), key: await read(config.tlsKey, 'tls-key') };
}

export async function startServer(config: ServeConfig, deps: ServerDeps): Promise<ServerHandle> {
  const { log, verifier } = deps;
  const tls = await readTls(config);
  const redis = deps.redis ?? null;
  const switchboard = new Switchboard<PeerLink>({
    maxPayloadBytes: config.maxPayload,
    preauth: { perSourcePerS: config.udpPreauthPerS, totalPerS: config.udpPreauthTotalPerS },
    log,
  });
  const preauth = switchboard.preauth;
  const handoff = new LinkHandoff<SessionLink>();
  const links = new Map<string, SessionLink>();
  /** What each live session's token grants (its target rules narrow the policy). */
  const grantsById = new Map<string, Grants>();
  const policy = new TargetPolicy({
    allow: config.allowTargets,
    deny: config.denyTargets,
    allowSelf: config.allowSelfTarget || deps.allowSelfTarget === true,
    ownEndpoints: ownEndpointsOf(() => supervisor.getSnapshot().context.ports, { ipv4: config.udpBind4, ipv6: config.udpBind6 }),
  });
  const denyFor = (id: string) => {
    const targets = grantsById.get(id)?.targets ?? null;
    return (endpoint: Endpoint) => policy.deny(endpoint, targets);
  };

  const sessions = new SessionRegistry();
  const metrics = new Metrics({ sessions, plane: switchboard });

  /** Live session actors by session id (each the root of its own actor system). */
  const sessionActors = new Map<string, SessionActor>();
  const machine = supervisorMachine.provide({
    actors: {
      udpSocket: createUdpSocketActor(switchboard, log),
      sessionHost: createSessionHost(
        sessionMachine.provide({
          actors: {
            bridge: createBridgeActor(handoff),
            resolveTargets: deps.resolveTargets
              ? fromPromise<ResolvedTargets, ResolveInput>(({ input }) => deps.resolveTargets!(input))
              : createResolveTargetsActor(undefined, (sessionId) => denyFor(sessionId)),
          },
        }),
        { sessions: sessionActors, ...(deps.inspect ? { inspect: deps.inspect } : {}) },
      ),
    },
  });
  const supervisor = createActor(machine, {
    ...(deps.inspect ? { inspect: deps.inspect } : {}),
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
  supervisor.on('udp.dead', (e) => {
    metrics.udpSocketError(e.family);
    log.error(
      { family: e.family, code: e.code, err: e.message },
      `the UDP ${e.family} socket failed and is closed: sessions on ${e.family} can no longer send or receive, and /readyz says udp_failed; restart the server`,
    );
  });
  supervisor.on('session.failed', (e) => log.error({ session: e.actorId, err: String(e.error) }, 'session failed'));
  supervisor.start();
  const bound = await waitFor(supervisor, (s) => s.matches('running') || s.status !== 'active');
  if (!bound.matches('running')) {
    supervisor.stop();
    throw new StartError(bound.context.failure ?? 'the UDP sockets could not be bound');
  }

  const limits = new RequestLimits(config, redis, { log, storeError: (limit) => metrics.redisError(limit) });
  const sessionCounter: SessionCounter = redis
    ? new RedisSessionCounter(redis, log, undefined, (operation) => metrics.redisError(operation))
    : new MemorySessionCounter();
  let reserved = 0; // sessions open or being admitted
  let pendingUpgrades = 0;

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: Math.max(config.maxPayload * 2, WS_MIN_FRAME_LIMIT_BYTES),
    perMessageDeflate: false,
  });

  let draining = false;
  const reserve = (): (() => void) | Refusal => {
    if (draining || !supervisor.getSnapshot().matches('running')) {
      return new Refusal(503, 'unavailable', 'the server is shutting down', { 'Retry-After': '1' });
    }
    if (reserved >= config.maxSessions) {
      return new Refusal(503, 'server_full', `this server holds its maximum of ${config.maxSessions} sessions`, {
        'Retry-After': String(FULL_RETRY_S),
      });
    }
    reserved++;
    let released = false;
    return () => {
      if (!released) reserved--;
      released = true;
    };
  };

  const endSession = (admitted: Admitted) => {
    links.delete(admitted.id);
    grantsById.delete(admitted.id);
    admitted.release();
  };

  const openSession = (ws: WebSocket, socket: Duplex, admitted: Admitted) => {
    const { id, params, grants } = admitted;
    grantsById.set(id, grants);
    const link = new SessionLink({
      id,
      ws,
      socket,
      psk: params.key,
      maxPayload: config.maxPayload,
      switchboard,
      log,
      limits: config,
      deny: denyFor(id),
      // A token accepted within the clock tolerance keeps its session for that tolerance too.
      tokenExpiresAtMs: config.sessionOutlivesToken ? null : grants.expiresAtMs + config.jwtClockToleranceS * 1000,
    });
    links.set(id, link);
    ws.once('close', () => endSession(admitted));
    handoff.admit(link);
    log.info({ session: id, client: admitted.client, sub: grants.subject, hosts: params.hosts, port: params.port }, 'session opened');
    supervisor.send({ type: 'session.open', id, hosts: params.hosts, port: params.port });
    const actor = sessionActors.get(id);
    if (!actor || handoff.isPending(id)) {
      // The supervisor is no longer accepting (shutting down).
      handoff.release(link);
      ws.close(1001, 'server_shutdown');
      return;
    }
    sessions.add(id, { subject: grants.subject, client: admitted.client }, link, actor.getSnapshot());
    actor.subscribe({
      next: (snapshot) => sessions.update(id, snapshot),
      complete: () => sessions.remove(id),
      error: () => sessions.remove(id),
    });
  };

  const handleUpgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (pendingUpgrades >= MAX_PENDING_UPGRADES) {
      refuseUpgrade(socket, new Refusal(503, 'unavailable', 'too many upgrades in progress', { 'Retry-After': '1' }));
      return;
    }
    pendingUpgrades++;
    let admitted: Admitted | Refusal;
    try {
      const client = clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], config.trustProxy);
      admitted = await admit(req, client, randomUUID(), {
        verifier,
        limits,
        sessions: sessionCounter,
        policy,
        maxSessionsPerSubject: config.maxSessionsPerSubject,
        reserve,
      });
    } finally {
      pendingUpgrades--;
    }
    if (admitted instanceof Refusal) {
      metrics.refusal(admitted);
      refuseUpgrade(socket, admitted);
      return;
    }
    if (socket.destroyed) {
      admitted.release();
      return;
    }
    if (draining) {
      // Shutdown began while the token was being checked.
      admitted.release();
      refuseUpgrade(socket, new Refusal(503, 'unavailable', 'the server is shutting down', { 'Retry-After': '1' }));
      return;
    }
    const ok = admitted;
    let upgraded = false;
    // ws answers a handshake it refuses itself and never calls back: give the slots back then.
    socket.once('close', () => {
      if (!upgraded) ok.release();
    });
    wss.handleUpgrade(req, socket, head, (ws) => {
      upgraded = true;
      openSession(ws, socket, ok);
    });
  };

  const route = createRoutes({
    verifier,
    sessions,
    metrics,
    readiness: () => {
      const snapshot = supervisor.getSnapshot();
      if (draining) return 'draining';
      if (Object.keys(snapshot.context.socketFailures).length > 0) return 'udp_failed';
      if (snapshot.matches('running')) return 'ready';
      return snapshot.status === 'active' && !snapshot.matches('draining') ? 'starting' : 'draining';
    },
    onRefusal: (refusal) => metrics.refusal(refusal),
    clientOf: (req) => clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], config.trustProxy),
    authLimits: limits,
  });
  const handleRequest = (req: IncomingMessage, res: ServerResponse) => {
    route(req, res).catch((err: unknown) => {
      log.error({ err: (err as Error).message, path: (req.url ?? '/').split('?')[0] }, 'request failed');
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'internal', message: 'internal error' } }));
    });
  };

  const headersTimeout = deps.headersTimeoutMs ?? HEADERS_TIMEOUT_MS;
  const httpOptions = {
    headersTimeout,
    requestTimeout: headersTimeout,
    connectionsCheckingInterval: Math.min(CONNECTIONS_CHECK_MS, headersTimeout),
  };
  let server: Server | TlsServer;
  try {
    server = tls ? createTlsServer({ ...httpOptions, ...tls }, handleRequest) : createServer(httpOptions, handleRequest);
  } catch (err) {
    supervisor.stop();
    throw new StartError(`--tls-cert/--tls-key: ${(err as Error).message}`);
  }
  server.on('upgrade', (req, socket, head) => {
    handleUpgrade(req, socket, head).catch((err: unknown) => {
      log.error({ err: (err as Error).message }, 'upgrade failed');
      refuseUpgrade(socket, new Refusal(503, 'unavailable', 'internal error', { 'Retry-After': '1' }));
    });
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
    else socket.destroy();
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
    sessionCounter.close();
    const e = err as NodeJS.ErrnoException;
    throw new StartError(`HTTP listen on ${config.host}:${config.port} failed: ${e.code ?? ''} ${e.message}`);
  }

  const pingTimer = setInterval(() => {
    for (const link of links.values()) link.ping();
  }, config.wsPingMs);
  pingTimer.unref();

  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const { ports } = supervisor.getSnapshot().context;

  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= (async () => {
      // Draining: /readyz says so and new upgrades get 503, while existing sessions go on for
      // --drain-delay-ms (load balancers stop sending new clients); then every session closes.
      draining = true;
      if (config.drainDelayMs > 0) {
        log.info({ delayMs: config.drainDelayMs }, 'draining');
        await new Promise((resolve) => setTimeout(resolve, config.drainDelayMs));
      }
      clearInterval(pingTimer);
      supervisor.send({ type: 'shutdown' });
      await waitFor(supervisor, (s) => s.status !== 'active', { timeout: config.shutdownGraceMs + 1000 }).catch(() => {});
      supervisor.stop();
      await waitForClosed(wss, WS_CLOSE_WAIT_MS);
      for (const ws of wss.clients) ws.terminate();
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await serverClosed;
      sessionCounter.close();
    })();
    return closing;
  };

  const reloadTls = async () => {
    const fresh = await readTls(config);
    if (!fresh || !('setSecureContext' in server)) return;
    (server as TlsServer).setSecureContext(fresh); // throws on a bad pair: the old one stays
    log.info({ cert: config.tlsCert }, 'tls certificate reloaded');
  };

  return {
    url: `${tls ? 'https' : 'http'}://${host}:${address.port}`,
    udp: { ...ports },
    supervisor,
    switchboard,
    preauth,
    links,
    sessions,
    metrics,
    close,
    reloadTls,
  };
}

async function waitForClosed(wss: WebSocketServer, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (wss.clients.size > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
