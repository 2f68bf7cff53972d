/**
 * `npm run bench`: autoprox against a bare ws+dgram relay (plaintext, and AES-256-GCM), in one
 * run, on this machine. See the Performance section of README.md for what each figure means.
 *
 *   npm run bench [-- --quick] [-- --out FILE]
 *
 * Topology, for each relay kind: client a -> relay A -> UDP -> relay B -> client b, every relay
 * and both client processes separate processes on loopback. The three relay pairs run side by
 * side and every load figure is measured for all three kinds back to back, so that the noise of
 * a shared machine hits them alike: compare the ratios, which are taken within one run.
 */
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { mintToken } from '../../src/auth/token.js';
import { SERVER_NODE_FLAGS } from '../../src/deploy/node-flags.js';
import type { Command, Counts, Health, OpenResult, Reply, SendResult, SessionSpec } from './client-protocol.js';
import { cpuOf, forkTs, killAll, killChildrenOnExit, rssOf, sleep, startListener, stop, type Listening } from './procs.js';
import { fmt, percentile, ratio, round, table } from './stats.js';
import { RELAY_FULL, RELAY_QUICK, relayPhase, relayReport, type RelayBenchResult } from './relay-phase.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const BARE_RELAY = `${HERE}/bare-relay.ts`;
const CLIENT = `${HERE}/client.ts`;
const DEFAULT_OUT = `${HERE}/results/latest.json`;

const SECRET = randomBytes(32).toString('base64url');
/** autoprox's defaults for these two (README): the bench runs at them. */
const PUNCH_MS = 200;
const HEARTBEAT_MS = 1000;
/**
 * Limits that would cap or distort a benchmark are switched off (0) or raised: per-session
 * message/byte/datagram rates, the pre-authentication budget per source address (every peer is
 * 127.0.0.1 here), the per-IP upgrade rate, and the session cap (the scale test holds 10,000).
 */
const LIMIT_FLAGS = [
  '--client-msgs-per-s', '0',
  '--client-bytes-per-s', '0',
  '--udp-out-per-s', '0',
  '--udp-preauth-per-s', '0',
  '--upgrades-per-ip-per-s', '0',
  '--max-sessions', '50000',
];
const AUTOPROX_FLAGS = ['--port', '0', '--udp-port', '0', `--jwt-secret=${SECRET}`, '--punch-ms', String(PUNCH_MS), '--heartbeat-ms', String(HEARTBEAT_MS), ...LIMIT_FLAGS];

/** A load run counts as loss-free when at most this fraction of its messages is lost. */
const LOSS_FREE_MAX_FRACTION = 1e-4;
/** ... and when the sender managed at least this fraction of the offered rate. */
const OFFERED_MIN_FRACTION = 0.97;
/** The loss-free search doubles the offered rate from the profile's rampStartRate at most this many times. */
const RAMP_MAX_STEPS = 6;
/** Receiver counts are polled this often after a run until they stop growing (ms). */
const DRAIN_POLL_MS = 100;
/** ... for this many polls in a row. */
const DRAIN_STABLE_POLLS = 2;
/** Longest wait for stragglers after a run (ms). */
const DRAIN_MAX_MS = 3_000;
/** A scale-test session not established within this time counts as failed (ms). */
const SCALE_SESSION_TIMEOUT_MS = 15_000;
/** No scale-test session is started later than this into its step (ms). */
const SCALE_STEP_DEADLINE_MS = 30_000;
/** Longest any single client command may take (ms). */
const COMMAND_TIMEOUT_MS = 180_000;

const KINDS = ['autoprox', 'plain', 'aead'] as const;
type Kind = (typeof KINDS)[number];
const KIND_LABEL: Record<Kind, string> = { autoprox: 'autoprox', plain: 'bare', aead: 'bare+AES' };

interface Profile {
  name: 'full' | 'quick';
  /** Each run of the loss-free search, and the common-rate CPU run (ms). */
  probeMs: number;
  /** The loss-free search starts at this offered rate (msgs/s). */
  rampStartRate: number;
  searchSteps: number;
  cpuRunMs: number;
  /** Round trips: offered rate (msgs/s, one session) and duration (ms). */
  rttRate: number;
  rttMs: number;
  establishSessions: number;
  establishConcurrency: number;
  scaleSessions: number;
  scaleConcurrency: number;
  /** After each scale step, wait this long, then measure idle CPU over idleMs. */
  scaleSettleMs: number;
  idleMs: number;
  /** No new scale step starts after this long (ms). */
  scaleBudgetMs: number;
  /** The scale test brings its sessions up in this many equal steps, measuring after each. */
  scaleSteps: number;
  /** autoprox's last step is held this long, every session watched (ms). */
  scaleHoldMs: number;
}

const FULL: Profile = {
  name: 'full',
  probeMs: 800,
  rampStartRate: 10_000,
  searchSteps: 3,
  cpuRunMs: 1500,
  rttRate: 2000,
  rttMs: 2500,
  establishSessions: 200,
  establishConcurrency: 10,
  scaleSessions: 10_000,
  scaleConcurrency: 200,
  scaleSettleMs: 3000,
  idleMs: 5000,
  scaleBudgetMs: 150_000,
  scaleSteps: 4,
  scaleHoldMs: 60_000,
};

const QUICK: Profile = {
  name: 'quick',
  probeMs: 300,
  rampStartRate: 40_000,
  searchSteps: 1,
  cpuRunMs: 500,
  rttRate: 2000,
  rttMs: 800,
  establishSessions: 50,
  establishConcurrency: 10,
  scaleSessions: 1000,
  scaleConcurrency: 100,
  scaleSettleMs: 1000,
  idleMs: 2000,
  scaleBudgetMs: 15_000,
  scaleSteps: 2,
  scaleHoldMs: 5_000,
};

const SIZES = [64, 1200] as const;
const SESSION_COUNTS = [1, 100] as const;

