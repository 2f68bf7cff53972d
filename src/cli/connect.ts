/**
 * `autoprox connect <ws-url> --host H --port P --key=K --token=T [--ca FILE] [--binary]`: a small
 * client on the client library (src/client). stdin -> session (one message per line, or raw
 * chunks with --binary); peer messages -> stdout; status and error frames -> stderr as JSON
 * lines. Ends when the session closes, on Ctrl-C, or at end of input once what was read is sent.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { AutoproxError, ClosedError, connect, RefusedError, type Session } from '../client/node.js';
import { validateOptions } from '../client/parameters.js';
import { findUnknownFlag, unknownFlagMessage } from './unknown-flag.js';
import { UsageError } from './usage.js';

/** Chunk size for --binary stdin (bytes): the server's default --max-payload. */
export const BINARY_CHUNK_BYTES = 1200;
/** Exit codes: the session closed normally (1000, 1001), or anything else. */
const EXIT_OK = 0;
const EXIT_FAILURE = 1;
/** How often the end of input looks whether the WebSocket has sent everything (ms). */
const DRAIN_POLL_MS = 10;

const FLAGS = {
  host: { type: 'string', multiple: true },
  port: { type: 'string' },
  key: { type: 'string' },
  token: { type: 'string' },
  ca: { type: 'string' },
  binary: { type: 'boolean', default: false },
  help: { type: 'boolean', default: false },
} as const;

export const CONNECT_USAGE = `usage: autoprox connect <ws-url> --host H [--host H2 ...] --port P --key=K --token=T [--ca FILE] [--binary]
  <ws-url>          this side's server: ws://127.0.0.1:8080 (the session path /v0/ws/proxy is added), or wss://...
  --host <addr>     the peer server's address or name; repeat for several candidates (IPv6 first)
  --port <port>     the peer server's UDP port
  --key=<key>       the pre-shared key both sides use (autoprox keygen); write it with = (keys may start with -)
  --token=<jwt>     a token for this side's server (autoprox token); env AUTOPROX_TOKEN
  --ca <file>       PEM of a private CA to trust for wss://
  --binary          raw stdin chunks of ${BINARY_CHUNK_BYTES} bytes instead of lines, raw bytes to stdout
stdin lines become messages, peer messages go to stdout, status and error frames to stderr (JSON lines).
It ends at end of input (Ctrl-D) once the session is established and what was read is sent, on Ctrl-C, or when the server closes the session.
`;

export interface ConnectCommand {
  url: URL;
  hosts: string[];
  port: number;
  key: string;
  token: string;
  binary: boolean;
  /** PEM of a private CA to trust for wss:// (added to, not replacing, the system's CAs). */
  ca: Buffer | null;
}

