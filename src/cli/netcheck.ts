/**
 * `autoprox netcheck [--stun HOST:PORT ...] [--relay HOST:PORT ...] [--json]`: a one-shot
 * report, like `tailscale netcheck`: this host's public endpoint per family, whether its NAT maps
 * endpoint-independently, and each server's answer and round trip. Asks from a fresh UDP socket
 * per family (a running server's own endpoints are GET /v0/endpoints); `--relay` servers are
 * asked STUN too (a relay answers STUN Binding requests on its port). Exit 0 when at least one
 * server answered, 1 when none did, 2 for a bad command line.
 */
import { parseArgs } from 'node:util';
import type { Family } from '../../machines/endpoint.js';
import { systemClock, type Clock } from '../clock.js';
import { StunDiscovery, type EndpointsView, type StunTiming } from '../io/stun-discovery.js';
import { bindProbeSocket, type ProbeSocket } from '../io/udp-socket.actor.js';
import { createLogger } from '../log.js';
import { parseHostPortList, type HostPort } from '../net/host-port.js';
import { isStunMessage } from '../protocol/stun.js';
import { findUnknownFlag, unknownFlagMessage } from './unknown-flag.js';
import { EXIT_FAILURE, EXIT_OK, UsageError } from './usage.js';

/** The whole check takes at most this long (ms): every server is asked at once. */
export const NETCHECK_TIMEOUT_MS = 3000;
/** Requests go out at 0, 250, 750 and 1750 ms until answered (a doubling RTO). */
export const NETCHECK_TIMING: StunTiming = { rtoMs: 250, maxSends: 4, timeoutMs: NETCHECK_TIMEOUT_MS, refreshMs: 0 };

const NETCHECK_OPTIONS = {
  stun: { type: 'string', multiple: true },
  relay: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  help: { type: 'boolean' },
} as const;

export const NETCHECK_USAGE = `usage: autoprox netcheck [--stun HOST:PORT ...] [--relay HOST:PORT ...] [--json]
  --stun <host:port>   a STUN server to ask (repeatable; [v6]:port for IPv6 literals)
  --relay <host:port>  an autoprox relay to ask (it answers STUN on its port; repeatable)
  --json               print the report as JSON
Asks every server once from a fresh UDP socket per family, within ${NETCHECK_TIMEOUT_MS / 1000} s; exit 0 when at least
one answered, 1 when none did. With two servers at different addresses it tells whether this
host's NAT maps endpoint-independently (peers can punch to the endpoint STUN reports) or not.
`;

