/**
 * The client library for browsers (on the global WebSocket): the same API as node.ts, no Node
 * built-ins (a test checks every import this file reaches). The token goes as `access_token`.
 */
import { Session, type ConnectOptions } from './session.js';
import type { OpenTransport } from './transport.js';

export * from './public.js';

const browserTransport: OpenTransport = (url, token, events) => {
  const withToken = new URL(url);
  withToken.searchParams.set('access_token', token);
  const ws = new WebSocket(withToken);
  ws.binaryType = 'arraybuffer';
  let opened = false;
  ws.onopen = () => {
    opened = true;
    events.open();
  };
  ws.onmessage = (event: MessageEvent) => {
    const data: unknown = event.data;
    events.message(typeof data === 'string' ? data : new Uint8Array(data as ArrayBuffer));
  };
  ws.onclose = (event: { code: number; reason: string }) => {
    // A browser shows nothing of a refused upgrade (or of no server): one failure for both.
    if (!opened) events.refused(null, '', null);
    else events.close(event.code, event.reason);
  };
  return {
    send: (data) => ws.send(data),
    close: (code, reason) => ws.close(code, reason),
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
  };
};

/** Opens a session (see node.ts); in a browser a refused upgrade is a RefusedError with status null. */
export function connect(url: string | URL, options: ConnectOptions): Promise<Session> {
  try {
    return new Session(browserTransport, url, options).start();
  } catch (err) {
    return Promise.reject(err);
  }
}
