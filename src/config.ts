/**
 * The server's configuration: one table of options (flag, environment variable, default,
 * range, description), and one `resolveConfig` that checks every value and every cross-field
 * rule. Precedence: flag > environment (AUTOPROX_<NAME>) > default.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { ConfigError } from './errors.js';
import { parseHost } from './net/address.js';
import { parseHostPortList, type HostPort } from './net/host-port.js';
import { parseTargetRules, type TargetRule } from './net/target-policy.js';
import { MAX_APP_PAYLOAD_BYTES } from './protocol/packet.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ServeConfig {
  host: string;
  port: number;
  udpPort: number;
  udpBind4: string;
  udpBind6: string;
  /** false with --no-ipv6. */
  ipv6: boolean;
  /** true when --udp-bind6 was given: failing to bind it is then fatal. */
  ipv6Required: boolean;
  /** null: a random secret is generated for this run. */
  jwtSecret: string | null;
  punchMs: number;
  heartbeatMs: number;
  peerTimeoutMs: number;
  fallbackMs: number;
  punchTimeoutMs: number;
  maxPayload: number;
  logLevel: LogLevel;
  shutdownGraceMs: number;
  drainDelayMs: number;
  // auth
  jwtPublicKey: string | null;
  jwksUrl: string | null;
  jwtIssuer: string | null;
  jwtAudience: string | null;
  jwtClockToleranceS: number;
  sessionOutlivesToken: boolean;
  // limits
  maxSessions: number;
  maxSessionsPerSubject: number;
  upgradesPerIpPerS: number;
  limitLoopback: boolean;
  authFailuresPerIp: number;
  authFailureWindowS: number;
  authBlockS: number;
  clientMsgsPerS: number;
  clientBytesPerS: number;
  udpOutPerS: number;
  udpPreauthPerS: number;
  udpPreauthTotalPerS: number;
  redisUrl: string | null;
  // target policy
  allowTargets: TargetRule[] | null;
  denyTargets: TargetRule[];
  allowSelfTarget: boolean;
  // observability
  inspect: boolean;
  inspectPort: number;
  // deployment
  tlsCert: string | null;
  tlsKey: string | null;
  trustProxy: TargetRule[];
  wsPingMs: number;
  // public endpoint discovery
  /** STUN servers asked for this server's public endpoints, in order of preference (--stun, repeatable). */
  stun: HostPort[];
  // relays
  /** Relays sessions fall back to when no direct path proves itself (--relay, repeatable), the first preferred. */
  relay: HostPort[];
  /** The relays' admission secret; required with --relay. */
  relaySecret: string | null;
  /** How long a session punches directly without proof before it also tries the relays (ms; 0 = at once). */
  relayAfterMs: number;
}

type Kind = 'int' | 'string' | 'host' | 'bool' | 'secret' | 'ipv4' | 'ipv6' | 'level' | 'url' | 'redis' | 'targets' | 'hostports';

/** `--stun` servers at most (each is asked on each family every refresh). */
export const MAX_STUN_SERVERS = 16;

/** One option of a command: `serve`'s (below) or `relay`'s (src/relay/relay-config.ts). */
export interface OptionSpec<Key extends string = keyof ServeConfig> {
  flag: string;
  key: Key;
  kind: Kind;
  default: string | number | boolean | null;
  min?: number;
  max?: number;
  unit?: string;
  /** A boolean flag that turns its key off (`--no-ipv6` sets `ipv6` false). */
  invert?: true;
  description: string;
}

