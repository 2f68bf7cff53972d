/**
 * The client library for Node (on `ws`): `import { connect } from 'autoprox/client'`.
 * The same API as the browser build (browser.ts); README, "Using autoprox from your program".
 */
import { rootCertificates } from 'node:tls';
import WebSocket from 'ws';
import { Session, type ConnectOptions } from './session.js';
import type { OpenTransport } from './transport.js';

export * from './public.js';

export interface NodeConnectOptions extends ConnectOptions {
  /** PEM of a private CA to trust for wss:// (added to the system's CAs). */
  ca?: string | Buffer;
}

/** Refusal bodies are read up to this many bytes. */
const REFUSAL_BODY_BYTES = 4096;
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EAI_AGAIN', 'ECONNRESET']);

function nodeTransport(ca: string | Buffer | undefined): OpenTransport {
  return (url, token, events) => {
    const ws = new WebSocket(url, {
      headers: { Authorization: `Bearer ${token}` },
      ...(ca ? { ca: [...rootCertificates, ca.toString()] } : {}),
    });
    let answered = false;
    ws.on('upgrade', () => (answered = true));
    ws.on('open', () => events.open());
    ws.on('message', (data: Buffer, isBinary) => events.message(isBinary ? data : data.toString('utf8')));
    ws.on('unexpected-response', (req, res) => {
      answered = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < REFUSAL_BODY_BYTES) body += chunk.slice(0, REFUSAL_BODY_BYTES - body.length);
      });
      res.on('end', () => {
        const retryAfter = res.headers['retry-after'];
        events.refused(res.statusCode ?? 0, body, typeof retryAfter === 'string' ? retryAfter : null);
        req.destroy();
      });
    });
    ws.on('error', (err: NodeJS.ErrnoException) => {
      if (!answered && (err.code === undefined || UNREACHABLE.has(err.code))) events.unreachable(err.code ? `${err.code}` : err.message);
      else if (!answered) events.unreachable(err.message);
      // After an answer, 'close' follows and says the rest.
    });
    ws.on('close', (code, reason) => events.close(code, reason.toString('utf8')));
    return {
      send: (data) => ws.send(data),
      close: (code, reason) => ws.close(code, reason),
      get bufferedAmount() {
        return ws.bufferedAmount;
      },
      pause: () => ws.pause(),
      resume: () => ws.resume(),
    };
  };
}

/**
 * Opens a session to the autoprox server at `url` (`ws://host:port`, or the full
 * `/v0/ws/proxy` URL) and resolves once the server says CONNECTED. Rejects with a RefusedError
 * (the server's HTTP status and code), an UnreachableError, a TimeoutError, or an
 * AutoproxError `bad_parameter` naming the option.
 */
export function connect(url: string | URL, options: NodeConnectOptions): Promise<Session> {
  try {
    return new Session(nodeTransport(options.ca), url, options).start();
  } catch (err) {
    return Promise.reject(err);
  }
}
