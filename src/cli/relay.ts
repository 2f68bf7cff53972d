/**
 * `autoprox relay [options]`: the relay role (README, "Relays"). Prints one JSON "listening"
 * line on stdout (with `url` and `udp`), logs JSON lines, exits 0 on SIGTERM/SIGINT.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { envName } from '../config.js';
import { createLogger } from '../log.js';
import { RELAY_OPTIONS, resolveRelayConfig } from '../relay/relay-config.js';
import { startRelay, type RelayHandle } from '../relay/start-relay.js';
import { unknownEnv, unknownEnvMessage } from './unknown-env.js';
import { findUnknownFlag, unknownFlagMessage } from './unknown-flag.js';
import { EXIT_FAILURE, EXIT_OK, UsageError } from './usage.js';

/** A generated relay secret's size (bytes, base64url on stderr). */
const GENERATED_SECRET_BYTES = 32;

const FLAGS = {
  ...Object.fromEntries(RELAY_OPTIONS.map((o) => [o.flag, { type: o.kind === 'bool' ? ('boolean' as const) : ('string' as const) }])),
  help: { type: 'boolean' as const },
};

export function relayUsage(): string {
  return [
    'usage: autoprox relay [options]',
    '',
    ...RELAY_OPTIONS.map((o) => {
      const flag = o.kind === 'bool' ? `--${o.flag}` : `--${o.flag} <${o.unit ?? 'value'}>`;
      return `  ${flag.padEnd(36)} ${o.description}${o.default === null ? '' : ` (default ${o.default})`}; env ${envName(o.flag)}`;
    }),
    '',
  ].join('\n');
}

export async function runRelay(args: string[]): Promise<number | 'running'> {
  const unknown = findUnknownFlag(args, FLAGS);
  if (unknown) throw new UsageError(unknownFlagMessage('relay', unknown, Object.keys(FLAGS)));
  let values;
  try {
    ({ values } = parseArgs({ args, options: FLAGS, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError(`autoprox relay: ${(err as Error).message.split('\n')[0]}; \`autoprox relay --help\` lists the flags`);
  }
  if (values.help) {
    process.stdout.write(relayUsage());
    return EXIT_OK;
  }
  const { help: _help, ...flags } = values as Record<string, string | boolean | undefined>;
  const config = resolveRelayConfig(flags, process.env);
  const generated = config.relaySecret === null;
  const relaySecret = config.relaySecret ?? randomBytes(GENERATED_SECRET_BYTES).toString('base64url');
  const log = createLogger(config.logLevel);
  for (const unknown of unknownEnv(process.env)) log.warn({ variable: unknown.name, suggestion: unknown.suggestion }, unknownEnvMessage(unknown));
  let handle: RelayHandle | null = null;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping || !handle) process.exit(EXIT_FAILURE);
    stopping = true;
    process.stderr.write(`autoprox relay: ${signal}: closing\n`);
    handle.close().then(
      () => process.exit(EXIT_OK),
      () => process.exit(EXIT_FAILURE),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  handle = await startRelay({ ...config, relaySecret }, { log });
  // The listening line is the contract (where it listens): printed at any log level.
  if (log.isLevelEnabled('info')) log.info({ url: handle.url, udp: handle.udp }, 'listening');
  else process.stdout.write(`${JSON.stringify({ level: 'info', time: Date.now(), msg: 'listening', url: handle.url, udp: handle.udp })}\n`);
  if (generated) {
    process.stderr.write(
      [
        'autoprox relay: no --relay-secret given, so this run uses a random one; servers that use this relay need it:',
        relaySecret,
        `autoprox relay: e.g. autoprox serve --relay <this host>:${handle.udp.ipv4} --relay-secret=${relaySecret}`,
        '',
      ].join('\n'),
    );
  }
  return 'running';
}