export interface NetcheckOutcome {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** The report: the endpoints view, each server labelled stun or relay. */
export interface NetcheckReport extends Omit<EndpointsView, 'servers'> {
  servers: Array<EndpointsView['servers'][number] & { kind: 'stun' | 'relay' }>;
  /** Families this host had no UDP socket for, and why. */
  unavailable: Partial<Record<Family, string>>;
}

function serverList(values: string[] | undefined, flag: string): HostPort[] {
  const list = parseHostPortList((values ?? []).join(','));
  if ('error' in list) throw new UsageError(`autoprox netcheck: --${flag}: ${list.error}`);
  return list;
}

export async function netcheckCommand(args: string[], clock: Clock = systemClock): Promise<NetcheckOutcome> {
  const unknown = findUnknownFlag(args, NETCHECK_OPTIONS);
  if (unknown !== null) throw new UsageError(unknownFlagMessage('netcheck', unknown, Object.keys(NETCHECK_OPTIONS)));
  let values;
  try {
    ({ values } = parseArgs({ args, options: NETCHECK_OPTIONS, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError(`autoprox netcheck: ${(err as Error).message.split('\n')[0]}`);
  }
  if (values.help) return { exitCode: EXIT_OK, stdout: NETCHECK_USAGE, stderr: '' };
  const stun = serverList(values.stun, 'stun');
  const relays = serverList(values.relay, 'relay');
  const relayTexts = new Set(relays.map((r) => r.text));
  const servers = [...stun, ...relays.filter((r) => !stun.some((s) => s.text === r.text))];
  if (servers.length === 0) {
    throw new UsageError('autoprox netcheck: give at least one server to ask: --stun HOST:PORT or --relay HOST:PORT (e.g. autoprox netcheck --stun stun.example.net:3478)');
  }

  const report = await check(servers, relayTexts, clock);
  const answered = report.servers.filter((s) => s.mapped !== null).length;
  const stdout = values.json ? `${JSON.stringify(report, null, 2)}\n` : reportText(report);
  if (answered > 0) return { exitCode: EXIT_OK, stdout, stderr: '' };
  return {
    exitCode: EXIT_FAILURE,
    stdout,
    stderr: `autoprox netcheck: no server answered within ${NETCHECK_TIMEOUT_MS / 1000} s (${servers.map((s) => s.text).join(', ')}): check the addresses, and that this network lets UDP out to them\n`,
  };
}

async function check(servers: HostPort[], relays: ReadonlySet<string>, clock: Clock): Promise<NetcheckReport> {
  const sockets: Partial<Record<Family, ProbeSocket>> = {};
  const unavailable: Partial<Record<Family, string>> = {};
  let discovery: StunDiscovery | null = null;
  for (const family of ['ipv4', 'ipv6'] as const) {
    const bound = await bindProbeSocket(family, (datagram, address, port) => {
      if (isStunMessage(datagram)) discovery?.receive(family, datagram, address, port);
    });
    if ('error' in bound) unavailable[family] = bound.error;
    else sockets[family] = bound;
  }
  discovery = new StunDiscovery({
    servers,
    clock,
    log: createLogger('silent'),
    timing: NETCHECK_TIMING,
    sender: {
      families: () => (['ipv6', 'ipv4'] as const).filter((f) => sockets[f] !== undefined),
      send: (to, pieces) => sockets[to.family]?.send(to, pieces) ?? false,
    },
  });
  try {
    await discovery.start();
  } finally {
    discovery.stop();
    for (const socket of Object.values(sockets)) socket.close();
  }
  const view = discovery.view();
  const order: Record<Family, number> = { ipv4: 0, ipv6: 1 };
  const listed = view.servers.map((s) => ({ ...s, kind: relays.has(s.server) ? ('relay' as const) : ('stun' as const) }));
  const relay = listed.find((s) => s.kind === 'relay' && s.mapped !== null)?.server ?? null;
  return { ...view, relay, servers: listed.sort((a, b) => order[a.family] - order[b.family]), unavailable };
}

const NAT_TEXT: Record<EndpointsView['nat'], string> = {
  'endpoint-independent': 'endpoint-independent (servers at different addresses saw the same endpoint: peers can punch to it)',
  'endpoint-dependent': 'endpoint-dependent (each destination sees another endpoint, a symmetric NAT: punching needs a relay)',
  unknown: 'unknown (needs answers from two servers at different addresses on one family)',
};

export function reportText(report: NetcheckReport): string {
  const asked = new Set(report.servers.map((s) => s.server));
  const answered = new Set(report.servers.filter((s) => s.mapped !== null).map((s) => s.server));
  const endpoint = (family: Family) => {
    const value = report[family];
    if (value) return value;
    if (report.unavailable[family]) return `none (no ${family === 'ipv4' ? 'IPv4' : 'IPv6'} socket: ${report.unavailable[family]})`;
    return `none (no server answered over ${family === 'ipv4' ? 'IPv4' : 'IPv6'})`;
  };
  // A server with no address of a family was not asked on it: no row (the JSON has it).
  const rows = report.servers.filter((s) => s.error !== 'no_address').map((s) => [s.server, s.kind, s.family, s.mapped ?? s.error ?? '', s.rttMs === null ? '-' : `${s.rttMs.toFixed(1)} ms`]);
  const header = ['server', 'kind', 'family', 'answer', 'rtt'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `  ${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}`;
  return [
    `autoprox netcheck: ${answered.size} of ${asked.size} server(s) answered (asked from a fresh UDP socket per family)`,
    '',
    `  IPv4 endpoint:  ${endpoint('ipv4')}`,
    `  IPv6 endpoint:  ${endpoint('ipv6')}`,
    `  NAT mapping:    ${NAT_TEXT[report.nat]}`,
    ...(report.relay ? [`  relay:          ${report.relay} answers`] : []),
    '',
    line(header),
    ...rows.map(line),
    '',
  ].join('\n');
}