// ---------------------------------------------------------------- client processes

class ClientProc {
  readonly proc: ChildProcess;
  #next = 0;
  readonly #waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  constructor(readonly name: string) {
    this.proc = forkTs(CLIENT);
    this.proc.on('message', (reply: Reply) => {
      const waiter = this.#waiting.get(reply.id);
      if (!waiter) return;
      this.#waiting.delete(reply.id);
      clearTimeout(waiter.timer);
      if (reply.ok) waiter.resolve(reply.result);
      else waiter.reject(new Error(`client ${name}: ${reply.error}`));
    });
    this.proc.once('exit', (code) => {
      for (const waiter of this.#waiting.values()) waiter.reject(new Error(`client ${name} exited with ${code}`));
      this.#waiting.clear();
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  call<T>(command: Command): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`client ${this.name}: ${command.op} took over ${COMMAND_TIMEOUT_MS} ms`));
      }, COMMAND_TIMEOUT_MS);
      this.#waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.proc.send({ id, command });
    });
  }
}

// ---------------------------------------------------------------- relays

interface Relay {
  proc: ChildProcess;
  listening: Listening;
  pid: number;
}

interface RelayPair {
  kind: Kind;
  A: Relay;
  B: Relay;
}

/**
 * Every relay kind runs with the node flags autoprox's deployments use (src/deploy/node-flags.ts),
 * as they get its socket settings: the ratios measure autoprox's own work, not a flag.
 */
async function startRelay(kind: Kind): Promise<Relay> {
  const { proc, listening } =
    kind === 'autoprox'
      ? await startListener(process.execPath, [...SERVER_NODE_FLAGS, ...RELAY_NODE_ARGS, CLI, 'serve', ...AUTOPROX_FLAGS])
      : await startListener(process.execPath, [
          ...SERVER_NODE_FLAGS, ...RELAY_NODE_ARGS, '--import', 'tsx', BARE_RELAY, '--mode', kind,
          // The AES relay does autoprox's upkeep too: a sealed heartbeat out and one opened per session per interval.
          ...(kind === 'aead' ? ['--heartbeat-ms', String(HEARTBEAT_MS)] : []),
        ]);
  return { proc, listening, pid: proc.pid! };
}

async function startPair(kind: Kind): Promise<RelayPair> {
  const [A, B] = await Promise.all([startRelay(kind), startRelay(kind)]);
  return { kind, A, B };
}

let nextBareId = 1;

/** Session specs for `count` sessions a (on A, to B) and b (on B, to A), one key per session. */
async function specsFor(pair: RelayPair, count: number): Promise<{ a: SessionSpec[]; b: SessionSpec[] }> {
  const token = await mintToken(SECRET, 'bench', 4 * 3600);
  const a: SessionSpec[] = [];
  const b: SessionSpec[] = [];
  for (let i = 0; i < count; i++) {
    const key = randomBytes(32).toString('base64url');
    if (pair.kind === 'autoprox') {
      const url = (from: Relay, to: Relay) =>
        `${from.listening.url.replace(/^http/, 'ws')}/v0/ws/proxy?host=127.0.0.1&port=${to.listening.udp.ipv4}&key=${key}`;
      a.push({ url: url(pair.A, pair.B), token });
      b.push({ url: url(pair.B, pair.A), token });
    } else {
      const id = nextBareId++;
      const url = (from: Relay, to: Relay) => `${from.listening.url.replace(/^http/, 'ws')}/?id=${id}&peer=${to.listening.udp.ipv4}&key=${key}`;
      a.push({ url: url(pair.A, pair.B) });
      b.push({ url: url(pair.B, pair.A) });
    }
  }
  return { a, b };
}

/** Opens `count` session pairs as group `group` on both clients at once. */
async function openGroup(pair: RelayPair, group: string, count: number, concurrency: number, timeoutMs = 30_000): Promise<{ a: OpenResult; b: OpenResult; totalMs: number }> {
  const specs = await specsFor(pair, count);
  const started = performance.now();
  const [a, b] = await Promise.all([
    clientA.call<OpenResult>({ op: 'open', group, sessions: specs.a, concurrency, timeoutMs }),
    clientB.call<OpenResult>({ op: 'open', group, sessions: specs.b, concurrency, timeoutMs }),
  ]);
  if (a.failed + b.failed > 0) {
    throw new Error(`${pair.kind} ${group}: ${a.failed + b.failed} of ${2 * count} sessions failed: ${a.firstError ?? b.firstError}`);
  }
  return { a, b, totalMs: performance.now() - started };
}

/** Logs sessions that left UDP_ESTABLISHED or closed (they would distort what follows). */
async function checkHealth(group: string): Promise<number> {
  const [a, b] = await Promise.all([clientA.call<Health>({ op: 'health', group }), clientB.call<Health>({ op: 'health', group })]);
  if (a.lost + b.lost > 0 || a.errorFrames + b.errorFrames > 0) {
    log(`  ${group}: ${a.lost}+${b.lost} sessions lost, ${a.errorFrames}+${b.errorFrames} error frames: ${[...a.notes, ...b.notes].slice(0, 4).join(' | ')}`);
  }
  return a.lost + b.lost;
}

async function closeGroup(group: string): Promise<void> {
  await Promise.all([clientA.call({ op: 'close', group }), clientB.call({ op: 'close', group })]);
}

// ---------------------------------------------------------------- load runs

interface LoadRun {
  /** Offered rate (msgs/s). */
  offered: number;
  sent: number;
  received: number;
  sendMs: number;
  sentRate: number;
  receivedRate: number;
  lossFraction: number;
  /** CPU per message (us): relay A per message sent, relay B per message received. */
  cpuUsA: number;
  cpuUsB: number;
  /** CPU per message of the sending and receiving client processes (us). */
  cpuUsClientA: number;
  cpuUsClientB: number;
  /** CPU use over the run, % of one core. */
  cpuPctA: number;
  cpuPctB: number;
  cpuPctClientA: number;
  cpuPctClientB: number;
}

