/**
 * What a newcomer sees when something is off (issue 14, "the first five minutes"): one line that
 * names the flag, the variable or the remedy, never a usage screen or a stack trace.
 */
import { spawnSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, killAllServers, startServerProcess } from '../helpers/server-process.js';

const held: Array<Server | Socket> = [];
afterEach(async () => {
  for (const h of held.splice(0)) h.close();
  await killAllServers();
});

/** A TCP port on loopback held by someone else. */
async function takenTcpPort(): Promise<number> {
  const server = createServer();
  held.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

/** A UDP port held by someone else on every IPv4 address (as autoprox binds it). */
async function takenUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  held.push(socket);
  await new Promise<void>((resolve) => socket.bind(0, '0.0.0.0', resolve));
  return socket.address().port;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: 10_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('unknown flags', () => {
  it('serve: one line with a suggestion and where to get help, exit 2, no usage screen', () => {
    const r = run(['serve', '--port', '0', '--udpport', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('autoprox serve: unknown flag --udpport (did you mean --udp-port?); `autoprox serve --help` lists the flags\n');
  });

  it('serve: a flag missing its value is one line too', () => {
    const r = run(['serve', '--port']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^autoprox serve: .*--port.*; `autoprox serve --help` lists the flags$/)]);
  });

  it('token: the same line, and --help lists its flags', () => {
    const r = run(['token', '--sub', 'x', '--admn']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('autoprox token: unknown flag --admn (did you mean --admin?); `autoprox token --help` lists the flags\n');
    const help = run(['token', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--admin/);
  });
});

describe('a port already in use', () => {
  it('the HTTP/WebSocket port: one line naming --port (and 0), EADDRINUSE once, exit 1', async () => {
    const port = await takenTcpPort();
    const r = run(['serve', '--port', String(port), '--udp-port', '0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `autoprox: could not start: HTTP listen on 127.0.0.1:${port} failed: EADDRINUSE (port ${port} is in use, perhaps by another autoprox): give --port another port, or --port 0 for any free port\n`,
    );
  });

  it('the UDP port: one line naming --udp-port (and 0), exit 1', async () => {
    const port = await takenUdpPort();
    const r = run(['serve', '--port', '0', '--udp-port', String(port), '--no-ipv6']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `autoprox: could not start: UDP ipv4 bind failed: EADDRINUSE (port ${port} is in use, perhaps by another autoprox): give --udp-port another port, or --udp-port 0 for any free port\n`,
    );
  });

  it('the inspector relay port: one line naming --inspect-port, exit 1, no crash', async () => {
    const port = await takenTcpPort();
    const r = run(['serve', '--port', '0', '--udp-port', '0', '--inspect', '--inspect-port', String(port)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^autoprox: could not start: .*EADDRINUSE \\(port ${port} is in use.*\\): give --inspect-port another port, or --inspect-port 0 for any free port\n$`));
  });
});

describe('npm start on the embedded default (a random secret)', () => {
  it('prints the live page URL with an admin token of this run, and a status command that runs as printed', async () => {
    const s = await startServerProcess(['--udp-port', '0']);
    const deadline = Date.now() + 5000;
    while (!s.stderr.some((l) => l.includes(' status --url ')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const page = s.stderr.find((l) => l.trim().startsWith(`${s.url}/?access_token=`));
    expect(page, s.stderr.join('\n')).toBeDefined();
    const url = new URL(page!.trim());
    const token = url.searchParams.get('access_token')!;
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    expect(claims).toMatchObject({ sub: 'demo-admin', apx_admin: true });
    // The live page's own API takes it: an admin token of this run, not the 403 of the demo token.
    const api = await fetch(`${s.url}/v0/sessions?access_token=${token}`);
    expect(api.status).toBe(200);
    expect(await api.json()).toEqual({ total: 0, sessions: [] });
    expect((await fetch(url)).status).toBe(200);
    // The status line, as printed (`node dist/src/cli.js status --url U --token=T`).
    const command = s.stderr.find((l) => l.includes(' status --url '))!.trim().split(/\s+/);
    const status = run(command.slice(command.indexOf('status')));
    expect(status).toEqual({ code: 0, stdout: 'no live sessions\n', stderr: '' });
    expect(s.logs.join('\n')).not.toContain(token);
  });
});

describe('an unknown AUTOPROX_* variable', () => {
  it('is warned about once at start, with the variable meant; known ones (status\'s token, the test switches) are not', async () => {
    const s = await startServerProcess(['--udp-port', '0', '--jwt-secret', 'a-secret-of-thirty-two-bytes-or-more-0123'], {
      AUTOPROX_UDPPORT: '40000',
      AUTOPROX_TOKEN: 'for status, not serve',
      AUTOPROX_REQUIRE_REDIS: '1',
    });
    const warnings = s.logs.map((l) => JSON.parse(l) as { level: number | string; msg: string; variable?: string }).filter((l) => l.variable !== undefined);
    expect(warnings).toEqual([
      expect.objectContaining({
        variable: 'AUTOPROX_UDPPORT',
        suggestion: 'AUTOPROX_UDP_PORT',
        msg: 'AUTOPROX_UDPPORT is not a variable autoprox reads, so it is ignored (did you mean AUTOPROX_UDP_PORT?)',
      }),
    ]);
    expect(s.logs.join('\n')).not.toContain('AUTOPROX_TOKEN');
  });
});
