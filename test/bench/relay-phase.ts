/**
 * The relay bench (`npm run bench -- --phases relay`): autoprox's relay beside a bare node:dgram
 * forwarder (bare-forwarder.ts), both separate processes on loopback, driven by the same two
 * sockets (relay-client.ts). Figures: CPU per forwarded datagram (utime+stime from /proc over a
 * paced run, the same offered rate for both), round trips p50/p99, and one relay holding many
 * relayed pairs at once (time to pair them all, RSS and CPU per binding at one heartbeat per end
 * per second). Compare the ratios: both run in the same minute on the same machine.
 */
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { RelayCommand, RelayReply } from './relay-client.js';
import { cpuOf, forkTs, rssOf, sleep, startListener, stop } from './procs.js';
import { percentile, round } from './stats.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const HERE = fileURLToPath(new URL('.', import.meta.url));

export interface RelayProfile {
  pairs: number;
  datagrams: number;
  ratePerS: number;
  rttCount: number;
  heartbeatSeconds: number;
}

export const RELAY_FULL: RelayProfile = { pairs: 1000, datagrams: 100_000, ratePerS: 20_000, rttCount: 2000, heartbeatSeconds: 10 };
export const RELAY_QUICK: RelayProfile = { pairs: 100, datagrams: 20_000, ratePerS: 10_000, rttCount: 500, heartbeatSeconds: 3 };
const DATAGRAM_BYTES = 1250; // a 1200-byte message as autoprox sends it
const RTT_RATE_PER_S = 500;
const BIND_TIMEOUT_MS = 60_000;

export interface ForwardFigures {
  cpuUsPerDatagram: number;
  delivered: number;
  sent: number;
  rttP50Ms: number;
  rttP99Ms: number;
}

export interface RelayBenchResult {
  profile: RelayProfile;
  relay: ForwardFigures;
  bare: ForwardFigures;
  cpuRatio: number;
  pairs: { count: number; pairMs: number; rssBytesPerBinding: number; idleCpuUsPerBindingPerS: number; bareIdleCpuUsPerBindingPerS: number; heartbeatsForwarded: number };
}

class Driver {
  readonly proc: ChildProcess;
  readonly #ready: Promise<void>;
  #pending: ((reply: RelayReply) => void) | null = null;