async function load(pair: RelayPair, group: string, size: number, rate: number, durationMs: number): Promise<LoadRun> {
  await clientB.call<Counts>({ op: 'counts', group, reset: true });
  const pids = [pair.A.pid, pair.B.pid, clientA.pid, clientB.pid];
  const before = pids.map(cpuOf);
  const sent = await clientA.call<SendResult>({ op: 'send', group, size, rate, durationMs, rtt: false, drainMs: 0 });
  let received = 0;
  const deadline = performance.now() + DRAIN_MAX_MS;
  for (let last = -1, stable = 0; performance.now() < deadline; last = received) {
    received = (await clientB.call<Counts>({ op: 'counts', group, reset: false })).messages;
    stable = received === last ? stable + 1 : 0;
    if (received >= sent.sent || stable >= DRAIN_STABLE_POLLS) break;
    await sleep(DRAIN_POLL_MS);
  }
  const after = pids.map(cpuOf);
  const cpuS = after.map((a, i) => a.cpuS - before[i]!.cpuS);
  const wallS = (after[0]!.at - before[0]!.at) / 1000;
  const perMsgUs = (s: number, n: number) => (n > 0 ? (s / n) * 1e6 : Number.NaN);
  return {
    offered: rate,
    sent: sent.sent,
    received,
    sendMs: sent.sendMs,
    sentRate: (sent.sent / sent.sendMs) * 1000,
    receivedRate: (received / sent.sendMs) * 1000,
    lossFraction: sent.sent > 0 ? Math.max(0, sent.sent - received) / sent.sent : 0,
    cpuUsA: perMsgUs(cpuS[0]!, sent.sent),
    cpuUsB: perMsgUs(cpuS[1]!, received),
    cpuUsClientA: perMsgUs(cpuS[2]!, sent.sent),
    cpuUsClientB: perMsgUs(cpuS[3]!, received),
    cpuPctA: (cpuS[0]! / wallS) * 100,
    cpuPctB: (cpuS[1]! / wallS) * 100,
    cpuPctClientA: (cpuS[2]! / wallS) * 100,
    cpuPctClientB: (cpuS[3]! / wallS) * 100,
  };
}

const lossFree = (run: LoadRun) => run.lossFraction <= LOSS_FREE_MAX_FRACTION && run.sentRate >= OFFERED_MIN_FRACTION * run.offered;

interface Search {
  /** The highest loss-free run (null: none, not even at the first rate). */
  best: LoadRun | null;
  /** The run at the highest offered rate used (the first that lost, or the ceiling). */
  highest: LoadRun;
  probes: LoadRun[];
}

/**
 * Loss-free throughput by a bounded search over paced runs: the offered rate doubles from
 * the profile's rampStartRate until a run loses messages (or the sender cannot reach the rate because the
 * relay pushes back), at most RAMP_MAX_STEPS times; then `searchSteps` bisections between the
 * best loss-free rate and the lowest failing one. A saturating sender is not used: the
 * kernel's TCP buffers would let it queue seconds of backlog, and the overload (with its
 * losses) would outlast the run by as much.
 */
async function searchLossFree(pair: RelayPair, group: string, size: number): Promise<Search> {
  const probes: LoadRun[] = [];
  let best: LoadRun | null = null;
  let failed: LoadRun | null = null;
  for (let step = 0, rate = profile.rampStartRate; step < RAMP_MAX_STEPS && !failed; step++, rate *= 2) {
    const run = await load(pair, group, size, rate, profile.probeMs);
    probes.push(run);
    if (lossFree(run)) best = run;
    else failed = run;
  }
  if (failed) {
    let lo = best?.offered ?? 0;
    let hi = failed.offered;
    for (let step = 0; step < profile.searchSteps; step++) {
      const rate = Math.round((lo + hi) / 2);
      const run = await load(pair, group, size, rate, profile.probeMs);
      probes.push(run);
      if (lossFree(run)) {
        lo = rate;
        if (!best || run.receivedRate > best.receivedRate) best = run;
      } else hi = rate;
    }
  }
  const highest = probes.reduce((a, b) => (b.offered > a.offered ? b : a));
  return { best, highest, probes };
}

// ---------------------------------------------------------------- phases

interface ThroughputResult {
  size: number;
  sessions: number;
  byKind: Record<Kind, Search>;
  /** Sessions (both sides) that left UDP_ESTABLISHED during the search; the group was opened again. */
  sessionsLost: Record<Kind, number>;
  /** The common offered rate of the CPU comparison (msgs/s): 80 % of the lowest loss-free rate. */
  cpuRate: number;
  cpuByKind: Record<Kind, LoadRun>;
}

