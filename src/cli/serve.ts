/** `autoprox serve`: runs the server until SIGTERM/SIGINT. */
import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { relative } from 'node:path';
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import { CLAIM_ADMIN } from '../auth/claims.js';
import { mintToken } from '../auth/token.js';
import { hs256Verifier, loadVerifier } from '../auth/verifier.js';
import { loadConfigFile } from '../config-file.js';
import { missingNodeFlags } from '../deploy/node-flags.js';
import { connectRedis, RedisUnavailable } from '../limits/redis.js';
import { ConfigError } from '../errors.js';
import { startInspector } from '../observe/inspector.js';
import { resolveConfig, SERVE_OPTIONS, type ServeConfig } from '../config.js';
import { createLogger } from '../log.js';
import { PROXY_PATH, StartError, startServer, type ServerHandle } from '../server.js';
import { generateKey } from './keygen.js';
import { unknownEnv, unknownEnvMessage } from './unknown-env.js';
import { findUnknownFlag, unknownFlagMessage } from './unknown-flag.js';
import { UsageError } from './usage.js';

/** Validity of the token printed when the server runs on a generated secret (s). */
export const DEMO_TOKEN_TTL_S = 24 * 3600;
/** The subject of the admin token printed when the server runs on a generated secret. */
export const DEMO_ADMIN_SUBJECT = 'demo-admin';
/** The secret generated when none is configured (bytes of randomness). */
const GENERATED_SECRET_BYTES = 32;

/** The flags `serve` (and `config print`) take: every option, `--config` and `--help`. */
function serveFlagOptions(): Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> {
  const options = Object.fromEntries(SERVE_OPTIONS.map((o) => [o.flag, { type: o.kind === 'bool' ? ('boolean' as const) : ('string' as const), ...(o.kind === 'hostports' ? { multiple: true } : {}) }]));
  return { ...options, config: { type: 'string' }, help: { type: 'boolean' } };
}

/** A parser message on one line, without its final full stop. */
function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, ' ').replace(/\.$/, '');
}

/** Parses serve's flags; a bad command line is one line (a UsageError, exit 2), never the whole usage text. */
export function parseServeFlags(args: string[]): Record<string, string | boolean | undefined> {
  const options = serveFlagOptions();
  const unknown = findUnknownFlag(args, options);
  if (unknown !== null) throw new UsageError(unknownFlagMessage('serve', unknown, Object.keys(options)));
  try {
    const { values } = parseArgs({ args, options, strict: true, allowPositionals: false });
    // A repeatable flag (--stun A --stun B) is one comma-separated value, as in the environment.
    return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : v]));
  } catch (err) {
    throw new UsageError(`autoprox serve: ${oneLine((err as Error).message)}; \`autoprox serve --help\` lists the flags`);
  }
}

/** How a person would run this CLI again from here: `autoprox` or `node dist/src/cli.js`. */
function selfCommand(): string {
  const script = process.argv[1] ?? '';
  const rel = relative(process.cwd(), script);
  return script && !rel.startsWith('..') && rel.endsWith('.js') ? `node ${rel}` : 'autoprox';
}

function wsUrl(httpUrl: string): string {
  return httpUrl.replace(/^http(s?)/, 'ws$1') + PROXY_PATH;
}