  constructor() {
    this.proc = forkTs(`${HERE}relay-client.ts`);
    this.#ready = new Promise((resolve) => this.proc.once('message', () => resolve()));
    this.proc.on('message', (reply: RelayReply) => this.#pending?.(reply));
  }

  async ask(command: RelayCommand): Promise<RelayReply> {
    await this.#ready;
    const reply = await new Promise<RelayReply>((resolve) => {
      this.#pending = resolve;
      this.proc.send(command);
    });
    if (!reply.ok) throw new Error(`relay bench client: ${reply.error}`);
    return reply;
  }
}

async function forwarding(driver: Driver, pid: number, port: number, p: RelayProfile): Promise<ForwardFigures> {
  const before = cpuOf(pid);
  const sent = await driver.ask({ cmd: 'send', port, count: p.datagrams, ratePerS: p.ratePerS, bytes: DATAGRAM_BYTES, drainMs: 300 });
  const after = cpuOf(pid);
  const rtt = await driver.ask({ cmd: 'rtt', port, count: p.rttCount, ratePerS: RTT_RATE_PER_S, bytes: DATAGRAM_BYTES });
  const rtts = rtt.rttsMs!;
  return {
    cpuUsPerDatagram: round(((after.cpuS - before.cpuS) * 1e6) / Math.max(1, sent.received!), 2),
    delivered: sent.received!,
    sent: sent.sent!,
    rttP50Ms: round(percentile(rtts, 50), 3),
    rttP99Ms: round(percentile(rtts, 99), 3),
  };
}

export async function relayPhase(p: RelayProfile, log: (line: string) => void): Promise<RelayBenchResult> {
  const secret = randomBytes(32).toString('base64url');
  // BENCH_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") goes to the relay process too.
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const relay = await startListener(process.execPath, [...nodeArgs, CLI, 'relay', '--udp-port', '0', '--port', '0', '--no-ipv6', `--relay-secret=${secret}`, '--log-level', 'warn', '--binding-datagrams-per-s', '0', '--binding-bytes-per-s', '0', '--unproven-per-source-per-s', '0', '--unproven-total-per-s', '0']);
  const bare = await startListener(process.execPath, ['--import', 'tsx', `${HERE}bare-forwarder.ts`]);
  const driver = new Driver();
  try {
    const relayPid = relay.proc.pid!;
    const rssBefore = rssOf(relayPid);
    const bound = await driver.ask({ cmd: 'bind', port: relay.listening.udp.ipv4, secret, pairs: p.pairs, timeoutMs: BIND_TIMEOUT_MS });
    log(`  ${p.pairs} pairs bound and paired in ${round(bound.ms!, 0)} ms`);
    await sleep(1000);
    const rssAfter = rssOf(relayPid);
    const heartbeats = async (pid: number, port: number) => {
      const before = cpuOf(pid);
      const beats = await driver.ask({ cmd: 'heartbeats', port, perEndPerS: 1, seconds: p.heartbeatSeconds });
      return { cpuS: cpuOf(pid).cpuS - before.cpuS, s: beats.ms! / 1000, sent: beats.sent! };
    };
    const relayIdle = await heartbeats(relayPid, relay.listening.udp.ipv4);
    await driver.ask({ cmd: 'hello', port: bare.listening.udp.ipv4 });
    const bareIdle = await heartbeats(bare.proc.pid!, bare.listening.udp.ipv4);
    // The same traffic through each, alternating, twice: the better round of each kind counts
    // (a shared machine's noise only ever adds).
    const rounds: Array<{ bare: ForwardFigures; relay: ForwardFigures }> = [];
    for (let i = 0; i < 2; i++) {
      rounds.push({ bare: await forwarding(driver, bare.proc.pid!, bare.listening.udp.ipv4, p), relay: await forwarding(driver, relayPid, relay.listening.udp.ipv4, p) });
    }
    const best = (kind: 'bare' | 'relay'): ForwardFigures => {
      const all = rounds.map((r) => r[kind]);
      return { ...all.reduce((x, y) => (y.cpuUsPerDatagram < x.cpuUsPerDatagram ? y : x)), rttP50Ms: Math.min(...all.map((f) => f.rttP50Ms)), rttP99Ms: Math.min(...all.map((f) => f.rttP99Ms)) };
    };
    const relayFigures = best('relay');
    const bareFigures = best('bare');
    const bindings = p.pairs * 2;
    return {
      profile: p,
      relay: relayFigures,
      bare: bareFigures,
      cpuRatio: round(relayFigures.cpuUsPerDatagram / bareFigures.cpuUsPerDatagram, 2),
      pairs: {
        count: p.pairs,
        pairMs: round(bound.ms!, 0),
        rssBytesPerBinding: Math.round((rssAfter - rssBefore) / bindings),
        idleCpuUsPerBindingPerS: round((relayIdle.cpuS * 1e6) / bindings / relayIdle.s, 2),
        bareIdleCpuUsPerBindingPerS: round((bareIdle.cpuS * 1e6) / bindings / bareIdle.s, 2),
        heartbeatsForwarded: relayIdle.sent,
      },
    };
  } finally {
    driver.proc.kill('SIGKILL');
    await Promise.all([stop(relay.proc), stop(bare.proc)]);
  }
}

export function relayReport(r: RelayBenchResult): string {
  const rows = [
    ['CPU per forwarded datagram (us)', String(r.bare.cpuUsPerDatagram), String(r.relay.cpuUsPerDatagram), `${r.cpuRatio}x`],
    ['delivered / sent', `${r.bare.delivered}/${r.bare.sent}`, `${r.relay.delivered}/${r.relay.sent}`, ''],
    ['round trip p50 (ms)', String(r.bare.rttP50Ms), String(r.relay.rttP50Ms), ''],
    ['round trip p99 (ms)', String(r.bare.rttP99Ms), String(r.relay.rttP99Ms), ''],
  ];
  const width = [34, 12, 12, 8];
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(width[i]!)).join(' ');
  return [
    `relay: ${DATAGRAM_BYTES}-byte datagrams, ${r.profile.datagrams} at ${r.profile.ratePerS}/s, over ${r.profile.pairs} channels`,
    line(['', 'bare', 'relay', 'ratio']),
    ...rows.map(line),
    `one relay, ${r.pairs.count} relayed pairs (${r.pairs.count * 2} bindings): paired in ${r.pairs.pairMs} ms; RSS ${r.pairs.rssBytesPerBinding} B per binding;`,
    `  at one heartbeat per end per s: ${r.pairs.idleCpuUsPerBindingPerS} us CPU per binding per s (the bare forwarder, the same datagrams: ${r.pairs.bareIdleCpuUsPerBindingPerS})`,
  ].join('\n');
}