async function throughputPhase(pairs: Record<Kind, RelayPair>): Promise<ThroughputResult[]> {
  const out: ThroughputResult[] = [];
  for (const [size, sessions] of configs) {
    {
      const byKind = {} as Record<Kind, Search>;
      const sessionsLost = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number>;
      for (const kind of KINDS) {
        byKind[kind] = await searchLossFree(pairs[kind], `${kind}:${sessions}`, size);
        const lost = await checkHealth(`${kind}:${sessions}`);
        if (lost > 0) {
          // The overload of the search's highest rates cost paths (README "Overload"): reported in
          // the loss table, and the group opened again so that the figures after it are measured.
          sessionsLost[kind] = lost;
          await closeGroup(`${kind}:${sessions}`);
          await openGroup(pairs[kind], `${kind}:${sessions}`, sessions, 20);
        }
        const s = byKind[kind];
        log(
          `  ${size} B x ${sessions}: ${KIND_LABEL[kind]}: loss-free ${fmt(s.best?.receivedRate ?? 0)} msgs/s; ` +
            `at ${fmt(s.highest.offered)} offered: ${fmt(s.highest.receivedRate)} received, loss ${fmt(s.highest.lossFraction * 100, 3)} %; ` +
            `${s.probes.length} runs`,
        );
      }
      const lowest = Math.min(...KINDS.map((k) => byKind[k].best?.receivedRate ?? profile.rampStartRate / 2));
      const cpuRate = Math.max(1000, Math.round((0.8 * lowest) / 1000) * 1000);
      const cpuByKind = {} as Record<Kind, LoadRun>;
      for (const kind of KINDS) cpuByKind[kind] = await load(pairs[kind], `${kind}:${sessions}`, size, cpuRate, profile.cpuRunMs);
      log(
        `  ${size} B x ${sessions}: CPU/msg at ${fmt(cpuRate)} msgs/s (A/B us): ` +
          KINDS.map((k) => `${KIND_LABEL[k]} ${fmt(cpuByKind[k].cpuUsA)}/${fmt(cpuByKind[k].cpuUsB)}`).join(', '),
      );
      out.push({ size, sessions, byKind, sessionsLost, cpuRate, cpuByKind });
    }
  }
  return out;
}

interface RttFigures {
  samples: number;
  sent: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
}

interface LatencyResult {
  size: number;
  rate: number;
  byKind: Record<Kind, RttFigures>;
}

async function latencyPhase(pairs: Record<Kind, RelayPair>): Promise<LatencyResult[]> {
  const out: LatencyResult[] = [];
  for (const size of SIZES) {
    const byKind = {} as Record<Kind, RttFigures>;
    for (const kind of KINDS) {
      const group = `${kind}:1`;
      await clientB.call({ op: 'echo', group, on: true });
      const result = await clientA.call<SendResult>({ op: 'send', group, size, rate: profile.rttRate, durationMs: profile.rttMs, rtt: true, drainMs: 300 });
      await clientB.call({ op: 'echo', group, on: false });
      const us = result.rttMs.map((ms) => ms * 1000);
      byKind[kind] = { samples: us.length, sent: result.sent, p50Us: percentile(us, 50), p99Us: percentile(us, 99), p999Us: percentile(us, 99.9) };
      log(`  RTT ${size} B ${KIND_LABEL[kind]}: p50 ${fmt(byKind[kind].p50Us)} us, p99 ${fmt(byKind[kind].p99Us)} us, p99.9 ${fmt(byKind[kind].p999Us)} us (${us.length}/${result.sent})`);
    }
    out.push({ size, rate: profile.rttRate, byKind });
  }
  return out;
}

interface EstablishResult {
  sessions: number;
  concurrency: number;
  punchMs: number;
  /** Every WebSocket (both sides), from its `open` to its UDP_ESTABLISHED frame (ms). */
  samples: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

async function establishPhase(pair: RelayPair): Promise<EstablishResult> {
  const opened = await openGroup(pair, 'establish', profile.establishSessions, profile.establishConcurrency);
  await closeGroup('establish');
  const all = [...opened.a.establishMs, ...opened.b.establishMs];
  return {
    sessions: profile.establishSessions,
    concurrency: profile.establishConcurrency,
    punchMs: PUNCH_MS,
    samples: all.length,
    p50Ms: percentile(all, 50),
    p99Ms: percentile(all, 99),
    maxMs: Math.max(...all),
  };
}

interface PerServer<T> {
  A: T;
  B: T;
}

/** One step of the scale test: this many sessions established on each server, then idle. */
interface ScaleStep {
  /** Sessions asked for, and established on both sides, so far. */
  target: number;
  sessions: number;
  /** Time to bring this step's new sessions up (ms). */
  bringUpMs: number;
  failed: number;
  firstError: string | null;
  rssBytes: PerServer<number>;
  rssPerSessionBytes: PerServer<number>;
  /** V8 heap in use per session (from /metrics): the JavaScript share of the RSS. */
  heapUsedPerSessionBytes: PerServer<number>;
  /** CPU over the idle window, % of one core, and per session per second (us). */
  idleCpuPct: PerServer<number>;
  idleCpuUsPerSessionS: PerServer<number>;
  /** Datagrams each server received and sent per second in the idle window (heartbeats). */
  idleDatagramsPerS: PerServer<{ in: number; out: number }>;
  /** Sessions that left UDP_ESTABLISHED or closed, so far. */
  lost: number;
}

interface ScaleRun {
  kind: Kind;
  rssEmptyBytes: PerServer<number>;
  steps: ScaleStep[];
  /** The last step: the most sessions held. */
  last: ScaleStep;
  /** All steps' bring-up times added: from 0 to `last.sessions` sessions (ms). */
  bringUpMs: number;
  /** autoprox: the last step held for this long (ms), and the sessions lost meanwhile. */
  heldMs: number;
  lostWhileHeld: number;
}

interface ScaleResult {
  target: number;
  heartbeatMs: number;
  idleWindowMs: number;
  budgetMs: number;
  byKind: { autoprox: ScaleRun; aead: ScaleRun };
}

/** Datagrams received and sent so far by an autoprox server, and its V8 heap in use, from its /metrics. */
async function metricsOf(relay: Relay): Promise<{ in: number; out: number; heapUsed: number }> {
  const text = await (await fetch(`${relay.listening.url}/metrics`)).text();
  const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN);
  return {
    in: value(/^autoprox_udp_datagrams_received_total (\S+)$/m),
    out: value(/^autoprox_datagrams_total\{direction="out"\} (\S+)$/m),
    heapUsed: value(/^autoprox_nodejs_heap_size_used_bytes (\S+)$/m),
  };
}

const NO_METRICS = { in: Number.NaN, out: Number.NaN, heapUsed: Number.NaN };

