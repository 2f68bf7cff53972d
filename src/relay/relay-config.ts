/**
 * `autoprox relay`'s configuration: one table of options (flag, AUTOPROX_<NAME>, default, range),
 * checked by the same rules as serve's (config.ts). Precedence: flag > environment > default.
 */
import { envName, parseOptionValue, type LogLevel, type OptionSpec, type RawFlags } from '../config.js';

export interface RelayConfig {
  udpPort: number;
  udpBind4: string;
  udpBind6: string;
  ipv6: boolean;
  host: string;
  port: number;
  /** null: a random secret is generated for this run (and printed on stderr). */
  relaySecret: string | null;
  logLevel: LogLevel;
  maxBindings: number;
  maxBindingsPerSource: number;
  bindingDatagramsPerS: number;
  bindingBytesPerS: number;
  idleMs: number;
  unprovenPerSourcePerS: number;
  unprovenTotalPerS: number;
}

export const RELAY_OPTIONS: OptionSpec<keyof RelayConfig>[] = [
  { flag: 'udp-port', key: 'udpPort', kind: 'int', default: 3478, min: 0, max: 65535, description: 'UDP port for servers and STUN, the same number on IPv4 and IPv6 where possible (0 = any free port)' },
  { flag: 'udp-bind4', key: 'udpBind4', kind: 'ipv4', default: '0.0.0.0', description: 'IPv4 address the UDP socket binds to' },
  { flag: 'udp-bind6', key: 'udpBind6', kind: 'ipv6', default: '::', description: 'IPv6 address the UDP socket binds to' },
  { flag: 'no-ipv6', key: 'ipv6', kind: 'bool', default: false, invert: true, description: 'IPv4 only: no IPv6 socket' },
  { flag: 'host', key: 'host', kind: 'host', default: '127.0.0.1', description: 'address the HTTP server (/healthz, /readyz, /metrics) listens on' },
  { flag: 'port', key: 'port', kind: 'int', default: 8090, min: 0, max: 65535, description: 'HTTP port for /healthz, /readyz and /metrics (0 = any free port)' },
  { flag: 'relay-secret', key: 'relaySecret', kind: 'secret', default: null, description: 'admission secret the servers that may use this relay share (default: random for this run, printed on stderr)' },
  { flag: 'log-level', key: 'logLevel', kind: 'level', default: 'info', description: 'log level: fatal, error, warn, info, debug, trace, silent' },
  { flag: 'max-bindings', key: 'maxBindings', kind: 'int', default: 20_000, min: 1, max: 10_000_000, description: 'channel ends bound at once, in all (a relayed session pair uses two)' },
  { flag: 'max-bindings-per-source', key: 'maxBindingsPerSource', kind: 'int', default: 4096, min: 1, max: 10_000_000, description: 'channel ends bound at once from one source (an IPv4 address or an IPv6 /64)' },
  { flag: 'binding-datagrams-per-s', key: 'bindingDatagramsPerS', kind: 'int', default: 5000, min: 0, max: 10_000_000, unit: 'per s', description: 'datagrams per second one end may send through the relay (0 = no limit)' },
  { flag: 'binding-bytes-per-s', key: 'bindingBytesPerS', kind: 'int', default: 5_000_000, min: 0, max: 10_000_000_000, unit: 'bytes per s', description: 'bytes per second one end may send through the relay (0 = no limit)' },
  { flag: 'idle-ms', key: 'idleMs', kind: 'int', default: 30_000, min: 1000, max: 3_600_000, unit: 'ms', description: 'an end that sent nothing for this long is unbound' },
  { flag: 'unproven-per-source-per-s', key: 'unprovenPerSourcePerS', kind: 'int', default: 20, min: 0, max: 1_000_000, unit: 'per s', description: 'answers (STUN, challenges) and MAC checks per second for one source before it has proven anything (0 = no limit)' },
  { flag: 'unproven-total-per-s', key: 'unprovenTotalPerS', kind: 'int', default: 20_000, min: 0, max: 10_000_000, unit: 'per s', description: 'the same for the whole relay, however many sources (0 = no limit)' },
];

/** Resolves flags and environment into a checked relay config. Throws ConfigError naming the option. */
export function resolveRelayConfig(flags: RawFlags, env: NodeJS.ProcessEnv = {}): RelayConfig {
  const config: Record<string, unknown> = {};
  for (const spec of RELAY_OPTIONS) {
    const flagValue = flags[spec.flag];
    const envValue = env[envName(spec.flag)];
    if (flagValue !== undefined) config[spec.key] = parseOptionValue(spec, flagValue, `--${spec.flag}`);
    else if (envValue !== undefined) config[spec.key] = parseOptionValue(spec, envValue, envName(spec.flag));
    else config[spec.key] = spec.kind === 'bool' && spec.invert ? !spec.default : spec.default;
  }
  return config as unknown as RelayConfig;
}
