/** A real server in the test process (real sockets, real jose tokens), logs silenced. */
import { hs256Verifier } from '../../src/auth/token.js';
import { resolveConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startServer, type ServerHandle } from '../../src/server.js';
import { TEST_SECRET } from './server-process.js';

export async function startInProcess(flags: Record<string, string | boolean> = {}): Promise<ServerHandle & { wsUrl: string }> {
  const config = resolveConfig({ port: '0', 'udp-port': '0', 'jwt-secret': TEST_SECRET, 'log-level': 'silent', ...flags });
  const handle = await startServer(config, { log: createLogger('silent'), verifier: hs256Verifier(TEST_SECRET) });
  return { ...handle, wsUrl: `${handle.url.replace(/^http/, 'ws')}/v0/ws/proxy` };
}