/** A --host name must resolve, or the configuration is wrong (exit 2, naming --host). */
async function checkHostResolves(host: string): Promise<void> {
  if (isIP(host) !== 0) return;
  try {
    await lookup(host);
  } catch (err) {
    throw new ConfigError('host', `--host: "${host}" does not resolve (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** Flags, environment and `--config FILE` (or AUTOPROX_CONFIG), in that order of precedence. */
export async function configFrom(flags: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv): Promise<ServeConfig> {
  const path = (flags.config as string | undefined) ?? env.AUTOPROX_CONFIG;
  const file = path ? await loadConfigFile(path) : null;
  return resolveConfig(flags, env, file);
}

export async function serveCommand(args: string[], env: NodeJS.ProcessEnv): Promise<{ config: ServeConfig; handle: ServerHandle } | 'help'> {
  const flags = parseServeFlags(args);
  if (flags.help) return 'help';
  const config = await configFrom(flags, env);
  await checkHostResolves(config.host);
  const log = createLogger(config.logLevel);
  for (const unknown of unknownEnv(env)) log.warn({ variable: unknown.name, suggestion: unknown.suggestion }, unknownEnvMessage(unknown));
  const configured = await loadVerifier(config);
  // The embedded default: a random secret for this run, and a token printed to try it with.
  const secret = configured ? null : randomBytes(GENERATED_SECRET_BYTES).toString('base64url');
  if (config.jwtSecret !== null && Buffer.byteLength(config.jwtSecret) < 32) {
    log.warn('the JWT secret is shorter than 32 bytes: HS256 secrets should have at least 256 bits');
  }
  let redis: Redis | null = null;
  let inspector: Awaited<ReturnType<typeof startInspector>> | null = null;
  let handle: ServerHandle;
  try {
    if (config.redisUrl !== null) redis = await connectRedis(config.redisUrl, log);
    inspector = config.inspect ? await startInspector(config.inspectPort) : null;
    handle = await startServer(config, {
      log,
      verifier: configured ?? hs256Verifier(secret!),
      redis,
      // Two clients of this one server may meet through its own UDP port in the demo.
      allowSelfTarget: secret !== null,
      ...(inspector ? { inspect: inspector.inspect } : {}),
    });
  } catch (err) {
    // Nothing may keep the process alive after a failed start: the caller exits 1.
    redis?.disconnect();
    await inspector?.close();
    if (err instanceof RedisUnavailable) throw new StartError(err.message);
    if (err instanceof StartError || err instanceof ConfigError) throw err;
    const e = err as NodeJS.ErrnoException;
    // Only the inspector's relay can have failed here without a StartError of its own.
    const bind = config.inspect && inspector === null && e.code ? { listener: 'inspect' as const, action: `inspector relay listen on 127.0.0.1:${config.inspectPort}`, port: config.inspectPort, errno: e.code } : null;
    throw new StartError(e.code === 'EADDRINUSE' ? `--inspect-port ${config.inspectPort} is taken: ${e.message}` : e.message, bind);
  }
  log.info({ url: handle.url, udp: handle.udp }, 'listening');
  const missing = missingNodeFlags(process.execArgv, process.env.NODE_OPTIONS);
  if (missing.length > 0) log.info({ missing }, `node runs without ${missing.join(' ')}: garbage collection pauses are longer (README "Node flags"); npm start, the systemd unit and the container give them`);
  if (inspector) log.info({ url: inspector.url, stream: `${inspector.url.replace(/^http/, 'ws')}stream` }, 'inspector');

  if (secret !== null) {
    const token = await mintToken(secret, 'demo', DEMO_TOKEN_TTL_S);
    // Without it nobody could open the live page of this run: its secret is shown to no one.
    const admin = await mintToken(secret, DEMO_ADMIN_SUBJECT, DEMO_TOKEN_TTL_S, new Date(), { [CLAIM_ADMIN]: true });
    const peerHost = config.udpBind4 === '0.0.0.0' ? '127.0.0.1' : config.udpBind4;
    process.stderr.write(
      [
        'autoprox: no --jwt-secret given, so this run uses a random secret: tokens from other runs will not work,',
        "autoprox: and two clients of this server may meet through this server's own UDP port (denied once a secret is configured, unless --allow-self-target).",
        `autoprox: a token for this run (sub "demo", valid ${DEMO_TOKEN_TTL_S / 3600} h):`,
        token,
        'autoprox: try it: run this in two terminals (same key: the two sessions find each other through this server), then type lines:',
        `  ${selfCommand()} connect ${wsUrl(handle.url)} --host ${peerHost} --port ${handle.udp.ipv4} --key=${generateKey()} --token=${token}`,
        `autoprox: watch the sessions: the live page, with an admin token of this run (sub "${DEMO_ADMIN_SUBJECT}", valid ${DEMO_TOKEN_TTL_S / 3600} h), or the same as a table:`,
        `  ${handle.url}/?access_token=${admin}`,
        `  ${selfCommand()} status --url ${handle.url} --token=${admin}`,
        '',
      ].join('\n'),
    );
  }
  return { config, handle };
}
