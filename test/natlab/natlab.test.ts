/**
 * The NAT lab: two autoprox servers on hosts behind real NATs and firewalls (Linux network
 * namespaces, nftables), each with its own `autoprox connect` client, over a small internet of
 * documentation-range addresses. Each case builds its own lab and tears it down, pass or fail.
 *
 * Run as root: `npm run test:natlab`. Without root or a usable `ip netns`, every case is skipped
 * and the suite's name says why; with NATLAB_REQUIRED=1 (CI) that is a failure instead.
 */
import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { metric } from '../helpers/metrics.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { sleep } from '../helpers/ws-client.js';
import { endpoint } from './addressing.js';
import { LabClient, LabRelay, LabServer, type LogEntry } from './lab-process.js';
import { removeStaleNamespaces } from './namespaces.js';
import type { RouterCounter } from './nft-rules.js';
import { pollUntil } from './poll.js';
import { labSkipReason } from './preflight.js';
import { LabReport } from './report.js';
import { Lab, type Host, type LabSpec, type SiteName } from './topology.js';

/** Every server's UDP port: fixed, as in production, so NATs that keep ports keep this one. */
const UDP_PORT = 40000;
/** Short timings (ms) so the lab runs in seconds; the same on every server. */
const TIMING = { punchMs: 50, heartbeatMs: 200, peerTimeoutMs: 1500, fallbackMs: 600, punchTimeoutMs: 20_000 };
/** The punch timeout of the case that must fail (ms). */
const SHORT_PUNCH_TIMEOUT_MS = 2000;
/** Slack allowed on a timer observed through two processes and a pipe (ms). */
const TIMER_SLACK_MS = 500;
/** Messages each way in the bulk case, and after each recovery. */
const BULK_MESSAGES = 1000;
const AFTER_RECOVERY_MESSAGES = 100;
/** Messages a sender may have in flight ahead of the receiver (the test's own flow control). */
const SEND_WINDOW = 100;
/** Largest filler in a test message (bytes): messages stay under the 1200-byte --max-payload. */
const MAX_FILLER_BYTES = 1100;
/** Where a rebinding NAT moves its UDP mappings: a range that cannot contain UDP_PORT. */
const REBIND_PORTS = { low: 50000, high: 50999 };
/**
 * Fallback delay of the case that starts one client, waits for proof that its punches are
 * dropped, then starts the other (ms): long enough that IPv6 must win before IPv4 is tried,
 * even when starting the second client is slow on a loaded machine.
 */
const STAGGERED_FALLBACK_MS = 5000;
/** The STUN servers' port (`autoprox relay` answers STUN Binding requests there). */
const STUN_PORT = 3478;
/** Bound on waits for a kernel counter or a recovery (ms). */
const KERNEL_WAIT_MS = 3000;
const RECOVERY_WAIT_MS = TIMING.peerTimeoutMs + 3000;
/**
 * Bound on a recovery that waits for the relay to learn a rebound source (ms): each server binds
 * again every BIND_REFRESH_MS (10 s), the rebound one first (so the relay pairs its new source),
 * then the other (so it hears of it), plus the peer timeouts before and slack.
 */
const RELAY_RECOVERY_WAIT_MS = 2 * 10_000 + 2 * TIMING.peerTimeoutMs + 5000;
/** The lab relays' admission secret, and how long sessions punch directly before they also try the relay (ms). */
const RELAY_SECRET = 'natlab-relay-secret';
const RELAY_AFTER_MS = 500;
/** Paced sending through a relay: this many messages each way every PACE_MS (about 1,000 a second). */
const PACE_BURST = 10;
const PACE_MS = 10;
const RESULTS_FILE = fileURLToPath(new URL('./results/latest.json', import.meta.url));

const skipReason = await labSkipReason();
if (skipReason && process.env.NATLAB_REQUIRED === '1') {
  // CI sets this: there, a lab that cannot run is a broken CI image, not a reason to pass.
  throw new Error(`NATLAB_REQUIRED=1 but the NAT lab cannot run: ${skipReason}`);
}
if (skipReason) console.warn(`NAT lab skipped: ${skipReason}`);

function serverFlags(overrides: Partial<typeof TIMING> = {}): string[] {
  const t = { ...TIMING, ...overrides };
  return [
    '--udp-port', String(UDP_PORT),
    `--jwt-secret=${TEST_SECRET}`,
    '--punch-ms', String(t.punchMs),
    '--heartbeat-ms', String(t.heartbeatMs),
    '--peer-timeout-ms', String(t.peerTimeoutMs),
    '--fallback-ms', String(t.fallbackMs),
    '--punch-timeout-ms', String(t.punchTimeoutMs),
    '--shutdown-grace-ms', '1000',
  ];
}

/** Message `i` of a stream: its tag and number, then a filler of varying length derived from both. */
function message(tag: string, i: number): string {
  const length = (i * 97) % MAX_FILLER_BYTES;
  const digest = createHash('sha256').update(`${tag}:${i}`).digest('hex');
  return `${tag}:${i}:${digest.repeat(Math.ceil(length / digest.length)).slice(0, length)}`;
}

/** The STUN round trips (ms) a server logged with its public endpoints, one per server: `0.4/0.6`. */
function stunRtts(entry: LogEntry): string {
  const servers = (entry.servers ?? []) as Array<{ family: string; rttMs: number | null }>;
  return servers
    .filter((s) => s.family === 'ipv4')
    .map((s) => (s.rttMs === null ? '-' : String(Math.round(s.rttMs * 10) / 10)))
    .join('/');
}

const expectedStream = (tag: string, count: number) => Array.from({ length: count }, (_, i) => message(tag, i));

