/**
 * `--inspect`: live inspection of the supervisor and every session in the Stately inspector.
 *
 * @statelyai/inspect turns XState's inspection events into the inspector's format; we relay
 * them ourselves, in this process, over a WebSocket on loopback only (its stock relay listens on
 * every interface and reconnects forever when nothing listens). A person opens the relay's page,
 * which embeds the Stately inspector web app and feeds it the stream; a program (or a test)
 * reads the stream as JSON text frames. Context and events are sanitized: keys, tokens and
 * secrets never reach the stream.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInspector, type StatelyInspectionEvent } from '@statelyai/inspect';
import { WebSocketServer, WebSocket } from 'ws';
import type { InspectionEvent, Observer } from 'xstate';

/** Events replayed to a viewer that connects late (the most recent ones). */
export const INSPECT_BUFFER_EVENTS = 1000;
/** Where the page loads the inspector web app from (needs internet in the browser only). */
export const STATELY_INSPECTOR_URL = 'https://stately.ai/inspect';
const SECRET_FIELDS = /^(key|psk|token|access_token|secret|jwtSecret|authorization|password)$/i;
const MAX_DEPTH = 12;

/** Replaces every field whose name looks secret, at any depth; cuts cycles and deep nesting. */
export function sanitize<T>(value: T, depth = 0, seen = new WeakSet<object>()): T {
  if (value === null || typeof value !== 'object') return value;
  if (depth > MAX_DEPTH || seen.has(value)) return '[…]' as T;
  seen.add(value);
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `[${value.length} bytes]` as T;
  // An object that says how it shows itself (a session's IO shows its id, nothing of its insides).
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return sanitize(toJSON.call(value) as T, depth + 1, seen);
  if (Array.isArray(value)) return value.map((v) => sanitize(v, depth + 1, seen)) as T;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out[k] = SECRET_FIELDS.test(k) ? '[redacted]' : typeof v === 'function' ? '[function]' : sanitize(v, depth + 1, seen);
  }
  return out as T;
}

function pageHtml(wsPath: string): string {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>autoprox — Stately inspector</title>
<style>*{margin:0;padding:0}html,body{height:100%}iframe{width:100%;height:100%;border:none}</style></head>
<body><iframe id="inspector" src="${STATELY_INSPECTOR_URL}"></iframe>
<script>
const iframe = document.getElementById('inspector');
const buffer = [];
let connected = false;
window.addEventListener('message', (e) => {
  if (e.data && e.data.type === '@statelyai.connected') {
    connected = true;
    for (const event of buffer.splice(0)) iframe.contentWindow.postMessage(event, '*');
  }
});
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '${wsPath}');
ws.onmessage = (m) => {
  const event = JSON.parse(m.data);
  if (connected) iframe.contentWindow.postMessage(event, '*');
  else buffer.push(event);
};
</script></body></html>`;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Who may read the stream: programs (no Origin header), and the relay's own page, reached on a
 * loopback name (also through an SSH tunnel on another port). Any other web page the operator
 * has open is refused, and so is a rebound DNS name (its Host is not a loopback name).
 */
export function viewerAllowed(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true;
  if (!host) return false;
  const hostname = host.replace(/:\d+$/, '');
  return LOOPBACK_HOSTS.has(hostname) && origin === `http://${host}`;
}

export interface InspectorHandle {
  /** Pass to createActor's `inspect`. */
  inspect: Observer<InspectionEvent>;
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startInspector(port: number, host = '127.0.0.1'): Promise<InspectorHandle> {
  const recent: string[] = [];
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(pageHtml('/stream'));
  });
  const wss = new WebSocketServer({ server, path: '/stream', verifyClient: (info: { origin: string; req: import('node:http').IncomingMessage }) => viewerAllowed(info.origin || undefined, info.req.headers.host) });
  wss.on('connection', (ws) => {
    for (const text of recent) ws.send(text);
    ws.on('error', () => {});
  });
  const inspector = createInspector(
    {
      send(event: StatelyInspectionEvent) {
        const text = JSON.stringify(sanitize(event));
        recent.push(text);
        if (recent.length > INSPECT_BUFFER_EVENTS) recent.shift();
        for (const client of wss.clients) if (client.readyState === WebSocket.OPEN) client.send(text);
      },
    },
    { sanitizeContext: (context) => sanitize(context), sanitizeEvent: (event) => sanitize(event) },
  );
  await new Promise<void>((resolve, reject) => {
    // ws re-emits the server's errors on the WebSocketServer: a taken port must reject here, not crash.
    wss.once('error', reject);
    server.listen(port, host, () => {
      wss.off('error', reject);
      resolve();
    });
  });
  const actual = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    inspect: inspector.inspect,
    port: actual,
    url: `http://${shownHost}:${actual}/`,
    async close() {
      for (const client of wss.clients) client.terminate();
      wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
