/**
 * The autoprox server: its parts wired together, top to bottom as a WebSocket meets them.
 * The UDP plane and the supervisor (lifecycle.ts) come first, then the observers, the session
 * table, admission (upgrades.ts: every refusal before the 101) and the HTTP front end.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { InspectionEvent, Observer } from 'xstate';
import type { ResolvedTargets, ResolveInput } from '../machines/types.js';
import type { Endpoint, Family } from '../machines/endpoint.js';
import type { Verifier } from './auth/verifier.js';
import { systemClock, type Clock } from './clock.js';
import type { ServeConfig } from './config.js';
import { clientAddress } from './http/client-ip.js';
import { startFrontEnd } from './http/front-end.js';
import { createRoutes } from './http/routes.js';
import { createUpgrades } from './http/upgrades.js';
import { ownEndpointsOf } from './io/own-endpoints.js';
import type { PeerLink } from './io/peer-link.js';
import { HeartbeatWheel } from './io/heartbeat-wheel.js';
import { InputPacer } from './io/input-pacer.js';
import { RelayLinks } from './io/relay-links.js';
import { resolveRelays } from './io/relay-resolve.js';
import { admissionKey } from './protocol/relay-auth.js';
import { SessionLink } from './io/session-link.js';
import { StunDiscovery } from './io/stun-discovery.js';
import { Switchboard } from './io/switchboard.js';
import { drainAndStop, readinessOf, startSupervisor, type Supervisor } from './lifecycle.js';
import type { PreauthGate } from './limits/preauth-gate.js';
import { RequestLimits } from './limits/request-limits.js';
import { MemorySessionCounter, RedisSessionCounter, type SessionCounter } from './limits/session-counter.js';
import type { Logger } from './log.js';
import { Metrics } from './observe/metrics.js';
import { SessionRegistry } from './observe/registry.js';
import { TargetPolicy } from './net/target-policy.js';
import { SessionTable } from './session/table.js';

export { StartError } from './errors.js';
export { PROXY_PATH } from './http/admission.js';
export { MAX_PENDING_UPGRADES, WS_MIN_FRAME_LIMIT_BYTES } from './http/upgrades.js';
export { CONNECTIONS_CHECK_MS, HEADERS_TIMEOUT_MS } from './http/front-end.js';
/** How long close() waits for WebSocket close handshakes after the sessions ended (ms). */
export const WS_CLOSE_WAIT_MS = 1000;

export interface ServerHandle {
  /** http://host:port */
  url: string;
  udp: Record<Family, number | null>;
  supervisor: Supervisor;
  switchboard: Switchboard<PeerLink>;
  preauth: PreauthGate;
  /** Live session links by session id. */
  links: ReadonlyMap<string, SessionLink>;
  /** Live sessions as the API, the page and the metrics see them. */
  sessions: SessionRegistry;
  metrics: Metrics;
  /** Public endpoint discovery (STUN), or null without --stun and --relay. */
  discovery: StunDiscovery | null;
  /** The bindings at the relays, or null without --relay. */
  relays: RelayLinks | null;
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
  /** For tests: replaces the whole resolver (DNS and target policy), to hold it or make it fail. */
  resolveTargets?: (input: ResolveInput) => Promise<ResolvedTargets>;
  /** The clock of every part (default: the system's). */
  clock?: Clock;
}

