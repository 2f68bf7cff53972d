/** `autoprox token --sub NAME [--ttl 1h]`: mints an HS256 token with the configured secret. */
import { parseArgs } from 'node:util';
import { mintToken, parseTtl } from '../auth/token.js';
import { envName } from '../config.js';
import { UsageError } from './usage.js';

export const DEFAULT_TOKEN_TTL = '1h';

export async function tokenCommand(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const { values } = parseArgs({
    args,
    options: {
      sub: { type: 'string' },
      ttl: { type: 'string', default: DEFAULT_TOKEN_TTL },
      'jwt-secret': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const secret = values['jwt-secret'] ?? env[envName('jwt-secret')];
  if (!secret) throw new UsageError(`token: needs --jwt-secret or ${envName('jwt-secret')} (the server's secret)`);
  if (!values.sub) throw new UsageError('token: needs --sub NAME (the token subject)');
  const ttl = parseTtl(values.ttl);
  if (ttl === null) throw new UsageError(`token: --ttl must look like 90s, 15m, 1h or 2d, got "${values.ttl}"`);
  return mintToken(secret, values.sub, ttl);
}
