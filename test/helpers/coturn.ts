/**
 * A real STUN server for tests: Debian's coturn (`turnserver`) in STUN-only mode on loopback.
 * CI installs it and sets AUTOPROX_REQUIRE_COTURN=1, so there these tests can never be skipped.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { bindingAnswerOf, decodeStun, encodeBindingRequest } from '../../src/protocol/stun.js';
import { freePort } from './free-port.js';

export const coturnAvailable = spawnSync('turnserver', ['--version']).status === 0;
export const coturnRequired = process.env.AUTOPROX_REQUIRE_COTURN === '1';

export interface Coturn {
  port: number;
  output: string[];
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;

/** Starts turnserver listening on 127.0.0.1 and ::1 at one free port; resolves once it answers STUN. */
export async function startCoturn(): Promise<Coturn> {
  const port = await freePort();
  const proc: ChildProcess = spawn(
    'turnserver',
    ['-n', '--stun-only', '--no-tls', '--no-dtls', '--no-cli', '--no-rfc5780', '--listening-ip=127.0.0.1', '--listening-ip=::1', `--listening-port=${port}`, '--log-file=stdout', '--simple-log'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output: string[] = [];
  proc.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
  proc.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await answers(port))) {
    if (Date.now() > deadline || proc.exitCode !== null) {
      proc.kill('SIGKILL');
      throw new Error(`turnserver did not answer STUN on 127.0.0.1:${port}: ${output.join('').slice(-2000)}`);
    }
  }
  return {
    port,
    output,
    async stop() {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** One Binding request to 127.0.0.1:port, answered within 200 ms? */
async function answers(port: number): Promise<boolean> {
  const socket = createSocket('udp4');
  try {
    return await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 200);
      socket.on('message', (m) => {
        const message = decodeStun(m);
        if (typeof message !== 'string' && bindingAnswerOf(message)?.ok) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      socket.send(encodeBindingRequest(randomBytes(12)), port, '127.0.0.1');
    });
  } finally {
    socket.close();
  }
}