/** Sessions lost so far in these groups (left UDP_ESTABLISHED or closed). */
async function lostIn(groups: string[]): Promise<number> {
  let lost = 0;
  for (const g of groups) {
    const [ha, hb] = await Promise.all([clientA.call<Health>({ op: 'health', group: g }), clientB.call<Health>({ op: 'health', group: g })]);
    lost += ha.lost + hb.lost;
  }
  return lost;
}

/**
 * Brings sessions up in profile.scaleSteps steps to `scaleSessions` on each server of `kind`,
 * and after each step measures the idle servers (heartbeats only): RSS, heap, CPU. Stops early
 * when a step cannot be brought up or the time budget is spent, and reports how far it got.
 * autoprox's last step is then held for profile.scaleHoldMs with every session watched.
 */
async function scaleRun(kind: 'autoprox' | 'aead'): Promise<ScaleRun> {
  const pair = await startPair(kind);
  const groups: string[] = [];
  const metrics = (relay: Relay) => (kind === 'autoprox' ? metricsOf(relay) : Promise.resolve(NO_METRICS));
  try {
    await sleep(1000);
    const rssEmpty = { A: rssOf(pair.A.pid), B: rssOf(pair.B.pid) };
    const empty = await Promise.all([metrics(pair.A), metrics(pair.B)]);
    const started = performance.now();
    const steps: ScaleStep[] = [];
    let sessions = 0;
    for (let i = 1; i <= profile.scaleSteps; i++) {
      const target = Math.round((profile.scaleSessions * i) / profile.scaleSteps);
      const group = `scale:${kind}:${i}`;
      groups.push(group);
      const specs = await specsFor(pair, target - sessions);
      const stepStarted = performance.now();
      const [a, b] = await Promise.all([
        clientA.call<OpenResult>({ op: 'open', group, sessions: specs.a, concurrency: profile.scaleConcurrency, timeoutMs: SCALE_SESSION_TIMEOUT_MS, deadlineMs: SCALE_STEP_DEADLINE_MS }),
        clientB.call<OpenResult>({ op: 'open', group, sessions: specs.b, concurrency: profile.scaleConcurrency, timeoutMs: SCALE_SESSION_TIMEOUT_MS, deadlineMs: SCALE_STEP_DEADLINE_MS }),
      ]);
      const bringUpMs = performance.now() - stepStarted;
      const failed = a.failed + b.failed;
      sessions += Math.min(a.establishMs.length, b.establishMs.length);
      log(`  ${KIND_LABEL[kind]}: ${fmt(sessions)} sessions up (${fmt(bringUpMs / 1000)} s for this step${failed > 0 ? `, ${failed} failed: ${a.firstError ?? b.firstError}` : ''})`);
      await sleep(profile.scaleSettleMs);
      const m0 = await Promise.all([metrics(pair.A), metrics(pair.B)]);
      const c0 = [cpuOf(pair.A.pid), cpuOf(pair.B.pid)];
      await sleep(profile.idleMs);
      const c1 = [cpuOf(pair.A.pid), cpuOf(pair.B.pid)];
      const m1 = await Promise.all([metrics(pair.A), metrics(pair.B)]);
      const rss = { A: rssOf(pair.A.pid), B: rssOf(pair.B.pid) };
      const lost = await lostIn(groups);
      const pct = (j: number) => ((c1[j]!.cpuS - c0[j]!.cpuS) / ((c1[j]!.at - c0[j]!.at) / 1000)) * 100;
      const rate = (j: number) => ({ in: ((m1[j]!.in - m0[j]!.in) * 1000) / profile.idleMs, out: ((m1[j]!.out - m0[j]!.out) * 1000) / profile.idleMs });
      const per = (value: number) => (sessions > 0 ? value / sessions : Number.NaN);
      const step: ScaleStep = {
        target,
        sessions,
        bringUpMs,
        failed,
        firstError: a.firstError ?? b.firstError,
        rssBytes: rss,
        rssPerSessionBytes: { A: per(rss.A - rssEmpty.A), B: per(rss.B - rssEmpty.B) },
        heapUsedPerSessionBytes: { A: per(m1[0]!.heapUsed - empty[0]!.heapUsed), B: per(m1[1]!.heapUsed - empty[1]!.heapUsed) },
        idleCpuPct: { A: pct(0), B: pct(1) },
        idleCpuUsPerSessionS: { A: per(pct(0) * 1e4), B: per(pct(1) * 1e4) },
        idleDatagramsPerS: { A: rate(0), B: rate(1) },
        lost,
      };
      steps.push(step);
      log(
        `  ${KIND_LABEL[kind]} idle at ${fmt(sessions)}: CPU ${fmt(step.idleCpuPct.A, 1)} % / ${fmt(step.idleCpuPct.B, 1)} %, ` +
          `RSS ${fmt(step.rssPerSessionBytes.A / 1024, 1)} / ${fmt(step.rssPerSessionBytes.B / 1024, 1)} KB per session, lost ${lost}`,
      );
      if (failed > 0) break;
      if (performance.now() - started > profile.scaleBudgetMs && i < profile.scaleSteps) {
        log(`  stopping at ${fmt(sessions)} sessions: the scale test's budget of ${profile.scaleBudgetMs / 1000} s is spent`);
        break;
      }
    }
    const last = steps.at(-1)!;
    let heldMs = 0;
    let lostWhileHeld = 0;
    if (kind === 'autoprox' && last.failed === 0) {
      const holdStarted = performance.now();
      await sleep(profile.scaleHoldMs);
      heldMs = performance.now() - holdStarted;
      lostWhileHeld = (await lostIn(groups)) - last.lost;
      log(`  autoprox held ${fmt(last.sessions)} sessions for ${fmt(heldMs / 1000)} s: ${lostWhileHeld} lost`);
    }
    return { kind, rssEmptyBytes: rssEmpty, steps, last, bringUpMs: steps.reduce((sum, st) => sum + st.bringUpMs, 0), heldMs, lostWhileHeld };
  } finally {
    for (const g of groups) await closeGroup(g).catch(() => {});
    await Promise.all([stop(pair.A.proc), stop(pair.B.proc)]);
  }
}