describe.skipIf(skipReason !== null)(`NAT lab${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  const report = new LabReport();
  const processes: Array<LabServer | LabRelay | LabClient> = [];
  let lab: Lab | null = null;
  let token = '';
  let key = '';

  beforeAll(async () => {
    const stale = await removeStaleNamespaces();
    if (stale.length) console.warn(`NAT lab: removed ${stale.length} stale namespace(s) of killed runs: ${stale.join(' ')}`);
    token = await mintToken(TEST_SECRET, 'natlab', 600);
  });

  beforeEach((ctx) => {
    key = randomBytes(32).toString('base64url');
    report.begin(ctx.task.name);
  });

  afterEach(async (ctx) => {
    const outcome = ctx.task.result?.state ?? 'unknown';
    report.end(outcome === 'pass' ? 'passed' : outcome === 'fail' ? 'FAILED' : outcome);
    if (outcome === 'fail') {
      for (const p of processes) console.error(`--- ${p.label} (exit ${JSON.stringify(p.exit)})\n${p.log.slice(-60).join('\n')}`);
    }
    await Promise.all(processes.splice(0).map((p) => p.stop('SIGKILL')));
    await lab?.destroy();
    lab = null;
  });

  afterAll(() => {
    if (report.cases.length === 0) return;
    console.log(`\nNAT lab: time from WebSocket open to UDP_ESTABLISHED\n${report.table()}\n`);
    report.write(RESULTS_FILE, { udpPort: UDP_PORT, timingMs: TIMING, shortPunchTimeoutMs: SHORT_PUNCH_TIMEOUT_MS });
  });

  async function buildLab(spec: LabSpec): Promise<Lab> {
    lab = await Lab.build(spec);
    return lab;
  }

  async function server(host: Host, overrides: Partial<typeof TIMING> = {}, extraFlags: string[] = []): Promise<LabServer> {
    const s = await LabServer.start(host, [...serverFlags(overrides), ...extraFlags]);
    processes.push(s);
    return s;
  }

  /** `autoprox relay` on the internet at `address` (no NAT in front), default limits. */
  async function relay(address: string, flags: string[] = []): Promise<LabRelay> {
    const r = await LabRelay.start(lab!.inet, address, STUN_PORT, flags);
    processes.push(r);
    return r;
  }

  /** A relay for sessions (with the lab's relay secret) at `address`, and the server flags that use it. */
  async function sessionRelay(address: string): Promise<{ relay: LabRelay; at: string; flags: string[] }> {
    const r = await relay(address, [`--relay-secret=${RELAY_SECRET}`]);
    const at = endpoint(address, STUN_PORT);
    return { relay: r, at, flags: ['--relay', at, `--relay-secret=${RELAY_SECRET}`, '--relay-after-ms', String(RELAY_AFTER_MS)] };
  }

  /** The relay's forwarded-datagram count, from its /metrics. */
  async function forwarded(r: LabRelay): Promise<number> {
    return metric(await r.metrics(), 'autoprox_relay_forwarded_datagrams_total') ?? 0;
  }

  /** A client on `host`, through that host's server, to the peer candidates `hosts`. */
  function client(host: Host, via: LabServer, hosts: string[], label = host.name, sessionKey = key): LabClient {
    const c = new LabClient(host, via, { hosts, port: UDP_PORT, key: sessionKey, token });
    processes.push(c);
    return report.client(label, c);
  }

  function waitForCounter(site: SiteName, counter: RouterCounter): Promise<void> {
    return pollUntil(async () => (await lab!.counter(site, counter)) > 0, KERNEL_WAIT_MS, `nat-${site}'s ${counter} counter to count`);
  }

  /** Sends `count` messages, at most SEND_WINDOW ahead of what the receiver has. */
  async function pump(from: LabClient, to: LabClient, tag: string, count: number): Promise<void> {
    const base = to.data.length;
    for (let i = 0; i < count; i++) {
      if (i - (to.data.length - base) >= SEND_WINDOW) await to.waitForData(base + i - SEND_WINDOW + 1);
      from.send(message(tag, i));
    }
  }

  /** `count` messages each way at once; each side must get the other's, intact and in order. */
  async function exchange(a: LabClient, b: LabClient, tag: string, count: number): Promise<void> {
    const [aBase, bBase] = [a.data.length, b.data.length];
    await Promise.all([pump(a, b, `${tag}>`, count), pump(b, a, `${tag}<`, count)]);
    const [toB, toA] = await Promise.all([b.waitForData(bBase + count), a.waitForData(aBase + count)]);
    expect(toB.slice(bBase)).toEqual(expectedStream(`${tag}>`, count));
    expect(toA.slice(aBase)).toEqual(expectedStream(`${tag}<`, count));
  }

  /**
   * `count` messages each way, paced (PACE_BURST each way every PACE_MS, as through a relay with
   * its per-end limits); each side must get the other's, intact and in order.
   */
  async function pacedExchange(a: LabClient, b: LabClient, tag: string, count: number): Promise<void> {
    const [aBase, bBase] = [a.data.length, b.data.length];
    for (let i = 0; i < count; i += PACE_BURST) {
      for (let j = i; j < Math.min(count, i + PACE_BURST); j++) {
        a.send(message(`${tag}>`, j));
        b.send(message(`${tag}<`, j));
      }
      await sleep(PACE_MS);
    }
    const [toB, toA] = await Promise.all([b.waitForData(bBase + count), a.waitForData(aBase + count)]);
    expect(toB.slice(bBase)).toEqual(expectedStream(`${tag}>`, count));
    expect(toA.slice(aBase)).toEqual(expectedStream(`${tag}<`, count));
  }

  /** Both clients established; resolves with their UDP_ESTABLISHED frames. */
  async function bothEstablished(a: LabClient, b: LabClient) {
    const [ea, eb] = await Promise.all([a.waitForStatus('UDP_ESTABLISHED'), b.waitForStatus('UDP_ESTABLISHED')]);
    return [ea.frame, eb.frame] as const;
  }

  it('1 endpoint-independent NATs on both sides: punch through, 1,000 messages each way', async () => {
    const lab = await buildLab({
      a: { nat: 'endpoint-independent', ipv6: 'absent' },
      b: { nat: 'endpoint-independent', ipv6: 'absent' },
    });
    const [a1, b1] = [lab.host('a1'), lab.host('b1')];
    const [A, B] = await Promise.all([server(a1), server(b1)]);
    const a = client(a1, A, [lab.site('b').public4]);
    await a.waitForStatus('UDP_WAITING', { family: 'ipv4' });
    // Until b punches too, b's NAT drops a's packets: it filters what nobody inside asked for.
    await waitForCounter('b', 'unsolicited_in');
    const b = client(b1, B, [lab.site('a').public4]);

    const [ea, eb] = await bothEstablished(a, b);
    // The NATs kept the servers' port, so each side sees the other at its public address, port 40000.
    expect(ea).toMatchObject({ family: 'ipv4', peer: endpoint(lab.site('b').public4, UDP_PORT) });
    expect(eb).toMatchObject({ family: 'ipv4', peer: endpoint(lab.site('a').public4, UDP_PORT) });
    expect(a.trail()).toEqual(['CONNECTED', 'UDP_WAITING/ipv4', 'UDP_ESTABLISHED/ipv4']);
    expect(b.trail()).toEqual(['CONNECTED', 'UDP_WAITING/ipv4', 'UDP_ESTABLISHED/ipv4']);

    const started = performance.now();
    await exchange(a, b, 'bulk', BULK_MESSAGES);
    report.extra(`${BULK_MESSAGES}x2 msgs`, performance.now() - started);
    expect([...a.errors, ...b.errors]).toEqual([]);
    expect(a.trail().at(-1)).toBe('UDP_ESTABLISHED/ipv4');
  });

  it('2 symmetric NAT on one side: UDP_WAITING until the punch timeout, then CLOSED punch_timeout', async () => {
    const lab = await buildLab({
      a: { nat: 'symmetric', ipv6: 'absent' },
      b: { nat: 'endpoint-independent', ipv6: 'absent' },
    });
    const [a1, b1] = [lab.host('a1'), lab.host('b1')];
    const short = { punchTimeoutMs: SHORT_PUNCH_TIMEOUT_MS };
    const [A, B] = await Promise.all([server(a1, short), server(b1, short)]);
    const a = client(a1, A, [lab.site('b').public4]);
    const b = client(b1, B, [lab.site('a').public4]);

    const [ca, cb] = await Promise.all([
      a.waitForStatus('CLOSED', {}, SHORT_PUNCH_TIMEOUT_MS + 5000),
      b.waitForStatus('CLOSED', {}, SHORT_PUNCH_TIMEOUT_MS + 5000),
    ]);
    for (const [name, c, closed] of [['a1', a, ca], ['b1', b, cb]] as const) {
      expect(c.trail()).toEqual(['CONNECTED', 'UDP_WAITING/ipv4', 'CLOSED(punch_timeout)']);
      expect(closed.frame.message).toMatch(/punching failed/);
      const waitedMs = closed.at - c.statuses[1]!.at;
      expect(waitedMs).toBeGreaterThanOrEqual(SHORT_PUNCH_TIMEOUT_MS - TIMER_SLACK_MS);
      expect(waitedMs).toBeLessThanOrEqual(SHORT_PUNCH_TIMEOUT_MS + TIMER_SLACK_MS);
      expect((await c.waitForExit()).code).toBe(1); // close code 4000: not a normal close
      expect(c.data).toEqual([]);
      report.extra(`${name} waiting->CLOSED`, waitedMs);
    }
    // The lab really was symmetric: a's NAT mapped a1's port 40000 to another public port
    // (conntrack's reply tuple shows it), and b's NAT dropped what came from there.
    const mappings = (await lab.conntrack('a')).split('\n').filter((l) => l.includes(`src=${a1.lan4}`));
    const mappedPorts = mappings.map((l) => Number(/sport=\d+ dport=(\d+)(?!.*dport=)/.exec(l)?.[1]));
    expect(mappedPorts.length).toBeGreaterThan(0);
    expect(mappedPorts).not.toContain(UDP_PORT);
    expect(await lab.counter('b', 'unsolicited_in')).toBeGreaterThan(0);
    report.extra('a mapped to port', mappedPorts.join(' '));
  });

  it('3 IPv6 behind stateful firewalls (no NAT): punches through on IPv6', async () => {
    const lab = await buildLab({
      a: { nat: 'endpoint-independent', ipv6: 'firewalled' },
      b: { nat: 'endpoint-independent', ipv6: 'firewalled' },
    });
    const [a1, b1] = [lab.host('a1'), lab.host('b1')];
    const slowFallback = { fallbackMs: STAGGERED_FALLBACK_MS };
    const [A, B] = await Promise.all([server(a1, slowFallback), server(b1, slowFallback)]);
    const a = client(a1, A, [b1.lan6!, lab.site('b').public4]);
    await a.waitForStatus('UDP_WAITING', { family: 'ipv6' });
    // b's firewall drops a's first punches: new inbound flows are not let in.
    await waitForCounter('b', 'inbound_new_dropped');
    const b = client(b1, B, [a1.lan6!, lab.site('a').public4]);

    const [ea, eb] = await bothEstablished(a, b);
    expect(ea).toMatchObject({ family: 'ipv6', peer: endpoint(b1.lan6!, UDP_PORT) });
    expect(eb).toMatchObject({ family: 'ipv6', peer: endpoint(a1.lan6!, UDP_PORT) });
    expect(a.trail()).toEqual(['CONNECTED', 'UDP_WAITING/ipv6', 'UDP_ESTABLISHED/ipv6']);
    expect(b.trail()).toEqual(['CONNECTED', 'UDP_WAITING/ipv6', 'UDP_ESTABLISHED/ipv6']);
    await exchange(a, b, 'v6', AFTER_RECOVERY_MESSAGES);
  });

  it('4 IPv6 blackholed on one side: falls back to IPv4 and says family ipv4', async () => {
    const lab = await buildLab({
      a: { nat: 'endpoint-independent', ipv6: 'firewalled' },
      b: { nat: 'endpoint-independent', ipv6: 'blackholed' },
    });
    const [a1, b1] = [lab.host('a1'), lab.host('b1')];
    const [A, B] = await Promise.all([server(a1), server(b1)]);
    const a = client(a1, A, [b1.lan6!, lab.site('b').public4]);
    const b = client(b1, B, [a1.lan6!, lab.site('a').public4]);

    const [ea, eb] = await bothEstablished(a, b);
    expect(ea).toMatchObject({ family: 'ipv4', peer: endpoint(lab.site('b').public4, UDP_PORT) });
    expect(eb).toMatchObject({ family: 'ipv4', peer: endpoint(lab.site('a').public4, UDP_PORT) });
    for (const c of [a, b]) {
      expect(c.trail()).toEqual(['CONNECTED', 'UDP_WAITING/ipv6', 'UDP_WAITING/ipv4', 'UDP_ESTABLISHED/ipv4']);
      expect(c.statuses[3]!.at - c.statuses[1]!.at).toBeGreaterThanOrEqual(TIMING.fallbackMs - TIMER_SLACK_MS);
    }
    expect(await lab.counter('b', 'ipv6_blackholed')).toBeGreaterThan(0);
    await exchange(a, b, 'v4', AFTER_RECOVERY_MESSAGES);
  });

  it('4b no IPv6 at all on one side (sends fail at once): falls back to IPv4 and says family ipv4', async () => {
    const lab = await buildLab({
      a: { nat: 'endpoint-independent', ipv6: 'firewalled' },
      b: { nat: 'endpoint-independent', ipv6: 'absent' },
    });
    const [a1, b1] = [lab.host('a1'), lab.host('b1')];
    const [A, B] = await Promise.all([server(a1), server(b1)]);
    // a still has b's old IPv6 address (a stale AAAA record, say): nothing routes it any more.
    const staleB6 = '2001:db8:21::10';
    const a = client(a1, A, [staleB6, lab.site('b').public4]);
    const b = client(b1, B, [a1.lan6!, lab.site('a').public4]);

    const [ea, eb] = await bothEstablished(a, b);
    expect(ea).toMatchObject({ family: 'ipv4', peer: endpoint(lab.site('b').public4, UDP_PORT) });
    expect(eb).toMatchObject({ family: 'ipv4', peer: endpoint(lab.site('a').public4, UDP_PORT) });
    for (const c of [a, b]) {
      expect(c.trail()).toEqual(['CONNECTED', 'UDP_WAITING/ipv6', 'UDP_WAITING/ipv4', 'UDP_ESTABLISHED/ipv4']);
    }
    expect(B.running).toBe(true); // b's failed IPv6 sends (no route) did not hurt its server
    await exchange(a, b, 'v4', AFTER_RECOVERY_MESSAGES);
  });

  it('5 NAT rebinding (a new public port mid-session): back to UDP_ESTABLISHED with no client action', async () => {
    // The rebinding side's new port can only be heard by a peer whose NAT lets it in: b forwards
    // its UDP port (endpoint-independent filtering). With port-restricted filtering on both
    // sides, no direct protocol can learn the new port without a third party.
    const lab = await buildLab({
      a: { nat: 'endpoint-independent', ipv6: 'absent' },
      b: { nat: 'endpoint-independent', ipv6: 'absent', portForward: UDP_PORT },
    });
    const [a1, b1] = [lab.host('a1'), lab.host('b1')];
    const [A, B] = await Promise.all([server(a1), server(b1)]);
    const a = client(a1, A, [lab.site('b').public4]);
    const b = client(b1, B, [lab.site('a').public4]);
    const [, eb] = await bothEstablished(a, b);
    expect(eb.peer).toBe(endpoint(lab.site('a').public4, UDP_PORT));
    await exchange(a, b, 'before', AFTER_RECOVERY_MESSAGES);

    // a's NAT forgets its mappings and will map UDP to new ports from now on.
    await lab.remapUdpPorts('a', REBIND_PORTS);
    const flushedAt = performance.now();
    await lab.flushConntrack('a');
    // b hears a's heartbeats from the new port and moves there (a new UDP_ESTABLISHED frame).
    await b.until(() => b.statuses.length > 3, 'b to report a moved peer', RECOVERY_WAIT_MS);
    const rebound = b.statuses.at(-1)!;
    report.extra('flush->b moved', rebound.at - flushedAt);

    const newPort = Number(rebound.frame.peer!.split(':').at(-1));
    expect(rebound.frame).toMatchObject({ status: 'UDP_ESTABLISHED', family: 'ipv4' });
    expect(rebound.frame.peer).toBe(endpoint(lab.site('a').public4, newPort));
    expect(newPort).toBeGreaterThanOrEqual(REBIND_PORTS.low);
    expect(newPort).toBeLessThanOrEqual(REBIND_PORTS.high);
    expect(b.trail()).toEqual(['CONNECTED', 'UDP_WAITING/ipv4', 'UDP_ESTABLISHED/ipv4', 'UDP_ESTABLISHED/ipv4']);
    // a lost at most a heartbeat or two: it never had to wait again.
    expect(a.trail()).toEqual(['CONNECTED', 'UDP_WAITING/ipv4', 'UDP_ESTABLISHED/ipv4']);
    await exchange(a, b, 'after', AFTER_RECOVERY_MESSAGES);
  });

  /**
   * a's server stops mid-session (`signal`) and a new one starts on the same host with a new
   * client: b must go back to waiting (`expectedReason`) and then establish with the new session.
   * `restart`: at once, or only after b has noticed.
   */
  async function restartCase(
    signal: 'SIGKILL' | 'SIGTERM',
    expectedReason: 'peer_timeout' | 'peer_closed',
    restart: 'at-once' | 'after-b-noticed',
  ) {
    const lab = await buildLab({
      a: { nat: 'endpoint-independent', ipv6: 'absent' },
      b: { nat: 'endpoint-independent', ipv6: 'absent' },
    });
    const [a1, b1] = [lab.host('a1'), lab.host('b1')];
    const [A, B] = await Promise.all([server(a1), server(b1)]);
    const a = client(a1, A, [lab.site('b').public4]);
    const b = client(b1, B, [lab.site('a').public4]);
    await bothEstablished(a, b);
    await exchange(a, b, 'before', AFTER_RECOVERY_MESSAGES);

    const stoppedAt = performance.now();
    await A.stop(signal);
    await a.waitForExit();
    const bWaiting = () => b.statuses.find((s) => s.frame.reason === expectedReason);
    if (restart === 'after-b-noticed') await b.until(() => bWaiting() !== undefined, `UDP_WAITING (${expectedReason})`, RECOVERY_WAIT_MS);

    const A2 = await server(a1);
    const a2 = client(a1, A2, [lab.site('b').public4], 'a1 (new)');
    const expectedTrail = ['CONNECTED', 'UDP_WAITING/ipv4', 'UDP_ESTABLISHED/ipv4', `UDP_WAITING/ipv4(${expectedReason})`, 'UDP_ESTABLISHED/ipv4'];
    await b.until(() => b.statuses.length >= expectedTrail.length, 'b to wait, then establish again', RECOVERY_WAIT_MS);
    const ea2 = await a2.waitForStatus('UDP_ESTABLISHED');
    expect(b.trail()).toEqual(expectedTrail);
    const eb = b.statuses.at(-1)!;
    report.extra(`stop->b ${expectedReason}`, bWaiting()!.at - stoppedAt);
    report.extra('new a open->b established', eb.at - a2.openedAt!);
    expect(ea2.frame).toMatchObject({ family: 'ipv4', peer: endpoint(lab.site('b').public4, UDP_PORT) });
    expect(eb.frame).toMatchObject({ family: 'ipv4', peer: endpoint(lab.site('a').public4, UDP_PORT) });
    expect(a2.trail()).toEqual(['CONNECTED', 'UDP_WAITING/ipv4', 'UDP_ESTABLISHED/ipv4']);
    await exchange(a2, b, 'after', AFTER_RECOVERY_MESSAGES);
  }

  it('6 one server crashes (SIGKILL) mid-session, restarts after the peer noticed: re-establishes', async () => {
    await restartCase('SIGKILL', 'peer_timeout', 'after-b-noticed');
  });

  it('6b one server crashes (SIGKILL) and restarts at once, before the peer noticed: re-establishes', async () => {
    await restartCase('SIGKILL', 'peer_timeout', 'at-once');
  });

  it('6c one server restarts gracefully (SIGTERM) mid-session: the peer is told at once, re-establishes', async () => {
    await restartCase('SIGTERM', 'peer_closed', 'at-once');
  });

  it('7 both hosts behind one NAT that does not hairpin: establishes on the LAN path', async () => {
    const lab = await buildLab({ a: { nat: 'endpoint-independent', ipv6: 'absent', hosts: 2 } });
    const [a1, a2] = [lab.host('a1'), lab.host('a2')];
    const pub = lab.site('a').public4;
    const [A1, A2] = await Promise.all([server(a1), server(a2)]);
    const c1 = client(a1, A1, [a2.lan4, pub]);
    const c2 = client(a2, A2, [a1.lan4, pub]);

    const [e1, e2] = await bothEstablished(c1, c2);
    expect(e1).toMatchObject({ family: 'ipv4', peer: endpoint(a2.lan4, UDP_PORT) });
    expect(e2).toMatchObject({ family: 'ipv4', peer: endpoint(a1.lan4, UDP_PORT) });
    // The public candidate was punched too, and the NAT dropped it: no hairpinning here.
    expect(await lab.counter('a', 'hairpin_dropped')).toBeGreaterThan(0);
    await exchange(c1, c2, 'lan', AFTER_RECOVERY_MESSAGES);
  });

  it('8 endpoint discovery (STUN) behind a cone and a symmetric NAT: each endpoints frame names its NAT\'s public address and mapping', async () => {
    const lab = await buildLab({
      a: { nat: 'endpoint-independent', ipv6: 'absent' },
      b: { nat: 'symmetric', ipv6: 'absent' },
    });
    const [a1, b1] = [lab.host('a1'), lab.host('b1')];
    // Two STUN servers at different public addresses, behind no NAT: `autoprox relay`s.
    const stunAddresses = lab.servers4.slice(0, 2);
    await Promise.all(stunAddresses.map((address) => relay(address)));
    const stun = stunAddresses.flatMap((address) => ['--stun', endpoint(address, STUN_PORT)]);
    const [A, B] = await Promise.all([server(a1, {}, stun), server(b1, {}, stun)]);
    const a = client(a1, A, [lab.site('b').public4]);
    const b = client(b1, B, [lab.site('a').public4]);
    const [ea, eb] = await Promise.all([a.waitForEndpoints(), b.waitForEndpoints()]);

    // Behind the cone NAT: its public address, the server's own port (the NAT keeps it), and
    // the same mapping whichever STUN server asks.
    expect(ea.frame).toEqual({ type: 'endpoints', ipv4: endpoint(lab.site('a').public4, UDP_PORT), ipv6: null, nat: 'endpoint-independent', relay: null });
    // Behind the symmetric NAT: its public address with the port it gave the first STUN
    // server's flow; the second server saw another port.
    expect(eb.frame).toMatchObject({ type: 'endpoints', ipv6: null, nat: 'endpoint-dependent', relay: null });
    const bPort = Number(eb.frame.ipv4?.split(':').at(-1));
    expect(eb.frame.ipv4).toBe(endpoint(lab.site('b').public4, bPort));

    // The NATs' own tables agree: one mapping per STUN server, ports as the frames say.
    const stunMappings = async (site: SiteName, host: Host) =>
      (await lab.udpMappings(site, host.lan4, UDP_PORT)).filter((m) => m.to.endsWith(`:${STUN_PORT}`));
    const [aMapped, bMapped] = await Promise.all([stunMappings('a', a1), stunMappings('b', b1)]);
    const byServer = (mappings: typeof aMapped) => stunAddresses.map((address) => mappings.find((m) => m.to === endpoint(address, STUN_PORT)));
    expect(byServer(aMapped)).toEqual(stunAddresses.map((address) => ({ to: endpoint(address, STUN_PORT), public4: lab.site('a').public4, publicPort: UDP_PORT })));
    const [bFirst, bSecond] = byServer(bMapped);
    expect(bFirst).toMatchObject({ public4: lab.site('b').public4, publicPort: bPort });
    expect(bSecond).toMatchObject({ public4: lab.site('b').public4 });
    expect(bSecond!.publicPort).not.toBe(bPort);
    expect([...a.errors, ...b.errors]).toEqual([]);

    // Times: each client's open -> endpoints frame, and the STUN round trips its server measured.
    for (const [name, c, s] of [['a1', a, A], ['b1', b, B]] as const) {
      report.extra(`${name} open->endpoints`, c.endpoints[0]!.at - c.openedAt!);
      report.extra(`${name} STUN rtt`, stunRtts(await s.waitForLog('public endpoints (STUN)')));
    }
    report.extra('b mapped to ports', [bFirst!.publicPort, bSecond!.publicPort].join(' '));
  });

  /** Sites a and b (IPv4 only) behind the given NATs, a relay on the internet, a server and a client on a1 and b1, each naming the other site. */
  async function pairWithRelay(aNat: 'symmetric' | 'endpoint-independent', bNat: 'symmetric' | 'endpoint-independent') {
    const lab = await buildLab({
      a: { nat: aNat, ipv6: 'absent' },
      b: { nat: bNat, ipv6: 'absent' },
    });
    const [a1, b1] = [lab.host('a1'), lab.host('b1')];
    const r = await sessionRelay(lab.servers4[0]!);
    const [A, B] = await Promise.all([server(a1, {}, r.flags), server(b1, {}, r.flags)]);
    return { lab, r, a: client(a1, A, [lab.site('b').public4]), b: client(b1, B, [lab.site('a').public4]) };
  }

  /**
   * Sessions that cannot punch (a symmetric NAT on at least one side) through a relay on the
   * internet: both sides UDP_ESTABLISHED with path relay, peer = the relay; `count` messages each way.
   */
  async function relayedCase(aNat: 'symmetric' | 'endpoint-independent', count: number) {
    const { r, a, b } = await pairWithRelay(aNat, 'symmetric');

    const [ea, eb] = await bothEstablished(a, b);
    for (const frame of [ea, eb]) expect(frame).toMatchObject({ family: 'ipv4', path: 'relay', peer: r.at, relay: r.at });
    for (const c of [a, b]) {
      expect(c.trail()).toEqual(['CONNECTED', 'UDP_WAITING/ipv4', 'UDP_ESTABLISHED/ipv4']);
      // Relayed only after punching directly for --relay-after-ms.
      expect(c.statuses[2]!.at - c.statuses[1]!.at).toBeGreaterThanOrEqual(RELAY_AFTER_MS - TIMER_SLACK_MS);
    }

    const before = await forwarded(r.relay);
    const started = performance.now();
    await pacedExchange(a, b, 'relayed', count);
    report.extra(`${count}x2 msgs`, performance.now() - started);
    const carried = (await forwarded(r.relay)) - before;
    expect(carried).toBeGreaterThanOrEqual(2 * count);
    report.extra('relay forwarded', carried);
    expect([...a.errors, ...b.errors]).toEqual([]);
    expect(a.trail().at(-1)).toBe('UDP_ESTABLISHED/ipv4');
    expect(b.trail().at(-1)).toBe('UDP_ESTABLISHED/ipv4');
  }

  it('9 symmetric NAT on one side, cone on the other, a relay on the internet: both UDP_ESTABLISHED path relay, 1,000 messages each way', async () => {
    await relayedCase('endpoint-independent', BULK_MESSAGES);
  });

  it('10 symmetric NATs on both sides, a relay on the internet: both UDP_ESTABLISHED path relay, 1,000 messages each way', async () => {
    await relayedCase('symmetric', BULK_MESSAGES);
  });

  it('11 endpoint-independent NATs on both sides with a relay configured: path direct, and the relay carries nothing while 1,000 messages flow', async () => {
    const { lab, r, a, b } = await pairWithRelay('endpoint-independent', 'endpoint-independent');

    const [ea, eb] = await bothEstablished(a, b);
    expect(ea).toMatchObject({ family: 'ipv4', path: 'direct', peer: endpoint(lab.site('b').public4, UDP_PORT) });
    expect(eb).toMatchObject({ family: 'ipv4', path: 'direct', peer: endpoint(lab.site('a').public4, UDP_PORT) });
    for (const frame of [ea, eb]) expect(frame.relay).toBeUndefined();
    // Give any datagram already on its way through the relay time to land.
    await sleep(300);
    const before = await forwarded(r.relay);
    const started = performance.now();
    await pacedExchange(a, b, 'direct', BULK_MESSAGES);
    report.extra(`${BULK_MESSAGES}x2 msgs`, performance.now() - started);
    await sleep(300);
    const after = await forwarded(r.relay);
    expect(after).toBe(before);
    report.extra('relay forwarded before/after', `${before}/${after}`);
    // Not for want of a relay: both servers' ends of the channel are bound and paired there.
    const text = await r.relay.metrics();
    expect(metric(text, 'autoprox_relay_bindings')).toBe(2);
    expect(metric(text, 'autoprox_relay_pairs')).toBe(1);
    for (const c of [a, b]) expect(c.trail()).toEqual(['CONNECTED', 'UDP_WAITING/ipv4', 'UDP_ESTABLISHED/ipv4']);
    expect([...a.errors, ...b.errors]).toEqual([]);
  });

  it('12 the relay killed: relayed sessions go UDP_WAITING (peer_timeout), direct sessions are untouched', async () => {
    // a1 and a2 behind one cone NAT (direct on their LAN), b1 behind a symmetric one (a1 <-> b1 relayed).
    const lab = await buildLab({
      a: { nat: 'endpoint-independent', ipv6: 'absent', hosts: 2 },
      b: { nat: 'symmetric', ipv6: 'absent' },
    });
    const [a1, a2, b1] = [lab.host('a1'), lab.host('a2'), lab.host('b1')];
    const r = await sessionRelay(lab.servers4[0]!);
    const [A1, A2, B] = await Promise.all([server(a1, {}, r.flags), server(a2, {}, r.flags), server(b1, {}, r.flags)]);
    const relayed = [client(a1, A1, [lab.site('b').public4], 'a1 (relayed)'), client(b1, B, [lab.site('a').public4], 'b1 (relayed)')] as const;
    const directKey = randomBytes(32).toString('base64url');
    const direct = [client(a1, A1, [a2.lan4], 'a1 (direct)', directKey), client(a2, A2, [a1.lan4], 'a2 (direct)', directKey)] as const;

    const [er1, er2] = await bothEstablished(...relayed);
    for (const frame of [er1, er2]) expect(frame).toMatchObject({ path: 'relay', peer: r.at });
    const [ed1, ed2] = await bothEstablished(...direct);
    expect(ed1).toMatchObject({ path: 'direct', peer: endpoint(a2.lan4, UDP_PORT) });
    expect(ed2).toMatchObject({ path: 'direct', peer: endpoint(a1.lan4, UDP_PORT) });
    await Promise.all([pacedExchange(...relayed, 'relayed', AFTER_RECOVERY_MESSAGES), pacedExchange(...direct, 'direct', AFTER_RECOVERY_MESSAGES)]);

    const directFrames = direct.map((c) => c.statuses.length);
    const killedAt = performance.now();
    await r.relay.stop('SIGKILL');
    for (const [name, c] of [['a1', relayed[0]], ['b1', relayed[1]]] as const) {
      const waiting = await c.waitForStatus('UDP_WAITING', { reason: 'peer_timeout' }, RECOVERY_WAIT_MS);
      report.extra(`kill->${name} peer_timeout`, waiting.at - killedAt);
      expect(waiting.at - killedAt).toBeGreaterThanOrEqual(TIMING.peerTimeoutMs - TIMER_SLACK_MS);
      expect(c.trail().slice(0, 4)).toEqual(['CONNECTED', 'UDP_WAITING/ipv4', 'UDP_ESTABLISHED/ipv4', 'UDP_WAITING/ipv4(peer_timeout)']);
    }
    await sleep(TIMING.peerTimeoutMs + TIMER_SLACK_MS); // well past the peer timeout, counted from the kill
    direct.forEach((c, i) => {
      expect(c.statuses.length).toBe(directFrames[i]);
      expect(c.status).toMatchObject({ status: 'UDP_ESTABLISHED', path: 'direct' });
    });
    const started = performance.now();
    await pacedExchange(...direct, 'after', AFTER_RECOVERY_MESSAGES);
    report.extra(`direct ${AFTER_RECOVERY_MESSAGES}x2 msgs after kill`, performance.now() - started);
    expect([...relayed, ...direct].flatMap((c) => c.errors)).toEqual([]);
  });

  it('13 NAT rebinding behind address-and-port-filtering NATs, no port forward, a relay: back to UDP_ESTABLISHED with no client action, then direct again', async () => {
    // Both NATs map endpoint-independently and filter by address and port (as every NAT of the
    // lab does; no port forward, unlike case 5): after a's mapping moves, b's NAT drops a's
    // heartbeats from the new port and nobody on the direct path can learn it. The relay does:
    // it sees a's new source when a's server binds again, and b's server hears of it there.
    const { lab, r, a, b } = await pairWithRelay('endpoint-independent', 'endpoint-independent');
    const [ea, eb] = await bothEstablished(a, b);
    expect(ea).toMatchObject({ family: 'ipv4', path: 'direct', peer: endpoint(lab.site('b').public4, UDP_PORT) });
    expect(eb).toMatchObject({ family: 'ipv4', path: 'direct', peer: endpoint(lab.site('a').public4, UDP_PORT) });
    await exchange(a, b, 'before', AFTER_RECOVERY_MESSAGES);
    const [aFrames, bFrames] = [a.statuses.length, b.statuses.length];

    // a's NAT forgets its mappings and will map UDP to new ports from now on.
    await lab.remapUdpPorts('a', REBIND_PORTS);
    const flushedAt = performance.now();
    await lab.flushConntrack('a');

    const direct = (c: LabClient, from: number) => c.statuses.slice(from).find((s) => s.frame.status === 'UDP_ESTABLISHED' && s.frame.path === 'direct');
    for (const [name, c, from] of [['a', a, aFrames], ['b', b, bFrames]] as const) {
      await c.until(() => direct(c, from) !== undefined && c.status?.status === 'UDP_ESTABLISHED' && c.status.path === 'direct', `${name} direct again`, RELAY_RECOVERY_WAIT_MS);
      const after = c.statuses.slice(from);
      const firstBack = after.find((s) => s.frame.status === 'UDP_ESTABLISHED' && after.slice(0, after.indexOf(s)).some((w) => w.frame.status === 'UDP_WAITING'));
      if (firstBack) report.extra(`flush->${name} established again (${firstBack.frame.path})`, firstBack.at - flushedAt);
      report.extra(`flush->${name} direct`, direct(c, from)!.at - flushedAt);
      // Never closed; only the ways the README gives: relay, waiting (peer_timeout), established.
      for (const s of after) {
        expect(s.frame.status).not.toBe('CLOSED');
        if (s.frame.status === 'UDP_WAITING') expect(s.frame.reason).toBe('peer_timeout');
        if (s.frame.status === 'UDP_ESTABLISHED' && s.frame.path === 'relay') expect(s.frame.peer).toBe(r.at);
      }
    }
    // Direct at each other's current public endpoints: a's new port, b's kept one.
    expect(a.status).toMatchObject({ status: 'UDP_ESTABLISHED', family: 'ipv4', path: 'direct', peer: endpoint(lab.site('b').public4, UDP_PORT) });
    const newPort = Number(b.status!.peer!.split(':').at(-1));
    expect(b.status).toMatchObject({ status: 'UDP_ESTABLISHED', family: 'ipv4', path: 'direct', peer: endpoint(lab.site('a').public4, newPort) });
    expect(newPort).toBeGreaterThanOrEqual(REBIND_PORTS.low);
    expect(newPort).toBeLessThanOrEqual(REBIND_PORTS.high);
    report.extra('a remapped to port', newPort);
    report.extra('trail a', a.trail().slice(3).join(' '));
    report.extra('trail b', b.trail().slice(3).join(' '));
    await exchange(a, b, 'after', AFTER_RECOVERY_MESSAGES);
    expect([...a.errors, ...b.errors]).toEqual([]);
  }, 2 * RELAY_RECOVERY_WAIT_MS);

  it('14 direct traffic blocked between the NATs, then unblocked: relay first, then direct, with no message lost in the switch', async () => {
    // Two cone NATs that could punch, but the internet drops what goes between their public
    // addresses (not what goes to the relay) until the stream runs; then it lets it through.
    const lab = await buildLab({
      a: { nat: 'endpoint-independent', ipv6: 'absent' },
      b: { nat: 'endpoint-independent', ipv6: 'absent' },
    });
    await lab.blockSites('a', 'b');
    const [a1, b1] = [lab.host('a1'), lab.host('b1')];
    const r = await sessionRelay(lab.servers4[0]!);
    const [A, B] = await Promise.all([server(a1, {}, r.flags), server(b1, {}, r.flags)]);
    const a = client(a1, A, [lab.site('b').public4]);
    const b = client(b1, B, [lab.site('a').public4]);

    const [ea, eb] = await bothEstablished(a, b);
    for (const frame of [ea, eb]) expect(frame).toMatchObject({ family: 'ipv4', path: 'relay', peer: r.at, relay: r.at });
    for (const [name, c] of [['a', a], ['b', b]] as const) {
      expect(c.trail()).toEqual(['CONNECTED', 'UDP_WAITING/ipv4', 'UDP_ESTABLISHED/ipv4']);
      report.extra(`${name} open->relay`, c.statuses[2]!.at - c.openedAt!);
    }

    // A steady stream both ways (STREAM_BURST each way every PACE_MS); the block goes mid-stream.
    const STREAM_BURST = 2;
    const STREAM_BEFORE_MS = 1000;
    const STREAM_AFTER_MS = 1000;
    const SWITCH_WAIT_MS = 10_000;
    const directFrame = (c: LabClient) => c.statuses.slice(3).find((s) => s.frame.status === 'UDP_ESTABLISHED' && s.frame.path === 'direct');
    const receivedAtSwitch = new Map<LabClient, number>();
    const started = performance.now();
    let unblockedAt: number | null = null;
    let bothDirectAt: number | null = null;
    let sent = 0;
    let blocked = 0;
    for (;;) {
      for (let j = 0; j < STREAM_BURST; j++, sent++) {
        a.send(message('stream>', sent));
        b.send(message('stream<', sent));
      }
      await sleep(PACE_MS);
      const now = performance.now();
      for (const c of [a, b]) if (!receivedAtSwitch.has(c) && directFrame(c)) receivedAtSwitch.set(c, c.data.length);
      if (unblockedAt === null && now - started >= STREAM_BEFORE_MS) {
        blocked = await lab.blockedPackets();
        await lab.unblockSites();
        unblockedAt = performance.now();
      }
      if (unblockedAt !== null && bothDirectAt === null && receivedAtSwitch.size === 2) bothDirectAt = now;
      if (bothDirectAt !== null && now - bothDirectAt >= STREAM_AFTER_MS) break;
      if (unblockedAt !== null && bothDirectAt === null && now - unblockedAt > SWITCH_WAIT_MS) {
        throw new Error(`no direct path ${SWITCH_WAIT_MS} ms after the unblock; trails ${JSON.stringify([a.trail(), b.trail()])}`);
      }
    }
    const [toB, toA] = await Promise.all([b.waitForData(sent), a.waitForData(sent)]);
    await sleep(300); // a duplicate would land by now
    expect(toB).toEqual(expectedStream('stream>', sent));
    expect(toA).toEqual(expectedStream('stream<', sent));

    for (const [name, c] of [['a', a], ['b', b]] as const) {
      const frame = directFrame(c)!;
      expect(frame.frame).toMatchObject({ family: 'ipv4', path: 'direct', peer: endpoint(lab.site(name === 'a' ? 'b' : 'a').public4, UDP_PORT) });
      expect(c.trail()).toEqual(['CONNECTED', 'UDP_WAITING/ipv4', 'UDP_ESTABLISHED/ipv4', 'UDP_ESTABLISHED/ipv4']);
      report.extra(`unblock->${name} direct`, frame.at - unblockedAt!);
      // The switch came mid-stream: messages arrived before the direct frame and after it.
      const before = receivedAtSwitch.get(c)!;
      expect(before).toBeGreaterThan(0);
      expect(before).toBeLessThan(sent);
      report.extra(`${name} msgs before/after direct`, `${before}/${sent - before}`);
    }
    // The internet did drop the direct punches while the block stood.
    expect(blocked).toBeGreaterThan(0);
    report.extra('direct packets dropped by the block', blocked);
    report.extra('msgs each way', sent);
    expect([...a.errors, ...b.errors]).toEqual([]);
  }, 60_000);
});