export const SERVE_OPTIONS: OptionSpec[] = [
  { flag: 'host', key: 'host', kind: 'host', default: '127.0.0.1', description: 'address the HTTP/WebSocket server listens on' },
  { flag: 'port', key: 'port', kind: 'int', default: 8080, min: 0, max: 65535, description: 'HTTP/WebSocket port (0 = any free port)' },
  { flag: 'udp-port', key: 'udpPort', kind: 'int', default: 40000, min: 0, max: 65535, description: 'UDP port for peers, the same number on IPv4 and IPv6 where possible (0 = any free port)' },
  { flag: 'udp-bind4', key: 'udpBind4', kind: 'ipv4', default: '0.0.0.0', description: 'IPv4 address the UDP socket binds to' },
  { flag: 'udp-bind6', key: 'udpBind6', kind: 'ipv6', default: '::', description: 'IPv6 address the UDP socket binds to (given explicitly, a failure to bind it is fatal)' },
  { flag: 'no-ipv6', key: 'ipv6', kind: 'bool', default: false, invert: true, description: 'IPv4 only: no IPv6 socket, IPv6 candidates are skipped' },
  { flag: 'jwt-secret', key: 'jwtSecret', kind: 'secret', default: null, description: 'HS256 secret for client tokens, as UTF-8 bytes (default: random for this run, and a token is printed)' },
  { flag: 'punch-ms', key: 'punchMs', kind: 'int', default: 200, min: 10, max: 60_000, unit: 'ms', description: 'heartbeat interval while waiting (punching)' },
  { flag: 'heartbeat-ms', key: 'heartbeatMs', kind: 'int', default: 1000, min: 10, max: 600_000, unit: 'ms', description: 'heartbeat interval while established' },
  { flag: 'peer-timeout-ms', key: 'peerTimeoutMs', kind: 'int', default: 5000, min: 20, max: 3_600_000, unit: 'ms', description: 'silence after which an established session goes back to waiting (> heartbeat-ms)' },
  { flag: 'fallback-ms', key: 'fallbackMs', kind: 'int', default: 3000, min: 0, max: 3_600_000, unit: 'ms', description: 'how long IPv6 candidates are punched alone before IPv4' },
  { flag: 'punch-timeout-ms', key: 'punchTimeoutMs', kind: 'int', default: 60_000, min: 0, max: 2_147_483_647, unit: 'ms', description: 'how long a waiting session punches before it closes (0 = for ever)' },
  { flag: 'max-payload', key: 'maxPayload', kind: 'int', default: 1200, min: 1, max: MAX_APP_PAYLOAD_BYTES, unit: 'bytes', description: 'largest client message (application bytes per datagram)' },
  { flag: 'log-level', key: 'logLevel', kind: 'level', default: 'info', description: `log level: ${LOG_LEVELS.join(', ')}` },
  { flag: 'shutdown-grace-ms', key: 'shutdownGraceMs', kind: 'int', default: 5000, min: 0, max: 600_000, unit: 'ms', description: 'how long SIGTERM/SIGINT wait for sessions to close' },
  { flag: 'drain-delay-ms', key: 'drainDelayMs', kind: 'int', default: 0, min: 0, max: 3_600_000, unit: 'ms', description: 'on SIGTERM/SIGINT, how long /readyz says draining and new upgrades get 503 while open sessions go on, before they are closed' },
  // auth
  { flag: 'jwt-public-key', key: 'jwtPublicKey', kind: 'string', default: null, unit: 'file', description: 'verify tokens with this public key file instead: PEM or JWK; RSA (RS256), EC P-256 (ES256) or Ed25519 (EdDSA)' },
  { flag: 'jwks-url', key: 'jwksUrl', kind: 'url', default: null, unit: 'url', description: 'verify tokens with the keys of this JWKS URL instead (cached 10 min; RS256, ES256, EdDSA)' },
  { flag: 'jwt-issuer', key: 'jwtIssuer', kind: 'string', default: null, description: 'require this `iss` claim' },
  { flag: 'jwt-audience', key: 'jwtAudience', kind: 'string', default: null, description: 'require this `aud` claim' },
  { flag: 'jwt-clock-tolerance-s', key: 'jwtClockToleranceS', kind: 'int', default: 5, min: 0, max: 3600, unit: 's', description: 'clock skew accepted on `exp` and `nbf`' },
  { flag: 'session-outlives-token', key: 'sessionOutlivesToken', kind: 'bool', default: false, description: 'keep sessions open after their token expires (default: close them with code 4003)' },
  // limits
  { flag: 'max-sessions', key: 'maxSessions', kind: 'int', default: 20_000, min: 1, max: 1_000_000, description: 'concurrent sessions on this server' },
  { flag: 'max-sessions-per-subject', key: 'maxSessionsPerSubject', kind: 'int', default: 0, min: 0, max: 1_000_000, description: 'concurrent sessions per token subject, across instances with --redis-url (0 = no limit; a token can set its own with apx_max_sessions)' },
  { flag: 'upgrades-per-ip-per-s', key: 'upgradesPerIpPerS', kind: 'int', default: 20, min: 0, max: 1_000_000, unit: 'per s', description: 'WebSocket upgrade attempts per client IP per second (0 = no limit)' },
  { flag: 'limit-loopback', key: 'limitLoopback', kind: 'bool', default: false, description: 'apply the per-IP limits to loopback clients too (by default they are exempt: local programs share that address)' },
  { flag: 'auth-failures-per-ip', key: 'authFailuresPerIp', kind: 'int', default: 10, min: 0, max: 1_000_000, description: 'failed authentications per client IP within --auth-failure-window-s before a block (0 = no limit)' },
  { flag: 'auth-failure-window-s', key: 'authFailureWindowS', kind: 'int', default: 60, min: 1, max: 86_400, unit: 's', description: 'window in which failed authentications are counted' },
  { flag: 'auth-block-s', key: 'authBlockS', kind: 'int', default: 300, min: 1, max: 86_400, unit: 's', description: 'how long a client IP is refused after too many failed authentications' },
  { flag: 'client-msgs-per-s', key: 'clientMsgsPerS', kind: 'int', default: 50_000, min: 0, max: 100_000_000, unit: 'per s', description: 'messages per second a client may send in one session (0 = no limit)' },
  { flag: 'client-bytes-per-s', key: 'clientBytesPerS', kind: 'int', default: 64 * 1024 * 1024, min: 0, max: 100_000_000_000, unit: 'bytes/s', description: 'payload bytes per second a client may send in one session (0 = no limit)' },
  { flag: 'udp-out-per-s', key: 'udpOutPerS', kind: 'int', default: 60_000, min: 0, max: 100_000_000, unit: 'per s', description: 'ceiling on datagrams one session sends per second, heartbeats included (0 = no limit)' },
  { flag: 'udp-preauth-per-s', key: 'udpPreauthPerS', kind: 'int', default: 10_000, min: 0, max: 100_000_000, unit: 'per s', description: 'datagrams per second per peer source (IPv4 address, IPv6 /64) that need authenticating (not from an established peer) (0 = no limit)' },
  { flag: 'udp-preauth-total-per-s', key: 'udpPreauthTotalPerS', kind: 'int', default: 5_000, min: 0, max: 100_000_000, unit: 'per s', description: 'datagrams per second, from all sources together, that may cost a key derivation or an open outside an established path (0 = no limit)' },
  { flag: 'redis-url', key: 'redisUrl', kind: 'redis', default: null, unit: 'url', description: 'share the per-IP and per-subject limits with other instances through this Redis (redis://host:port/db)' },
  // target policy
  { flag: 'allow-targets', key: 'allowTargets', kind: 'targets', default: null, unit: 'CIDRs', description: 'comma-separated CIDRs (optionally :port or :lo-hi) sessions may send to; when given, nothing else' },
  { flag: 'deny-targets', key: 'denyTargets', kind: 'targets', default: null, unit: 'CIDRs', description: 'comma-separated CIDRs (optionally :port or :lo-hi) sessions may never send to' },
  { flag: 'allow-self-target', key: 'allowSelfTarget', kind: 'bool', default: false, description: "allow this server's own UDP endpoints as targets (two clients of one server meeting through it)" },
  // observability
  { flag: 'inspect', key: 'inspect', kind: 'bool', default: false, description: 'stream every actor (supervisor, sessions, sockets) to the Stately inspector through a relay on 127.0.0.1:--inspect-port' },
  { flag: 'inspect-port', key: 'inspectPort', kind: 'int', default: 4242, min: 0, max: 65535, description: 'port of the inspector relay (loopback only; 0 = any free port)' },
  // deployment
  { flag: 'tls-cert', key: 'tlsCert', kind: 'string', default: null, unit: 'file', description: 'serve https/wss with this certificate chain (PEM); reloaded on SIGHUP' },
  { flag: 'tls-key', key: 'tlsKey', kind: 'string', default: null, unit: 'file', description: 'the private key (PEM) of --tls-cert; reloaded on SIGHUP' },
  { flag: 'trust-proxy', key: 'trustProxy', kind: 'targets', default: null, unit: 'CIDRs', description: 'reverse proxies (CIDRs) whose X-Forwarded-For names the client address' },
  { flag: 'ws-ping-ms', key: 'wsPingMs', kind: 'int', default: 30_000, min: 100, max: 3_600_000, unit: 'ms', description: 'WebSocket ping interval; a client that misses one is dropped (keeps proxies from timing idle sessions out)' },
  // public endpoint discovery
  { flag: 'stun', key: 'stun', kind: 'hostports', default: null, unit: 'host:port', description: 'a STUN server to learn this server\'s public endpoints from, asked from the peer UDP sockets at start and every 60 s (repeatable; [v6]:port for IPv6 literals; comma-separated in the environment); with two at different addresses, whether the NAT maps endpoint-independently' },
  // relays
  { flag: 'relay', key: 'relay', kind: 'hostports', default: null, unit: 'host:port', description: 'a relay (autoprox relay) for pairs that cannot punch through: a session that has no direct path within --relay-after-ms also binds there, and the relay also serves as a STUN server (repeatable, the first preferred; both servers of a pair must share one; [v6]:port for IPv6 literals; names resolved at start)' },
  { flag: 'relay-secret', key: 'relaySecret', kind: 'secret', default: null, description: "the relays' admission secret (their --relay-secret); required with --relay" },
  { flag: 'relay-after-ms', key: 'relayAfterMs', kind: 'int', default: 2000, min: 0, max: 3_600_000, unit: 'ms', description: 'how long a session punches directly without proof before it also tries the relays (0 = at once)' },
];