/** The command line, checked; throws a UsageError (exit 2) naming what is wrong. `null` for --help. */
export function parseConnectArgs(args: string[], env: NodeJS.ProcessEnv): ConnectCommand | null {
  const unknown = findUnknownFlag(args, FLAGS);
  if (unknown) throw new UsageError(unknownFlagMessage('connect', unknown, Object.keys(FLAGS)));
  let parsed;
  try {
    parsed = parseArgs({ args, options: FLAGS, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError(`autoprox connect: ${(err as Error).message.split('\n')[0]}; \`autoprox connect --help\` shows the usage`);
  }
  const { values, positionals } = parsed;
  if (values.help) return null;
  if (positionals.length !== 1) throw new UsageError('connect: give exactly one ws:// or wss:// URL (this side\'s server, e.g. ws://127.0.0.1:8080)');
  let url: URL;
  try {
    url = new URL(positionals[0]!);
  } catch {
    throw new UsageError(`connect: "${positionals[0]}" is not a URL`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new UsageError('connect: the URL must start with ws:// or wss://');
  const token = values.token ?? env.AUTOPROX_TOKEN;
  if (!token) throw new UsageError('connect: needs --token (or AUTOPROX_TOKEN)');
  if (!values.host?.length) throw new UsageError('connect: needs --host (repeat it for several candidates)');
  if (!values.port) throw new UsageError('connect: needs --port (the peer server UDP port)');
  if (!values.key) throw new UsageError('connect: needs --key (32 bytes, base64url; see autoprox keygen)');
  const command = { url, hosts: values.host, port: Number(values.port), key: values.key, token };
  try {
    validateOptions(command);
  } catch (err) {
    throw new UsageError(`connect: --${(err as Error).message}`);
  }
  let ca: Buffer | null = null;
  if (values.ca !== undefined) {
    try {
      ca = readFileSync(values.ca);
    } catch (err) {
      throw new UsageError(`connect: --ca: cannot read ${values.ca}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return { ...command, binary: values.binary ?? false, ca };
}

export interface ConnectIo {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** Runs the client; resolves with the process exit code. */
export async function runConnect(command: ConnectCommand, io: ConnectIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const say = (line: string) => io.stderr.write(`autoprox connect: ${line}\n`);
  let session: Session;
  try {
    session = await connect(command.url, {
      hosts: command.hosts,
      port: command.port,
      key: command.key,
      token: command.token,
      ...(command.ca ? { ca: command.ca } : {}),
      // The server's --max-payload decides (its error frame is printed), not the library's default.
      maxPayload: Number.POSITIVE_INFINITY,
    });
  } catch (err) {
    say(describeFailure(err, command.url));
    return EXIT_FAILURE;
  }
  const frame = (value: object) => io.stderr.write(`${JSON.stringify(value)}\n`);
  frame(session.status!);
  session.on('status', frame).on('error', frame).on('endpoints', frame);
  session.on('message', (data) => {
    io.stdout.write(command.binary ? data : Buffer.concat([data, Buffer.from('\n')]));
  });
  const onSigint = () => void session.close();
  process.on('SIGINT', onSigint);
  pipeInput(session, command.binary, io.stdin);
  const end = await session.ended;
  process.off('SIGINT', onSigint);
  return end.code === 1000 || end.code === 1001 ? EXIT_OK : EXIT_FAILURE;
}

/**
 * stdin to the session, pausing while the WebSocket is backed up. At end of input: wait until
 * established (the server holds what was sent before), until the socket has sent everything,
 * then close (1000).
 */
function pipeInput(session: Session, binary: boolean, stdin: NodeJS.ReadableStream): void {
  const send = (bytes: Uint8Array) => {
    try {
      if (!session.send(bytes)) {
        stdin.pause();
        session.drained().then(() => stdin.resume(), () => {});
      }
    } catch {
      // closed meanwhile: the end is reported by the close
    }
  };
  const atEnd = async () => {
    try {
      await session.established();
      // Everything read is on the wire before the close (drained() stops at half the high-water mark).
      while (session.bufferedAmount > 0) await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
      await session.close();
    } catch {
      // the session ended first: its end is the answer
    }
  };
  if (binary) {
    stdin.on('data', (chunk: Buffer) => {
      for (let i = 0; i < chunk.length; i += BINARY_CHUNK_BYTES) send(chunk.subarray(i, i + BINARY_CHUNK_BYTES));
    });
    stdin.on('end', () => void atEnd());
  } else {
    const lines = createInterface({ input: stdin, crlfDelay: Infinity });
    lines.on('line', (line) => send(Buffer.from(line, 'utf8')));
    lines.on('close', () => void atEnd());
  }
}

/** One line for a failure before the session opened. */
function describeFailure(err: unknown, url: URL): string {
  if (err instanceof RefusedError) {
    return `refused with HTTP ${err.status}: ${err.code}: ${err.message.replace(/^refused with HTTP \d+ [a-z_]+: /, '')}`;
  }
  if (err instanceof ClosedError) return err.message;
  if (err instanceof AutoproxError && err.code === 'unreachable') {
    return `no autoprox server answers at ${url.origin.replace(/^http/, 'ws')} (${err.message.match(/\(([^)]+)\)/)?.[1] ?? 'no answer'}): start one with \`npm start\` (or \`autoprox serve --port ${url.port || (url.protocol === 'wss:' ? 443 : 80)}\`), or check the URL`;
  }
  return (err as Error).message;
}
