/**
 * `autoprox connect` as a newcomer meets it (it runs on the client library now): input piped
 * in is delivered and the command ends by itself at end of input; a server that is not running,
 * a mistyped flag and a bad key each get one line that says what to do.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { freePort } from '../helpers/free-port.js';
import { CLI, FAST_FLAGS, killAllServers, startServerProcess, TEST_SECRET } from '../helpers/server-process.js';
import { eventually } from '../helpers/waiter.js';

let token: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  token = await mintToken(TEST_SECRET, 'connect-cli-test', 600);
});

afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  await killAllServers();
});

function connect(args: string[], input?: string) {
  const proc = spawn(process.execPath, [CLI, 'connect', ...args], { env: { PATH: process.env.PATH }, stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(proc);
  const out: string[] = [];
  const err: string[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => out.push(l));
  createInterface({ input: proc.stderr! }).on('line', (l) => err.push(l));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  if (input !== undefined) proc.stdin!.end(input);
  return { proc, out, err, exited };
}

const run = (args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, 'connect', ...args], { env: { PATH: process.env.PATH }, encoding: 'utf8', timeout: 10_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe('autoprox connect', () => {
  it('piped input: every line reaches the peer, then the command ends by itself (exit 0) at end of input', async () => {
    const flags = ['--udp-port', '0', '--jwt-secret', TEST_SECRET, ...FAST_FLAGS];
    const [A, B] = await Promise.all([startServerProcess(flags), startServerProcess(flags)]);
    const key = randomBytes(32).toString('base64url');
    const receiver = connect([B.wsUrl, '--host', '127.0.0.1', '--port', String(A.udp.ipv4), `--key=${key}`, `--token=${token}`]);
    await eventually(() => receiver.err.some((l) => l.includes('"UDP_WAITING"')), 'the receiver waiting');
    const LINES = 50;
    const input = Array.from({ length: LINES }, (_, i) => `line ${i}`).join('\n') + '\n';
    // The sender's input is all there (and ended) before its session is even established.
    const sender = connect([A.url.replace(/^http/, 'ws'), '--host', '127.0.0.1', '--port', String(B.udp.ipv4), `--key=${key}`, `--token=${token}`], input);
    expect(await sender.exited).toBe(0);
    await eventually(() => receiver.out.length === LINES, `${LINES} lines at the receiver`);
    expect(receiver.out).toEqual(Array.from({ length: LINES }, (_, i) => `line ${i}`));
    const frames = sender.err.map((l) => JSON.parse(l) as { status?: string });
    expect(frames.map((f) => f.status)).toEqual(['CONNECTED', 'UDP_WAITING', 'UDP_ESTABLISHED']);
    // The receiver is told its peer left, and goes on.
    await eventually(() => receiver.err.some((l) => l.includes('peer_closed')), 'peer_closed at the receiver');
    expect(receiver.proc.exitCode).toBeNull();
  });

  it('no server at the URL: one line saying so and how to start one, exit 1', async () => {
    const port = await freePort();
    const c = connect([`ws://127.0.0.1:${port}`, '--host', '127.0.0.1', '--port', '40000', `--key=${randomBytes(32).toString('base64url')}`, `--token=${token}`], '');
    expect(await c.exited).toBe(1);
    expect(c.err).toHaveLength(1);
    expect(c.err[0]).toMatch(new RegExp(`^autoprox connect: no autoprox server answers at ws://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\): start one with \`npm start\``));
  });

  it('a mistyped flag: one line naming it, a did-you-mean and where to get help, exit 2', () => {
    const r = run(['ws://127.0.0.1:8080', '--hots', '127.0.0.1', '--port', '1', `--key=${randomBytes(32).toString('base64url')}`, '--token=t']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual(['autoprox connect: unknown flag --hots (did you mean --host?); `autoprox connect --help` lists the flags']);
  });

  it('a bad key or port is refused before anything is sent, naming the flag', () => {
    const bad = run(['ws://127.0.0.1:8080', '--host', '127.0.0.1', '--port', '40000', '--key=short', '--token=t']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--key: must be 32 bytes in base64url/);
    expect(run(['ws://127.0.0.1:8080', '--host', '127.0.0.1', '--port', 'x', `--key=${randomBytes(32).toString('base64url')}`, '--token=t'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--port: /) });
  });

  it('--help shows the usage with --key=K and says how it ends', () => {
    const r = run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--key=K --token=T/);
    expect(r.stdout).toMatch(/end of input \(Ctrl-D\)/);
  });
});
