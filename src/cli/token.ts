/**
 * `autoprox token --sub NAME [--ttl 1h] [--admin] [--max-sessions N] [--targets RULES]`: mints an
 * HS256 token with the configured secret, with the optional autoprox claims.
 */
import { parseArgs } from 'node:util';
import { CLAIM_ADMIN, CLAIM_MAX_SESSIONS, CLAIM_TARGETS } from '../auth/claims.js';
import { mintToken, parseTtl } from '../auth/token.js';
import { parseTargetRules } from '../net/target-policy.js';
import { envName } from '../config.js';
import { findUnknownFlag, unknownFlagMessage } from './unknown-flag.js';
import { UsageError } from './usage.js';

export const DEFAULT_TOKEN_TTL = '1h';

/** The flags of `autoprox token`. */
const TOKEN_OPTIONS = {
  sub: { type: 'string' },
  ttl: { type: 'string', default: DEFAULT_TOKEN_TTL },
  'jwt-secret': { type: 'string' },
  admin: { type: 'boolean', default: false },
  'max-sessions': { type: 'string' },
  targets: { type: 'string' },
  help: { type: 'boolean' },
} as const;

export const TOKEN_USAGE = `usage: autoprox token --sub NAME [--ttl 1h] [--admin] [--max-sessions N] [--targets RULES] [--jwt-secret S]
  --sub <name>          the token subject
  --ttl <duration>      validity: 90s, 15m, 1h or 2d (default ${DEFAULT_TOKEN_TTL})
  --admin               may read /v0/sessions, /v0/stream and the live page
  --max-sessions <n>    at most n concurrent sessions for this subject
  --targets <CIDRs>     comma-separated CIDRs (optionally :port or :lo-hi) the sessions may send to
  --jwt-secret <secret> the server's HS256 secret; env AUTOPROX_JWT_SECRET`;

export async function tokenCommand(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const unknown = findUnknownFlag(args, TOKEN_OPTIONS);
  if (unknown !== null) throw new UsageError(unknownFlagMessage('token', unknown, Object.keys(TOKEN_OPTIONS)));
  let parsed;
  try {
    parsed = parseArgs({ args, options: TOKEN_OPTIONS, strict: true, allowPositionals: false });
  } catch (err) {
    throw new UsageError(`token: ${(err as Error).message}`);
  }
  const { values } = parsed;
  if (values.help) return TOKEN_USAGE;
  const claims: Record<string, unknown> = {};
  if (values.admin) claims[CLAIM_ADMIN] = true;
  if (values['max-sessions'] !== undefined) {
    const n = Number(values['max-sessions']);
    if (!/^\d+$/.test(values['max-sessions']) || n < 1) throw new UsageError('token: --max-sessions must be a whole number of at least 1');
    claims[CLAIM_MAX_SESSIONS] = n;
  }
  if (values.targets !== undefined) {
    const rules = parseTargetRules(values.targets);
    if ('error' in rules) throw new UsageError(`token: --targets: ${rules.error}`);
    claims[CLAIM_TARGETS] = rules.map((r) => r.text);
  }
  const secret = values['jwt-secret'] ?? env[envName('jwt-secret')];
  if (!secret) throw new UsageError(`token: needs --jwt-secret or ${envName('jwt-secret')} (the server's secret)`);
  if (!values.sub) throw new UsageError('token: needs --sub NAME (the token subject)');
  const ttl = parseTtl(values.ttl);
  if (ttl === null) throw new UsageError(`token: --ttl must look like 90s, 15m, 1h or 2d, got "${values.ttl}"`);
  return mintToken(secret, values.sub, ttl, new Date(), claims);
}
