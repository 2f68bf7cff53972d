/**
 * Runs `autoprox serve` as a real child process (the built CLI), the way outside tests and
 * users do, and reads its `listening` line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

export const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
export const TEST_SECRET = 'test-secret-0123456789-0123456789-abcdef';
/** Fast timings for tests: 20 ms punches, 50 ms heartbeats, 400 ms peer timeout. */
export const FAST_FLAGS = ['--punch-ms', '20', '--heartbeat-ms', '50', '--peer-timeout-ms', '400', '--fallback-ms', '300'];
const START_TIMEOUT_MS = 10_000;

export interface ServerProcess {
  proc: ChildProcess;
  url: string;
  wsUrl: string;
  udp: { ipv4: number; ipv6: number | null };
  /** stdout lines (JSON logs) seen so far. */
  logs: string[];
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ServerProcess>();

export function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
}

export async function startServerProcess(args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  assertBuilt();
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const stderr: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  createInterface({ input: proc.stderr! }).on('line', (line) => stderr.push(line));
  const listening = await new Promise<{ url: string; udp: { ipv4: number; ipv6: number | null } }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not listen within ${START_TIMEOUT_MS} ms: ${stderr.join('\n')}`)), START_TIMEOUT_MS);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      logs.push(line);
      const entry = JSON.parse(line) as { msg: string; url: string; udp: { ipv4: number; ipv6: number | null } };
      if (entry.msg === 'listening') {
        clearTimeout(timer);
        resolve(entry);
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening: ${stderr.join('\n')}`));
    });
  });
  const server: ServerProcess = {
    proc,
    url: listening.url,
    wsUrl: `${listening.url.replace(/^http/, 'ws')}/v0/ws/proxy`,
    udp: listening.udp,
    logs,
    stderr,
    exited,
    kill(signal = 'SIGKILL') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      running.delete(server);
      return exited;
    },
  };
  running.add(server);
  return server;
}

/** Kills every server process still running (for afterEach). */
export async function killAllServers(): Promise<void> {
  await Promise.all([...running].map((s) => s.kill('SIGKILL')));
}