export function envName(flag: string): string {
  return `AUTOPROX_${flag.toUpperCase().replace(/-/g, '_')}`;
}

/** Flags as parsed by node:util parseArgs: strings, and booleans for bool options. */
export type RawFlags = Record<string, string | boolean | undefined>;

/** Checks one option's value from `source` (a flag, a variable, a file key); throws ConfigError naming the option. */
export function parseOptionValue(spec: OptionSpec<string>, raw: string | boolean, source: string): ServeConfig[keyof ServeConfig] {
  const name = source;
  switch (spec.kind) {
    case 'bool': {
      if (typeof raw === 'boolean') return spec.invert ? !raw : raw;
      const text = raw.trim().toLowerCase();
      if (!['1', 'true', 'yes', '0', 'false', 'no', ''].includes(text)) {
        throw new ConfigError(spec.flag, `${name}: expected true or false, got "${raw}"`);
      }
      const on = ['1', 'true', 'yes'].includes(text);
      return spec.invert ? !on : on;
    }
    case 'url':
    case 'redis': {
      const schemes = spec.kind === 'url' ? ['http:', 'https:'] : ['redis:', 'rediss:'];
      let url: URL | null = null;
      try {
        url = typeof raw === 'string' ? new URL(raw) : null;
      } catch {
        url = null;
      }
      if (!url || !schemes.includes(url.protocol)) {
        throw new ConfigError(spec.flag, `${name}: expected a ${schemes.map((p) => `${p}//`).join(' or ')} URL, got "${raw}"`);
      }
      return raw as string;
    }
    case 'targets': {
      if (typeof raw !== 'string') throw new ConfigError(spec.flag, `${name}: expected a comma-separated list of CIDRs`);
      const rules = parseTargetRules(raw);
      if ('error' in rules) throw new ConfigError(spec.flag, `${name}: ${rules.error}`);
      return rules;
    }
    case 'hostports': {
      if (typeof raw !== 'string') throw new ConfigError(spec.flag, `${name}: expected HOST:PORT`);
      const list = parseHostPortList(raw);
      if ('error' in list) throw new ConfigError(spec.flag, `${name}: ${list.error}`);
      if (list.length > MAX_STUN_SERVERS) throw new ConfigError(spec.flag, `${name}: at most ${MAX_STUN_SERVERS} servers, got ${list.length}`);
      return list;
    }
    case 'int': {
      const text = String(raw).trim();
      if (!/^\d+$/.test(text)) throw new ConfigError(spec.flag, `${name}: expected a whole number${spec.unit ? ` of ${spec.unit}` : ''}, got "${raw}"`);
      const value = Number(text);
      if (value < (spec.min ?? 0) || value > (spec.max ?? Number.MAX_SAFE_INTEGER)) {
        throw new ConfigError(spec.flag, `${name}: must be from ${spec.min} to ${spec.max}${spec.unit ? ` ${spec.unit}` : ''}, got ${value}`);
      }
      return value;
    }
    case 'ipv4':
      if (typeof raw !== 'string' || !isIPv4(raw)) throw new ConfigError(spec.flag, `${name}: expected an IPv4 address, got "${raw}"`);
      return raw;
    case 'ipv6':
      if (typeof raw !== 'string' || !isIPv6(raw)) throw new ConfigError(spec.flag, `${name}: expected an IPv6 address, got "${raw}"`);
      return raw;
    case 'level':
      if (!LOG_LEVELS.includes(raw as LogLevel)) throw new ConfigError(spec.flag, `${name}: expected one of ${LOG_LEVELS.join(', ')}, got "${raw}"`);
      return raw as LogLevel;
    case 'secret':
      if (typeof raw !== 'string' || raw.length === 0) throw new ConfigError(spec.flag, `${name}: must not be empty`);
      return raw;
    case 'string':
      if (typeof raw !== 'string' || raw.trim().length === 0) throw new ConfigError(spec.flag, `${name}: must not be empty`);
      return raw;
    case 'host': {
      const parsed = typeof raw === 'string' ? parseHost(raw) : { error: 'is not an address' };
      if ('error' in parsed) throw new ConfigError(spec.flag, `${name}: expected an IP address or a host name, got "${raw}"`);
      return raw as string;
    }
  }
}

/** Resolves flags and environment into a checked config. Throws ConfigError naming the option. */
/** Rule lists whose absence means "none" rather than "not configured". */
const EMPTY_LIST_KEYS = new Set<keyof ServeConfig>(['denyTargets', 'trustProxy', 'stun', 'relay']);

/** Options from a config file (`--config`), keyed by flag name; see config-file.ts. */
export interface FileValues {
  path: string;
  values: RawFlags;
}

export function resolveConfig(flags: RawFlags, env: NodeJS.ProcessEnv = {}, file: FileValues | null = null): ServeConfig {
  const config: Record<string, unknown> = {};
  const given = new Set<keyof ServeConfig>();
  for (const spec of SERVE_OPTIONS) {
    const flagValue = flags[spec.flag];
    const envValue = env[envName(spec.flag)];
    const fileValue = file?.values[spec.flag];
    if (flagValue !== undefined) {
      config[spec.key] = parseOptionValue(spec, flagValue, `--${spec.flag}`);
      given.add(spec.key);
    } else if (envValue !== undefined) {
      config[spec.key] = parseOptionValue(spec, envValue, envName(spec.flag));
      given.add(spec.key);
    } else if (fileValue !== undefined) {
      config[spec.key] = parseOptionValue(spec, fileValue, `config file ${file!.path}: key "${spec.flag}"`);
      given.add(spec.key);
    } else {
      config[spec.key] = spec.kind === 'bool' && spec.invert ? !spec.default : EMPTY_LIST_KEYS.has(spec.key) ? [] : spec.default;
    }
  }
  const result = config as unknown as ServeConfig;
  result.ipv6Required = given.has('udpBind6') && result.ipv6;
  if (result.peerTimeoutMs <= result.heartbeatMs) {
    throw new ConfigError(
      'peer-timeout-ms',
      `--peer-timeout-ms (${result.peerTimeoutMs}) must be greater than --heartbeat-ms (${result.heartbeatMs}), or every established session would time out between two heartbeats`,
    );
  }
  if (result.peerTimeoutMs <= result.punchMs) {
    throw new ConfigError('peer-timeout-ms', `--peer-timeout-ms (${result.peerTimeoutMs}) must be greater than --punch-ms (${result.punchMs})`);
  }
  if ((result.tlsCert === null) !== (result.tlsKey === null)) {
    const missing = result.tlsCert === null ? 'tls-cert' : 'tls-key';
    throw new ConfigError(missing, `--tls-cert and --tls-key go together: --${missing} is missing`);
  }
  if (result.relay.length > 0 && result.relaySecret === null) {
    throw new ConfigError('relay-secret', `--relay needs --relay-secret (the relays' admission secret, their own --relay-secret)`);
  }
  const sources = (['jwt-secret', 'jwt-public-key', 'jwks-url'] as const).filter((flag) => {
    const key = SERVE_OPTIONS.find((o) => o.flag === flag)!.key;
    return result[key] !== null;
  });
  if (sources.length > 1) {
    throw new ConfigError(sources[1]!, `give only one way to verify tokens: ${sources.map((f) => `--${f}`).join(' and ')} were both given`);
  }
  return result;
}
