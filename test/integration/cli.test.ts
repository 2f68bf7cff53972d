/**
 * The command line as users and outside tests run it: `node dist/src/cli.js ...`.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, killAllServers, startServerProcess, TEST_SECRET } from '../helpers/server-process.js';
import { TestClient } from '../helpers/ws-client.js';

const children: ChildProcessWithoutNullStreams[] = [];
const clients: TestClient[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await killAllServers();
});

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: 10_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A running `autoprox connect`, with its stdout and stderr lines. */
function connect(args: string[]) {
  const proc = spawn(process.execPath, [CLI, 'connect', ...args], { env: { PATH: process.env.PATH } });
  children.push(proc);
  const out: string[] = [];
  const err: string[] = [];
  createInterface({ input: proc.stdout }).on('line', (l) => out.push(l));
  createInterface({ input: proc.stderr }).on('line', (l) => err.push(l));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, out, err, exited };
}

async function until(predicate: () => boolean, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('autoprox serve', () => {
  it('writes one JSON "listening" line with url and udp ports, and logs JSON lines', async () => {
    const s = await startServerProcess(['--udp-port', '0', '--jwt-secret', TEST_SECRET]);
    const line = JSON.parse(s.logs.find((l) => l.includes('"listening"'))!);
    expect(line).toMatchObject({ msg: 'listening', url: s.url, udp: { ipv4: expect.any(Number), ipv6: expect.any(Number) } });
    expect(line.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    for (const l of s.logs) expect(() => JSON.parse(l)).not.toThrow();
  });

  it('starts with no configuration: prints a ready-to-use token and a connect command that works', async () => {
    const s = await startServerProcess(['--udp-port', '0']);
    await until(() => s.stderr.some((l) => l.includes(' connect ws://')), 'the example command');
    const command = s.stderr.find((l) => l.includes(' connect ws://'))!;
    const args = command.trim().split(/\s+/);
    const connectArgs = args.slice(args.indexOf('connect') + 1);
    const a = connect(connectArgs);
    const b = connect(connectArgs);
    await until(() => [a, b].every((c) => c.err.some((l) => l.includes('UDP_ESTABLISHED'))), 'both established');
    a.proc.stdin.write('hello from a\n');
    b.proc.stdin.write('hello from b\n');
    await until(() => b.out.includes('hello from a') && a.out.includes('hello from b'), 'lines to cross');
    // The printed token is a real token of this run.
    const token = s.stderr[s.stderr.findIndex((l) => l.includes('a token for this run')) + 1]!;
    expect(token.split('.')).toHaveLength(3);
    expect(JSON.stringify(s.logs)).not.toContain(token);
  });

  it('two `autoprox connect` clients exchange lines through two servers (the README demo)', async () => {
    const [A, B] = await Promise.all(
      [0, 1].map(() => startServerProcess(['--udp-port', '0', '--jwt-secret', TEST_SECRET, '--punch-ms', '20'])),
    );
    const token = run(['token', '--sub', 'demo', '--ttl', '10m'], { AUTOPROX_JWT_SECRET: TEST_SECRET }).stdout.trim();
    const key = run(['keygen']).stdout.trim();
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const a = connect([A!.wsUrl, '--host', '127.0.0.1', '--port', String(B!.udp.ipv4), `--key=${key}`, '--token', token]);
    const b = connect([B!.wsUrl, '--host', '127.0.0.1', '--port', String(A!.udp.ipv4), `--key=${key}`, '--token', token]);
    a.proc.stdin.write('line one\nline two\n'); // sent before the path is up: queued, then delivered
    await until(() => b.out.length >= 2, 'b to receive');
    expect(b.out).toEqual(['line one', 'line two']);
    const statuses = b.err.map((l) => JSON.parse(l)).filter((f) => f.type === 'status').map((f) => f.status);
    expect(statuses).toEqual(['CONNECTED', 'UDP_WAITING', 'UDP_ESTABLISHED']);
    // Logs carry neither the key nor the token.
    for (const server of [A!, B!]) {
      const logs = server.logs.join('\n');
      expect(logs).not.toContain(key);
      expect(logs).not.toContain(token);
    }
  });

  it('never logs the key or the token, even when the token is given as access_token', async () => {
    const s = await startServerProcess(['--udp-port', '0', '--jwt-secret', TEST_SECRET, '--log-level', 'trace']);
    const token = run(['token', '--sub', 'x', '--jwt-secret', TEST_SECRET]).stdout.trim();
    const key = randomBytes(32).toString('base64url');
    const c = new TestClient(`${s.wsUrl}?access_token=${token}`, { hosts: ['127.0.0.1'], port: 9, key, token: '' });
    clients.push(c);
    await c.waitForStatus('UDP_WAITING');
    await c.close();
    await until(() => s.logs.some((l) => l.includes('session ended')), 'session end log');
    const logs = s.logs.join('\n');
    expect(logs).not.toContain(key);
    expect(logs).not.toContain(token);
  });

  it('takes every flag from AUTOPROX_<NAME> too', async () => {
    const s = await startServerProcess([], { AUTOPROX_UDP_PORT: '0', AUTOPROX_NO_IPV6: '1', AUTOPROX_JWT_SECRET: TEST_SECRET });
    expect(s.udp.ipv6).toBeNull();
    expect(s.stderr.some((l) => l.includes('a token for this run'))).toBe(false);
  });

  it.each([
    [['--punch-ms', 'fast'], '--punch-ms'],
    [['--port', '70000'], '--port'],
    [['--udp-bind4', '::1'], '--udp-bind4'],
    [['--heartbeat-ms', '5000'], '--peer-timeout-ms'],
    [['--no-such-flag'], '--no-such-flag'],
  ])('refuses bad configuration %j with exit code 2 and a message naming %s', (args, name) => {
    const r = run(['serve', '--port', '0', '--udp-port', '0', ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(name);
  });

  it('refuses a bad environment variable with a message naming it', () => {
    const r = run(['serve'], { AUTOPROX_MAX_PAYLOAD: '0' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('AUTOPROX_MAX_PAYLOAD');
  });

  it('exits 1 with a clear message when the UDP port is taken', async () => {
    const s = await startServerProcess(['--udp-port', '0', '--jwt-secret', TEST_SECRET, '--no-ipv6']);
    const r = run(['serve', '--port', '0', '--udp-port', String(s.udp.ipv4), '--no-ipv6']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/could not start: UDP ipv4 bind failed: EADDRINUSE/);
  });

  it('exits 1 with a clear message when the HTTP port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    const r = run(['serve', '--port', String(port), '--udp-port', '0']);
    blocker.close();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/could not start: HTTP listen on 127\.0\.0\.1:\d+ failed: EADDRINUSE/);
  });
});

describe('autoprox token / keygen / connect', () => {
  it('token needs a secret and a subject', () => {
    expect(run(['token', '--sub', 'x']).code).toBe(2);
    expect(run(['token', '--jwt-secret', TEST_SECRET]).code).toBe(2);
    expect(run(['token', '--sub', 'x', '--jwt-secret', TEST_SECRET, '--ttl', 'soon']).code).toBe(2);
  });

  it('token --admin --max-sessions --targets puts the autoprox claims in the token', async () => {
    const r = run(['token', '--sub', 'ops', '--admin', '--max-sessions', '3', '--targets', '10.0.0.0/8,[2001:db8::/32]:40000', '--jwt-secret', TEST_SECRET]);
    expect(r.code).toBe(0);
    const claims = JSON.parse(Buffer.from(r.stdout.trim().split('.')[1]!, 'base64url').toString());
    expect(claims).toMatchObject({ sub: 'ops', apx_admin: true, apx_max_sessions: 3, apx_targets: ['10.0.0.0/8', '[2001:db8::/32]:40000'] });
    expect(run(['token', '--sub', 'x', '--targets', '10.0.0.0/99', '--jwt-secret', TEST_SECRET])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--targets/) });
  });

  it('accepts a secret that starts with "-" given as --jwt-secret=VALUE', async () => {
    const secret = '-starts-with-a-dash-and-is-long-enough';
    const s = await startServerProcess(['--udp-port', '0', `--jwt-secret=${secret}`]);
    const token = run(['token', '--sub', 'x', `--jwt-secret=${secret}`]).stdout.trim();
    const c = new TestClient(s.wsUrl, { hosts: ['127.0.0.1'], port: 9, key: randomBytes(32).toString('base64url'), token });
    clients.push(c);
    await c.waitForStatus('CONNECTED');
  });

  it('connect reports a refusal and exits 1', async () => {
    const s = await startServerProcess(['--udp-port', '0', '--jwt-secret', TEST_SECRET]);
    const c = connect([s.wsUrl, '--host', '127.0.0.1', '--port', '9', `--key=${randomBytes(32).toString('base64url')}`, '--token', 'bad']);
    expect(await c.exited).toBe(1);
    expect(c.err.join('\n')).toMatch(/refused with HTTP 401: .*invalid_token/);
  });

  it('connect refuses a bad command line with exit code 2', () => {
    const r = run(['connect', 'http://x', '--host', 'h', '--port', '1', '--key', 'k', '--token', 't']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/ws:\/\/ or wss:\/\//);
  });
});