async function scalePhase(): Promise<ScaleResult> {
  const autoprox = await scaleRun('autoprox');
  const aead = await scaleRun('aead');
  return { target: profile.scaleSessions, heartbeatMs: HEARTBEAT_MS, idleWindowMs: profile.idleMs, budgetMs: profile.scaleBudgetMs, byKind: { autoprox, aead } };
}

// ---------------------------------------------------------------- report

interface Target {
  name: string;
  limit: string;
  measured: string;
  met: boolean;
}

function targets({ throughput, latency, establish, scale, relay }: BenchResult): Target[] {
  const out: Target[] = [];
  if (relay) {
    out.push({ name: 'relay CPU per forwarded datagram vs a bare node:dgram forwarder', limit: '<= 1.3x', measured: `${fmt(relay.cpuRatio)}x`, met: relay.cpuRatio <= 1.3 });
    out.push({ name: `one relay holding ${fmt(relay.pairs.count)} relayed pairs`, limit: 'all paired within 10 s', measured: `paired in ${fmt(relay.pairs.pairMs / 1000, 1)} s`, met: relay.pairs.pairMs <= 10_000 });
  }
  for (const t of throughput) {
    const c = t.cpuByKind;
    const worst = Math.max(ratio(c.autoprox.cpuUsA, c.aead.cpuUsA), ratio(c.autoprox.cpuUsB, c.aead.cpuUsB));
    out.push({
      name: `CPU/msg ${t.size} B x ${t.sessions}, each server vs bare+AES`,
      limit: '<= 1.0x (stretch 0.8x)',
      measured: `A ${fmt(ratio(c.autoprox.cpuUsA, c.aead.cpuUsA))}x, B ${fmt(ratio(c.autoprox.cpuUsB, c.aead.cpuUsB))}x`,
      met: worst <= 1.0,
    });
  }
  for (const t of throughput) {
    const r = ratio(t.byKind.autoprox.best?.receivedRate ?? 0, t.byKind.aead.best?.receivedRate ?? 0);
    out.push({ name: `loss-free throughput ${t.size} B x ${t.sessions} vs bare+AES`, limit: '>= 0.9x', measured: `${fmt(r)}x`, met: r >= 0.9 });
  }
  for (const l of latency) {
    const p50 = ratio(l.byKind.autoprox.p50Us, l.byKind.aead.p50Us);
    const p99 = ratio(l.byKind.autoprox.p99Us, l.byKind.aead.p99Us);
    out.push({ name: `RTT p50 ${l.size} B vs bare+AES`, limit: '<= 1.2x', measured: `${fmt(p50)}x`, met: p50 <= 1.2 });
    out.push({ name: `RTT p99 ${l.size} B vs bare+AES`, limit: '<= 1.5x', measured: `${fmt(p99)}x`, met: p99 <= 1.5 });
    const p999 = ratio(l.byKind.autoprox.p999Us, l.byKind.aead.p999Us);
    out.push({ name: `RTT p99.9 ${l.size} B vs bare+AES`, limit: 'reported', measured: `${fmt(p999)}x`, met: true });
  }
  if (scale) {
    const { autoprox, aead } = scale.byKind;
    const a = autoprox.last;
    const b = aead.last;
    const sameCount = a.sessions === b.sessions;
    const worst = (v: PerServer<number>) => Math.max(v.A, v.B);
    const upkeep = ratio(worst(a.idleCpuUsPerSessionS), worst(b.idleCpuUsPerSessionS));
    const rss = ratio(worst(a.rssPerSessionBytes), worst(b.rssPerSessionBytes));
    const at = ` at ${fmt(a.sessions)} sessions${sameCount ? '' : ` (bare+AES: ${fmt(b.sessions)})`}`;
    out.push({ name: 'idle upkeep per session vs bare+AES with heartbeats', limit: '<= 1.0x', measured: `${fmt(upkeep)}x${at}`, met: sameCount && upkeep <= 1.0 });
    out.push({ name: 'RSS per session vs bare+AES with heartbeats', limit: '<= 1.5x', measured: `${fmt(rss)}x${at}`, met: sameCount && rss <= 1.5 });
    const held = a.sessions >= scale.target && a.lost === 0 && autoprox.lostWhileHeld === 0 && autoprox.heldMs >= profile.scaleHoldMs;
    out.push({
      name: `${fmt(scale.target)} sessions held ${fmt(profile.scaleHoldMs / 1000)} s, none lost`,
      limit: 'all up, none lost',
      measured: `${fmt(a.sessions)} up in ${fmt(autoprox.bringUpMs / 1000, 1)} s, ${a.lost + autoprox.lostWhileHeld} lost`,
      met: held,
    });
  }
  if (establish) out.push({
    name: 'UDP_ESTABLISHED p99 on loopback',
    limit: `< ${2 * PUNCH_MS} ms (2 punch intervals)`,
    measured: `${fmt(establish.p99Ms)} ms`,
    met: establish.p99Ms < 2 * PUNCH_MS,
  });
  return out;
}

