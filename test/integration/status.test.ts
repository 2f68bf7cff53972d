/**
 * `autoprox status` against real server processes: a real session established between two
 * servers, real admin and non-admin tokens, a port nobody listens on.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { CLI, FAST_FLAGS, killAllServers, startServerProcess, TEST_SECRET } from '../helpers/server-process.js';
import { TestClient } from '../helpers/ws-client.js';

const clients: TestClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await killAllServers();
});

function status(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'status', ...args], { env: { PATH: process.env.PATH, ...env }, timeout: 10_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

/** A port on loopback that nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('autoprox status', () => {
  it('lists an established session as a table (and as the raw JSON with --json), the token from --token or AUTOPROX_TOKEN', async () => {
    const [A, B] = await Promise.all([0, 1].map(() => startServerProcess(['--udp-port', '0', '--no-ipv6', '--jwt-secret', TEST_SECRET, ...FAST_FLAGS])));
    const token = await mintToken(TEST_SECRET, 'alice', 600);
    const admin = await mintToken(TEST_SECRET, 'ops', 600, new Date(), { apx_admin: true });
    const key = randomBytes(32).toString('base64url');
    const a = new TestClient(A!.wsUrl, { hosts: ['127.0.0.1'], port: B!.udp.ipv4, key, token });
    const b = new TestClient(B!.wsUrl, { hosts: ['127.0.0.1'], port: A!.udp.ipv4, key, token });
    clients.push(a, b);
    await Promise.all([a.waitForStatus('UDP_ESTABLISHED'), b.waitForStatus('UDP_ESTABLISHED')]);

    const json = await status(['--url', A!.url, '--token', admin, '--json']);
    expect(json.code).toBe(0);
    const listed = JSON.parse(json.stdout) as { total: number; sessions: Array<{ id: string; state: string; peer: string }> };
    expect(listed.total).toBe(1);
    const session = listed.sessions[0]!;
    expect(session).toMatchObject({ state: 'udp_established', peer: `127.0.0.1:${B!.udp.ipv4}` });

    const table = await status(['--url', A!.url], { AUTOPROX_TOKEN: admin });
    expect(table).toMatchObject({ code: 0, stderr: '' });
    const [header, row, ...rest] = table.stdout.trimEnd().split('\n');
    expect(header!.split(/\s+/)).toEqual(['ID', 'STATE', 'PATH', 'FAMILY', 'PEER', 'RTT', 'IN', 'OUT', 'AGE']);
    expect(rest).toEqual([]);
    expect(row).toMatch(new RegExp(`^${session.id}\\s+udp_established\\s+direct\\s+ipv4\\s+127\\.0\\.0\\.1:${B!.udp.ipv4}\\s+[\\d.]+ ms\\s+\\d+(\\.\\d)? \\w?B\\s+\\d+(\\.\\d)? \\w?B\\s+\\d+s$`));
  });

  it('says "no live sessions" when there are none', async () => {
    const s = await startServerProcess(['--udp-port', '0', '--jwt-secret', TEST_SECRET]);
    const admin = await mintToken(TEST_SECRET, 'ops', 600, new Date(), { apx_admin: true });
    expect(await status(['--url', s.url, '--token', admin])).toEqual({ code: 0, stdout: 'no live sessions\n', stderr: '' });
  });

  it('a refused token (401), a token without the admin claim (403), no server: one line each, exit 1', async () => {
    const s = await startServerProcess(['--udp-port', '0', '--jwt-secret', TEST_SECRET]);
    const other = await mintToken('another-secret-0123456789-0123456789', 'ops', 600, new Date(), { apx_admin: true });
    const user = await mintToken(TEST_SECRET, 'alice', 600);

    const refused = await status(['--url', s.url, '--token', other]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/^autoprox status: the token is refused \(HTTP 401 invalid_token: .*\): mint an admin token with `autoprox token --sub ops --admin --jwt-secret=S`.*\n$/);

    const forbidden = await status(['--url', s.url, '--token', user]);
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr).toMatch(/^autoprox status: the token is not an admin token \(HTTP 403 forbidden: .*apx_admin.*\): mint an admin token with `autoprox token --sub ops --admin/);
    expect(forbidden.stderr.trimEnd().split('\n')).toHaveLength(1);

    const port = await closedPort();
    const nobody = await status(['--url', `http://127.0.0.1:${port}`, '--token', user]);
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toBe(`autoprox status: no autoprox server answers at http://127.0.0.1:${port} (ECONNREFUSED): start one with \`npm start\` or \`autoprox serve\`, or give --url\n`);
  });

  it('without a token, or with an unknown flag: one line, exit 2', async () => {
    const none = await status([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^autoprox status: needs an admin token, as --token T or AUTOPROX_TOKEN/);
    const typo = await status(['--tokn', 'x']);
    expect(typo).toMatchObject({ code: 2, stderr: 'autoprox status: unknown flag --tokn (did you mean --token?); `autoprox status --help` lists the flags\n' });
  });
});
