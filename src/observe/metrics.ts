/**
 * Prometheus metrics (prom-client), from the registry and the switchboard at scrape time, plus
 * counters and histograms fed by events. Names are prefixed `autoprox_`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { FastHistogram } from './fast-histogram.js';
import type { Clock } from '../clock.js';
import type { Refusal } from '../errors.js';
import type { StunCounts } from '../io/stun-discovery.js';
import type { PlaneDrops } from '../io/switchboard.js';
import type { SessionRegistry } from './registry.js';

/** Seconds from WebSocket open to UDP_ESTABLISHED. */
const ESTABLISH_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const RTT_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
/** Totals computed for one series serve the others of the same scrape within this window (ms). */
const SCRAPE_WINDOW_MS = 100;
/** The state labels a session can be in, so every series exists from the start. */
export const SESSION_STATES = ['connected', 'udp_waiting.ipv6', 'udp_waiting.ipv4', 'udp_established', 'closed'];

/**
 * Node's own metrics (prom-client's default metrics), collected once per process: each
 * collectDefaultMetrics() starts an event-loop-delay monitor and a GC observer that nothing can
 * stop, so a process that starts and stops servers (tests, embedders) must not call it per server.
 */
let processMetrics: Registry | null = null;
function processRegistry(): Registry {
  if (!processMetrics) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics, prefix: 'autoprox_' });
  }
  return processMetrics;
}

export interface MetricsSources {
  sessions: SessionRegistry;
  clock: Clock;
  plane: { drops: PlaneDrops; datagramsIn: number; datagramsOut: number };
  /** Public endpoint discovery, on servers with --stun. */
  stun?: { counts: StunCounts };
}

export class Metrics {
  readonly registry = new Registry();
  readonly #transitions: Counter<'from' | 'to'>;
  readonly #refusals: Counter<'status' | 'code'>;
  readonly #authFailures: Counter<'code'>;
  readonly #established: Histogram;
  readonly #rtt: FastHistogram;
  readonly #redisErrors: Counter<'operation'>;
  readonly #udpSocketErrors: Counter<'family'>;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    // One scrape collects four series from the same totals (a pass over every session): add
    // them up once per scrape, not once per series.
    let totalsAt = -Infinity;
    let totalsCache = sources.sessions.totals();
    const totals = () => {
      const now = sources.clock.now();
      if (now - totalsAt > SCRAPE_WINDOW_MS) {
        totalsCache = sources.sessions.totals();
        totalsAt = now;
      }
      return totalsCache;
    };
    new Gauge({
      name: 'autoprox_sessions',
      help: 'Live sessions by state',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = sources.sessions.countByState();
        for (const state of new Set([...SESSION_STATES, ...counts.keys()])) this.set({ state }, counts.get(state) ?? 0);
      },
    });
    this.#transitions = new Counter({ name: 'autoprox_session_transitions_total', help: 'Session state changes by from and to state', labelNames: ['from', 'to'], registers });
    const totalsCounter = (name: string, help: string, pick: (t: ReturnType<SessionRegistry['totals']>) => { in: number; out: number }) =>
      new Counter({
        name,
        help,
        labelNames: ['direction'],
        registers,
        collect() {
          const v = pick(totals());
          this.reset();
          this.inc({ direction: 'in' }, v.in);
          this.inc({ direction: 'out' }, v.out);
        },
      });
    totalsCounter('autoprox_datagrams_total', 'Authenticated datagrams received (in) and datagrams sent (out) by sessions', (t) => ({ in: t.datagramsIn, out: t.datagramsOut }));
    totalsCounter('autoprox_messages_total', 'Peer DATA received (in) and client messages sent as DATA (out)', (t) => ({ in: t.messagesIn, out: t.messagesOut }));
    totalsCounter('autoprox_bytes_total', 'Application payload bytes from the peer (in) and from clients (out)', (t) => ({ in: t.bytesIn, out: t.bytesOut }));
    new Counter({
      name: 'autoprox_udp_datagrams_received_total',
      help: 'Every datagram the UDP sockets received, before any check',
      registers,
      collect() {
        this.reset();
        this.inc(sources.plane.datagramsIn);
      },
    });
    new Counter({
      name: 'autoprox_drops_total',
      help: 'Datagrams and messages dropped, by cause',
      labelNames: ['cause'],
      registers,
      collect() {
        this.reset();
        // Each datagram is dropped once, in the plane or by one session: the two add up.
        const drops: Record<string, number> = { ...sources.plane.drops };
        for (const [cause, n] of Object.entries(totals().drops)) drops[cause] = (drops[cause] ?? 0) + (n ?? 0);
        for (const [cause, n] of Object.entries(drops)) this.inc({ cause }, n);
      },
    });
    if (sources.stun) {
      const stun = sources.stun;
      new Counter({
        name: 'autoprox_stun_datagrams_total',
        help: 'STUN datagrams of the public endpoint discovery, by kind: request_sent, answer (matched an outstanding request), unsolicited, malformed, ignored (requests to this server)',
        labelNames: ['kind'],
        registers,
        collect() {
          this.reset();
          for (const [kind, n] of Object.entries(stun.counts)) this.inc({ kind }, n);
        },
      });
    }
    this.#refusals = new Counter({ name: 'autoprox_refusals_total', help: 'HTTP refusals before the upgrade, by status and code (429: rate limits)', labelNames: ['status', 'code'], registers });
    this.#authFailures = new Counter({ name: 'autoprox_auth_failures_total', help: 'Failed authentications, by code', labelNames: ['code'], registers });
    this.#established = new Histogram({ name: 'autoprox_time_to_established_seconds', help: 'Time from WebSocket open to the first UDP_ESTABLISHED', buckets: ESTABLISH_BUCKETS_S, registers });
    this.#rtt = new FastHistogram('autoprox_rtt_seconds', 'Round-trip times measured by heartbeats', RTT_BUCKETS_S, registers);
    this.#redisErrors = new Counter({ name: 'autoprox_redis_errors_total', help: 'Failed Redis operations of the shared limits, by operation (acquire, renew, release: session leases; upgrades, auth_failures: per-IP limits)', labelNames: ['operation'], registers });
    this.#udpSocketErrors = new Counter({ name: 'autoprox_udp_socket_errors_total', help: 'Errors of a bound UDP socket, by family (the socket is then closed and /readyz says udp_failed)', labelNames: ['family'], registers });

    sources.sessions.on((event) => {
      if (event.type === 'transition') this.#transitions.inc({ from: event.from, to: event.to });
      else if (event.type === 'established') this.#established.observe(event.afterMs / 1000);
    });
  }

  refusal(refusal: Refusal): void {
    this.#refusals.inc({ status: String(refusal.status), code: refusal.code });
    if (refusal.status === 401) this.#authFailures.inc({ code: refusal.code });
  }

  /** A round trip a heartbeat measured (ms). */
  rtt(rttMs: number): void {
    this.#rtt.observe(rttMs / 1000);
  }

  redisError(operation: string): void {
    this.#redisErrors.inc({ operation });
  }

  udpSocketError(family: string): void {
    this.#udpSocketErrors.inc({ family });
  }

  text(): Promise<string> {
    return Registry.merge([this.registry, processRegistry()]).metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