export async function startServer(config: ServeConfig, deps: ServerDeps): Promise<ServerHandle> {
  const { log, verifier } = deps;
  const clock = deps.clock ?? systemClock;
  const preauth = { perSourcePerS: config.udpPreauthPerS, totalPerS: config.udpPreauthTotalPerS };
  const switchboard = new Switchboard<PeerLink>({ maxPayloadBytes: config.maxPayload, preauth, log, clock });
  const registry = new SessionRegistry(() => clock.wallMs());
  const pacer = new InputPacer(clock);
  const wheel = new HeartbeatWheel(clock, (err) => log.error({ err: String(err) }, 'a session\'s path timers failed: that session is no longer kept alive'));
  // Operator-configured relays, resolved once; they carry the sessions that cannot punch through.
  const relayEndpoints = await resolveRelays(config.relay);
  const relays =
    relayEndpoints.length > 0
      ? new RelayLinks({ relays: relayEndpoints, admissionKey: admissionKey(config.relaySecret!), sender: switchboard, clock, log })
      : null;
  switchboard.receiveRelayWith(relays);
  // From the peer sockets themselves: the endpoint found is the one peers must punch to. Every
  // relay answers STUN too.
  const stunServers = [...config.stun, ...config.relay.filter((r) => !config.stun.some((s) => s.text === r.text))];
  const relayText = config.relay[0]?.text ?? null;
  const discovery =
    stunServers.length > 0 ? new StunDiscovery({ servers: stunServers, sender: switchboard, clock, log, relay: () => relayText }) : null;
  switchboard.receiveStunWith(discovery);
  const metrics = new Metrics({ sessions: registry, plane: switchboard, clock, ...(discovery ? { stun: discovery } : {}) });
  const supervisor = await startSupervisor({ input: supervisorInput(config, relayEndpoints), clock, switchboard, log, metrics, ...optional(deps) });

  void discovery?.start();

  const policy = new TargetPolicy({
    allow: config.allowTargets,
    deny: config.denyTargets,
    allowSelf: config.allowSelfTarget || deps.allowSelfTarget === true,
    ownEndpoints: ownEndpointsOf(() => supervisor.getSnapshot().context.ports, { ipv4: config.udpBind4, ipv6: config.udpBind6 }, clock),
  });
  const limits = new RequestLimits(config, deps.redis ?? null, { log, storeError: (limit) => metrics.redisError(limit) });
  const sessionCounter: SessionCounter = deps.redis
    ? new RedisSessionCounter(deps.redis, log, undefined, (operation) => metrics.redisError(operation), clock)
    : new MemorySessionCounter();
  let draining = false;
  const table = new SessionTable({
    maxSessions: config.maxSessions,
    wsPingMs: config.wsPingMs,
    clock,
    registry,
    accepting: () => !draining && supervisor.getSnapshot().matches('running'),
    makeLink: (ws, socket, { id, params, grants }) =>
      new SessionLink({
        id, ws, socket, psk: params.key, maxPayload: config.maxPayload, switchboard, log, clock, limits: config,
        // A relay is the operator's, not the client's choice: no target rule (the token's neither) applies to it.
        deny: (endpoint) => (relays?.isRelay(endpoint) ? null : policy.deny(endpoint, grants.targets)),
        wheel, pacer, timing: config, onRtt: (rttMs) => metrics.rtt(rttMs), ...(discovery ? { endpoints: discovery } : {}),
        ...(relays ? { relays } : {}),
        // A token accepted within the clock tolerance keeps its session for that tolerance too.
        tokenExpiresAtMs: config.sessionOutlivesToken ? null : grants.expiresAtMs + config.jwtClockToleranceS * 1000,
      }),
    start: (session) => {
      log.info({ session: session.id, client: session.client, sub: session.subject, hosts: session.hosts, port: session.port }, 'session opened');
      supervisor.send({ type: 'session.open', request: session });
    },
  });

  const clientOf = (req: { socket: { remoteAddress?: string | undefined }; headers: Record<string, string | string[] | undefined> }) =>
    clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], config.trustProxy);
  const upgrades = createUpgrades({
    maxPayload: config.maxPayload, maxSessionsPerSubject: config.maxSessionsPerSubject, verifier, limits, sessionCounter, policy,
    reserve: () => table.reserve(), draining: () => draining, clientOf, newId: randomUUID,
    onRefusal: (refusal) => metrics.refusal(refusal),
    accept: (ws, socket, admitted) => table.open(ws, socket, admitted),
  });
  const route = createRoutes({
    verifier, clock, sessions: registry, metrics, authLimits: limits, clientOf,
    readiness: () => readinessOf(supervisor, draining),
    endpoints: () => discovery?.view() ?? { ipv4: null, ipv6: null, nat: 'unknown', relay: null, servers: [] },
    onRefusal: (refusal) => metrics.refusal(refusal),
  });
  const frontEnd = await startFrontEnd({
    host: config.host, port: config.port, tlsCert: config.tlsCert, tlsKey: config.tlsKey, log, route,
    upgrade: (req, socket, head) => upgrades.handle(req, socket, head),
    ...(deps.headersTimeoutMs !== undefined ? { headersTimeoutMs: deps.headersTimeoutMs } : {}),
  }).catch((err: unknown) => {
    discovery?.stop();
    relays?.stop();
    supervisor.stop();
    sessionCounter.close();
    pacer.close();
    throw err;
  });
  table.startPings();

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= drainAndStop({
      supervisor, clock, log, drainDelayMs: config.drainDelayMs, shutdownGraceMs: config.shutdownGraceMs,
      beginDraining: () => (draining = true),
      closeRest: async () => {
        discovery?.stop();
        relays?.stop();
        table.stopPings();
        await waitForClosed(upgrades.wss.clients, clock, WS_CLOSE_WAIT_MS);
        for (const ws of upgrades.wss.clients) ws.terminate();
        await frontEnd.close();
        sessionCounter.close();
        pacer.close();
      },
    }));

  return {
    url: frontEnd.url,
    udp: { ...supervisor.getSnapshot().context.ports },
    supervisor, switchboard, preauth: switchboard.preauth, links: table.links, sessions: registry, metrics, discovery, relays, close,
    reloadTls: () => frontEnd.reloadTls(),
  };
}

function supervisorInput(config: ServeConfig, relays: Endpoint[]) {
  return {
    udp: { port: config.udpPort, bind4: config.udpBind4, bind6: config.udpBind6, ipv6: config.ipv6, ipv6Required: config.ipv6Required },
    timing: {
      punchMs: config.punchMs,
      heartbeatMs: config.heartbeatMs,
      peerTimeoutMs: config.peerTimeoutMs,
      fallbackMs: config.fallbackMs,
      punchTimeoutMs: config.punchTimeoutMs,
      relayAfterMs: config.relayAfterMs,
    },
    relays,
    drainMs: config.shutdownGraceMs,
  };
}

function optional(deps: ServerDeps) {
  return { ...(deps.inspect ? { inspect: deps.inspect } : {}), ...(deps.resolveTargets ? { resolveTargets: deps.resolveTargets } : {}) };
}

async function waitForClosed(clients: Set<unknown>, clock: Clock, timeoutMs: number): Promise<void> {
  const deadline = clock.now() + timeoutMs;
  while (clients.size > 0 && clock.now() < deadline) await new Promise<void>((resolve) => clock.after(10, resolve));
}
