/**
 * Regression (found by review): `serve --inspect` (or `--redis-url`) with a UDP port that is taken prints
 * "could not start" but never exits: the inspector relay / the Redis connection, opened before
 * startServer(), keep the event loop alive (nothing closes them on the failure path). README:
 * exit code 1 ("a port is taken"); systemd's Restart=on-failure never fires.
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { expect, it } from 'vitest';
import { redisAvailable, redisRequired, startRedis } from '../helpers/redis-server.js';
import { CLI } from '../helpers/server-process.js';

async function serveOnTakenPort(extra: string[]): Promise<{ code: number | string | null; stderr: string }> {
  const taken = createSocket('udp4');
  await new Promise<void>((r) => taken.bind(0, '0.0.0.0', r));
  const port = taken.address().port;
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--udp-port', String(port), '--jwt-secret=0123456789abcdef0123456789abcdef', ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  const code = await Promise.race([
    new Promise<number | null>((r) => proc.once('exit', (c) => r(c))),
    new Promise<string>((r) => setTimeout(() => r('still running after 5 s'), 5000)),
  ]);
  proc.kill('SIGKILL');
  taken.close();
  return { code, stderr };
}

it('exits 1 when the UDP port is taken, with --inspect', async () => {
  const { code, stderr } = await serveOnTakenPort(['--inspect', '--inspect-port', '0']);
  expect(stderr).toMatch(/could not start: UDP ipv4 bind failed: EADDRINUSE/);
  expect(code).toBe(1);
});

// Where Redis is required (CI: AUTOPROX_REQUIRE_REDIS=1) this runs, and fails without redis-server.
it.runIf(redisAvailable || redisRequired)('exits 1 when the UDP port is taken, with --redis-url', async () => {
  const redis = await startRedis();
  try {
    const { code, stderr } = await serveOnTakenPort(['--redis-url', redis.url]);
    expect(stderr).toMatch(/could not start: UDP ipv4 bind failed: EADDRINUSE/);
    expect(code).toBe(1);
  } finally {
    await redis.stop();
  }
});
