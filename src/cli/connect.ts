/**
 * `autoprox connect <ws-url> --host H --port P --key K --token T [--ca FILE] [--binary]`: a small client.
 * stdin -> session (one message per line, or raw chunks with --binary); peer data -> stdout;
 * status and error frames -> stderr as JSON lines. Exits when the session closes.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { rootCertificates } from 'node:tls';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { UsageError } from './usage.js';

/** Chunk size for --binary stdin (bytes): the server's default --max-payload. */
export const BINARY_CHUNK_BYTES = 1200;

export interface ConnectOptions {
  url: URL;
  token: string;
  binary: boolean;
  /** PEM of a private CA to trust for wss:// (added to, not replacing, the system's CAs). */
  ca: Buffer | null;
}

export function parseConnectArgs(args: string[], env: NodeJS.ProcessEnv): ConnectOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        host: { type: 'string', multiple: true },
        port: { type: 'string' },
        key: { type: 'string' },
        token: { type: 'string' },
        ca: { type: 'string' },
        binary: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    throw new UsageError(`connect: ${(err as Error).message}`);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError('connect: give exactly one ws:// or wss:// URL');
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
  for (const host of values.host) url.searchParams.append('host', host);
  url.searchParams.set('port', values.port);
  url.searchParams.set('key', values.key);
  let ca: Buffer | null = null;
  if (values.ca !== undefined) {
    try {
      ca = readFileSync(values.ca);
    } catch (err) {
      throw new UsageError(`connect: --ca: cannot read ${values.ca}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return { url, token, binary: values.binary ?? false, ca };
}

/** Runs the client; resolves with the process exit code. */
export function runConnect(options: ConnectOptions, io = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(options.url, {
      headers: { Authorization: `Bearer ${options.token}` },
      ...(options.ca ? { ca: [...rootCertificates, options.ca.toString()] } : {}),
    });
    let finished = false;
    const finish = (code: number) => {
      if (finished) return;
      finished = true;
      process.off('SIGINT', onSigint);
      resolve(code);
    };
    const onSigint = () => ws.close(1000);
    process.on('SIGINT', onSigint);

    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk.slice(0, 4096)));
      res.on('end', () => {
        io.stderr.write(`autoprox connect: refused with HTTP ${res.statusCode}: ${body}\n`);
        finish(1);
      });
    });
    ws.on('error', (err) => {
      io.stderr.write(`autoprox connect: ${err.message}\n`);
      finish(1);
    });
    ws.on('open', () => {
      if (options.binary) {
        io.stdin.on('data', (chunk: Buffer) => {
          for (let i = 0; i < chunk.length; i += BINARY_CHUNK_BYTES) ws.send(chunk.subarray(i, i + BINARY_CHUNK_BYTES));
        });
      } else {
        const lines = createInterface({ input: io.stdin, crlfDelay: Infinity });
        lines.on('line', (line) => ws.send(Buffer.from(line, 'utf8')));
      }
    });
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) io.stdout.write(options.binary ? data : Buffer.concat([data, Buffer.from('\n')]));
      else io.stderr.write(`${data.toString('utf8')}\n`);
    });
    ws.on('close', (code) => finish(code === 1000 || code === 1001 ? 0 : 1));
  });
}