function report(result: BenchResult): string {
  const { throughput, latency, establish, scale } = result;
  const parts: string[] = [];
  const kindCols = KINDS.map((k) => KIND_LABEL[k]);
  const ratioCols = ['/bare', '/AES'];
  const withRatios = (label: string, values: Record<Kind, number>, digits = 2) => [
    label,
    ...KINDS.map((k) => fmt(values[k], digits)),
    fmt(ratio(values.autoprox, values.plain)),
    fmt(ratio(values.autoprox, values.aead)),
  ];

  const rows: string[][] = [];
  for (const t of throughput) {
    const tag = `${t.size} B x ${t.sessions}`;
    const best = (k: Kind) => t.byKind[k].best?.receivedRate ?? 0;
    rows.push(withRatios(`${tag}  loss-free msgs/s`, { autoprox: best('autoprox'), plain: best('plain'), aead: best('aead') }));
    rows.push(withRatios(`${tag}  loss-free MB/s`, { autoprox: (best('autoprox') * t.size) / 1e6, plain: (best('plain') * t.size) / 1e6, aead: (best('aead') * t.size) / 1e6 }));
    const top = (k: Kind) => t.byKind[k].highest.receivedRate;
    rows.push(withRatios(`${tag}  received at highest offered, msgs/s`, { autoprox: top('autoprox'), plain: top('plain'), aead: top('aead') }));
  }
  if (throughput.length > 0) parts.push(`(1) one-way throughput (loss-free: loss <= ${LOSS_FREE_MAX_FRACTION * 100} %)\n${table(['', ...kindCols, ...ratioCols], rows)}`);

  const latRows: string[][] = [];
  for (const l of latency) {
    for (const [label, key] of [['p50', 'p50Us'], ['p99', 'p99Us'], ['p99.9', 'p999Us']] as const) {
      latRows.push(withRatios(`${l.size} B  RTT ${label} us`, { autoprox: l.byKind.autoprox[key], plain: l.byKind.plain[key], aead: l.byKind.aead[key] }, 0));
    }
  }
  if (latency.length > 0) parts.push(`(2) round trip a -> b -> a at ${fmt(profile.rttRate)} msgs/s, one session\n${table(['', ...kindCols, ...ratioCols], latRows)}`);

  if (establish) parts.push(
    `(3) WebSocket open -> UDP_ESTABLISHED (autoprox, ${establish.sessions} sessions, both sides, ${establish.concurrency} pairs at a time, punch ${establish.punchMs} ms)\n` +
      table(['', 'ms'], [['p50', fmt(establish.p50Ms)], ['p99', fmt(establish.p99Ms)], ['max', fmt(establish.maxMs)]]),
  );

  if (scale) {
    const rows = KINDS.filter((k): k is 'autoprox' | 'aead' => k !== 'plain').flatMap((kind) =>
      scale.byKind[kind].steps.map((st) => [
        KIND_LABEL[kind],
        fmt(st.sessions),
        `${fmt(st.bringUpMs / 1000, 1)} s`,
        `${fmt(st.rssPerSessionBytes.A / 1024, 1)} / ${fmt(st.rssPerSessionBytes.B / 1024, 1)}`,
        `${fmt(st.heapUsedPerSessionBytes.A / 1024, 1)} / ${fmt(st.heapUsedPerSessionBytes.B / 1024, 1)}`,
        `${fmt(st.idleCpuPct.A, 1)} / ${fmt(st.idleCpuPct.B, 1)}`,
        `${fmt(st.idleCpuUsPerSessionS.A, 0)} / ${fmt(st.idleCpuUsPerSessionS.B, 0)}`,
        `${fmt(st.idleDatagramsPerS.A.in, 0)} / ${fmt(st.idleDatagramsPerS.A.out, 0)}`,
        String(st.lost + st.failed),
      ]),
    );
    const { autoprox, aead } = scale.byKind;
    parts.push(
      `(4) scale: up to ${fmt(scale.target)} established sessions per server, heartbeat ${scale.heartbeatMs} ms (servers A / B; idle CPU over ${scale.idleWindowMs / 1000} s)\n` +
        table(['kind', 'sessions', 'step up in', 'RSS/session KB', 'heap/session KB', 'idle CPU %', 'us/session/s', 'A dgrams/s in/out', 'lost+failed'], rows) +
        `\n    RSS with no session: autoprox ${fmt(autoprox.rssEmptyBytes.A / 2 ** 20, 1)} / ${fmt(autoprox.rssEmptyBytes.B / 2 ** 20, 1)} MB, bare+AES ${fmt(aead.rssEmptyBytes.A / 2 ** 20, 1)} / ${fmt(aead.rssEmptyBytes.B / 2 ** 20, 1)} MB; ` +
        `autoprox up in ${fmt(autoprox.bringUpMs / 1000, 1)} s, held ${fmt(autoprox.heldMs / 1000, 1)} s (${autoprox.lostWhileHeld} lost meanwhile); bare+AES up in ${fmt(aead.bringUpMs / 1000, 1)} s`,
    );
  }

  const lossRows: string[][] = [];
  for (const t of throughput) {
    for (const k of KINDS) {
      const s = t.byKind[k].highest;
      const tag = `${t.size} B x ${t.sessions}  ${KIND_LABEL[k]}`;
      lossRows.push([tag, fmt(s.offered), fmt(s.sent), fmt(s.received), fmt(s.lossFraction * 100, 3), fmt(t.sessionsLost?.[k] ?? 0)]);
    }
  }
  if (throughput.length > 0) parts.push(`(5) loss at the highest offered load of each search\n${table(['', 'offered msgs/s', 'sent', 'received', 'loss %', 'sessions lost'], lossRows)}`);

  const cpuRows: string[][] = [];
  for (const t of throughput) {
    const c = t.cpuByKind;
    const tag = `${t.size} B x ${t.sessions} @ ${fmt(t.cpuRate)}/s`;
    cpuRows.push(withRatios(`${tag}  relay A us/msg`, { autoprox: c.autoprox.cpuUsA, plain: c.plain.cpuUsA, aead: c.aead.cpuUsA }));
    cpuRows.push(withRatios(`${tag}  relay B us/msg`, { autoprox: c.autoprox.cpuUsB, plain: c.plain.cpuUsB, aead: c.aead.cpuUsB }));
    cpuRows.push([`${tag}  clients a/b us/msg`, ...KINDS.map((k) => `${fmt(c[k].cpuUsClientA, 1)}/${fmt(c[k].cpuUsClientB, 1)}`), '', '']);
  }
  if (throughput.length > 0) parts.push(`CPU per message (utime+stime from /proc over the run, at a common offered rate)\n${table(['', ...kindCols, ...ratioCols], cpuRows)}`);

  if (result.relay) parts.push(relayReport(result.relay));
  parts.push(`targets (vs the bare AES-GCM relay)\n${table(['', 'target', 'measured', ''], result.targets.map((t) => [t.name, t.limit, t.measured, t.met ? 'met' : 'MISSED']))}`);
  return parts.join('\n\n');
}

