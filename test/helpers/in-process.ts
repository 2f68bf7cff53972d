/** A real server in the test process (real sockets, real jose tokens), logs silenced. */
import type { Redis } from 'ioredis';
import { hs256Verifier, loadVerifier, type Verifier } from '../../src/auth/verifier.js';
import { resolveConfig } from '../../src/config.js';
import { createLogger, type Logger } from '../../src/log.js';
import { startServer, type ServerDeps, type ServerHandle } from '../../src/server.js';
import { TEST_SECRET } from './server-process.js';

export type InProcessServer = ServerHandle & { wsUrl: string };

export async function startInProcess(
  flags: Record<string, string | boolean> = {},
  deps: { verifier?: Verifier; redis?: Redis; headersTimeoutMs?: number; inspect?: ServerDeps['inspect']; log?: Logger } = {},
): Promise<InProcessServer> {
  const auth = flags['jwt-public-key'] || flags['jwks-url'] ? {} : { 'jwt-secret': TEST_SECRET };
  const config = resolveConfig({ port: '0', 'udp-port': '0', 'log-level': 'silent', ...auth, ...flags });
  const verifier = deps.verifier ?? (await loadVerifier(config)) ?? hs256Verifier(TEST_SECRET);
  const handle = await startServer(config, {
    log: deps.log ?? createLogger('silent'),
    verifier,
    redis: deps.redis ?? null,
    ...(deps.headersTimeoutMs !== undefined ? { headersTimeoutMs: deps.headersTimeoutMs } : {}),
    ...(deps.inspect ? { inspect: deps.inspect } : {}),
  });
  return { ...handle, wsUrl: `${handle.url.replace(/^http/, 'ws')}/v0/ws/proxy` };
}
