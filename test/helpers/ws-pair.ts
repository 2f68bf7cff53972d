/**
 * A real WebSocket connection on loopback, both ends in the test: the server end (with its TCP
 * socket, as the server's session link gets them) and a client that records what it receives.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { Waiter } from './waiter.js';

export interface WsPair {
  /** The server's end. */
  ws: WebSocket;
  socket: Duplex;
  /** The client's end, and what it got. */
  client: WebSocket;
  texts: Array<Record<string, unknown>>;
  binaries: Buffer[];
  closed: Promise<{ code: number; reason: string }>;
  until(predicate: () => boolean, what: string, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function wsPair(): Promise<WsPair> {
  const http: Server = createServer();
  const wss = new WebSocketServer({ noServer: true });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<{ ws: WebSocket; socket: Duplex }>((resolve) => {
    http.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => resolve({ ws, socket })));
  });
  const client = new WebSocket(`ws://127.0.0.1:${(http.address() as AddressInfo).port}/`);
  const waiter = new Waiter();
  const texts: Array<Record<string, unknown>> = [];
  const binaries: Buffer[] = [];
  client.on('message', (data: Buffer, isBinary) => {
    if (isBinary) binaries.push(data);
    else texts.push(JSON.parse(data.toString()) as Record<string, unknown>);
    waiter.notify();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    client.once('close', (code, reason) => {
      waiter.notify();
      resolve({ code, reason: reason.toString() });
    }),
  );
  await new Promise<void>((resolve) => client.once('open', () => resolve()));
  const { ws, socket } = await accepted;
  return {
    ws,
    socket,
    client,
    texts,
    binaries,
    closed,
    until: (predicate, what, timeoutMs = 5000) => waiter.until(predicate, timeoutMs, () => what),
    close: async () => {
      client.terminate();
      ws.terminate();
      wss.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