// ---------------------------------------------------------------- main

interface BenchResult {
  meta: Record<string, unknown>;
  throughput: ThroughputResult[];
  latency: LatencyResult[];
  establish: EstablishResult | null;
  scale: ScaleResult | null;
  relay: RelayBenchResult | null;
  targets: Target[];
}

const PHASES = ['establish', 'throughput', 'latency', 'scale', 'relay'] as const;
type Phase = (typeof PHASES)[number];
const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: DEFAULT_OUT },
    /** For profiling and development: a comma-separated subset of the phases. */
    phases: { type: 'string', default: PHASES.join(',') },
    'scale-sessions': { type: 'string' },
    /** For development: fewer scale steps and a shorter hold (ms) give a quicker A/B run. */
    'scale-steps': { type: 'string' },
    'scale-hold-ms': { type: 'string' },
    /** For profiling and development: throughput configurations to run, e.g. 1200x1,64x100. */
    configs: { type: 'string' },
  },
});
const configs = (flags.configs ?? SESSION_COUNTS.flatMap((n) => SIZES.map((size) => `${size}x${n}`)).join(','))
  .split(',')
  .map((c) => c.split('x').map(Number) as [number, number]);
const profile = { ...(flags.quick ? QUICK : FULL) };
if (flags['scale-sessions']) profile.scaleSessions = Number(flags['scale-sessions']);
if (flags['scale-steps']) profile.scaleSteps = Number(flags['scale-steps']);
if (flags['scale-hold-ms']) profile.scaleHoldMs = Number(flags['scale-hold-ms']);
for (const [name, value] of [['--scale-sessions', profile.scaleSessions], ['--scale-steps', profile.scaleSteps], ['--scale-hold-ms', profile.scaleHoldMs]] as const) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name}: a whole number above 0, not ${value}`);
}
const phases = new Set(flags.phases!.split(',') as Phase[]);
for (const phase of phases) if (!PHASES.includes(phase)) throw new Error(`--phases: unknown phase ${phase}`);
/** Extra node flags for the relay processes, e.g. BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof". */
const RELAY_NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
const startedAt = performance.now();
const log = (line: string) => process.stderr.write(`[${((performance.now() - startedAt) / 1000).toFixed(1)} s] ${line}\n`);

killChildrenOnExit();
const clientA = new ClientProc('a');
const clientB = new ClientProc('b');

async function main(): Promise<void> {
  const loadBefore = loadavg();
  log(`profile ${profile.name}, phases ${[...phases].join(', ')}`);
  let establish: EstablishResult | null = null;
  let throughput: ThroughputResult[] = [];
  let latency: LatencyResult[] = [];
  let scale: ScaleResult | null = null;

  if (phases.has('establish') || phases.has('throughput') || phases.has('latency')) {
    const pairList = await Promise.all(KINDS.map(startPair));
    const pairs = Object.fromEntries(pairList.map((p) => [p.kind, p])) as Record<Kind, RelayPair>;
    if (phases.has('establish')) {
      log('(3) time to UDP_ESTABLISHED');
      establish = await establishPhase(pairs.autoprox);
      log(`  p50 ${fmt(establish.p50Ms)} ms, p99 ${fmt(establish.p99Ms)} ms`);
    }
    if (phases.has('throughput') || phases.has('latency')) {
      for (const kind of KINDS) for (const n of SESSION_COUNTS) await openGroup(pairs[kind], `${kind}:${n}`, n, 20);
      if (phases.has('throughput')) {
        log('(1, 5) throughput and loss');
        throughput = await throughputPhase(pairs);
      }
      if (phases.has('latency')) {
        log('(2) round trips');
        latency = await latencyPhase(pairs);
      }
      for (const kind of KINDS) for (const n of SESSION_COUNTS) await closeGroup(`${kind}:${n}`);
    }
    await Promise.all(pairList.flatMap((p) => [stop(p.A.proc), stop(p.B.proc)]));
  }
  if (phases.has('scale')) {
    log(`(4) scale: up to ${profile.scaleSessions} sessions`);
    scale = await scalePhase();
  }
  let relay: RelayBenchResult | null = null;
  if (phases.has('relay')) {
    log('(6) the relay beside a bare node:dgram forwarder');
    relay = await relayPhase(flags.quick ? RELAY_QUICK : RELAY_FULL, log);
  }

  const result: BenchResult = {
    meta: {
      date: new Date().toISOString(),
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      profile,
      phases: [...phases],
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      loadavgBefore: loadBefore.map((l) => round(l)),
      loadavgAfter: loadavg().map((l) => round(l)),
      durationS: round((performance.now() - startedAt) / 1000, 1),
      autoproxFlags: AUTOPROX_FLAGS.filter((f) => !f.startsWith('--jwt-secret')),
      lossFreeMaxFraction: LOSS_FREE_MAX_FRACTION,
    },
    throughput,
    latency,
    establish,
    scale,
    relay,
    targets: [],
  };
  result.targets = targets(result);
  const text = report(result);
  process.stdout.write(`${text}\n\nran ${fmt(result.meta.durationS as number, 1)} s; load average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
  mkdirSync(dirname(flags.out!), { recursive: true });
  writeFileSync(flags.out!, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${flags.out}`);
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    killAll();
    // IPC channels keep the event loop alive: the children are gone, leave.
    setTimeout(() => process.exit(), 100).unref();
    for (const client of [clientA, clientB]) if (client.proc.connected) client.proc.disconnect();
  });
