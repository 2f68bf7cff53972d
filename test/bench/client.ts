/**
 * A bench client process: holds groups of WebSocket sessions (to autoprox or a bare relay),
 * sends paced or saturating load, counts what arrives, echoes for round trips. Driven by the
 * runner over the IPC channel (see client-protocol.ts); exits when the runner goes away.
 *
 * Kept cheap per message so that it is not the bottleneck: messages are written in bursts
 * with the TCP socket corked (one writev per burst, not one per message), and with an all-zero
 * WebSocket mask, which `ws` skips instead of XOR-ing every byte. The relay side still unmasks
 * every frame as usual (with any mask), so this changes nothing for the servers measured.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import {
  MESSAGE_HEADER_BYTES,
  SENT_AT_OFFSET,
  type Command,
  type Counts,
  type Health,
  type OpenResult,
  type Request,
  type SendResult,
  type SessionSpec,
} from './client-protocol.js';

/** A sender stops writing to a WebSocket holding more than this, until it drains (bytes). */
const HIGH_WATER_BYTES = 256 * 1024;
/** Paced load is sent in bursts every this many ms (timer granularity). */
const PACE_TICK_MS = 1;
/** Saturating load: messages written per burst before yielding to I/O. */
const BLAST_BURST_MESSAGES = 512;
const CLOSE_WAIT_MS = 5_000;

interface ClientSession {
  ws: WebSocket;
  socket: Socket | null;
  index: number;
  established: boolean;
  lost: boolean;
  sequence: number;
}

interface Group {
  sessions: ClientSession[];
  messages: number;
  bytes: number;
  echo: boolean;
  rtt: number[] | null;
  errorFrames: number;
  /** The first few frames that were neither data nor UDP_ESTABLISHED, for diagnosis. */
  notes: string[];
}

/** Frames kept per group for diagnosis. */
const MAX_NOTES = 10;

const groups = new Map<string, Group>();
const zeroMask = (mask: Buffer) => mask.fill(0);

// ---- corking: one writev per burst ----
const corked = new Set<Socket>();
function uncorkAll(): void {
  for (const socket of corked) socket.uncork();
  corked.clear();
}
/** Corks a session's TCP socket until the current burst (this tick) ends. */
function cork(session: ClientSession): void {
  const socket = session.socket;
  if (!socket || corked.has(socket)) return;
  socket.cork();
  corked.add(socket);
  if (corked.size === 1) process.nextTick(uncorkAll);
}

function groupOf(name: string): Group {
  const group = groups.get(name);
  if (!group) throw new Error(`no group ${name}`);
  return group;
}

function openOne(group: Group, spec: SessionSpec, index: number, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(spec.url, {
      headers: spec.token ? { Authorization: `Bearer ${spec.token}` } : {},
      perMessageDeflate: false,
      generateMask: zeroMask,
    });
    const session: ClientSession = { ws, socket: null, index, established: false, lost: false, sequence: 0 };
    let openedAt = 0;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`session ${index}: not established within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.on('open', () => {
      openedAt = performance.now();
      session.socket = (ws as unknown as { _socket: Socket })._socket;
      session.socket.setNoDelay(true);
    });
    ws.on('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => reject(new Error(`session ${index}: HTTP ${res.statusCode} ${body}`)));
      res.on('error', () => reject(new Error(`session ${index}: HTTP ${res.statusCode}`)));
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.on('close', (code) => {
      if (session.established && group.notes.length < MAX_NOTES) group.notes.push(`session ${index} closed: ${code}`);
      session.lost = true;
      clearTimeout(timer);
      reject(new Error(`session ${index}: closed before UDP_ESTABLISHED`));
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        group.messages++;
        group.bytes += data.length;
        if (group.echo) {
          cork(session);
          ws.send(data);
        } else if (group.rtt) {
          group.rtt.push(performance.now() - data.readDoubleLE(SENT_AT_OFFSET));
        }
        return;
      }
      const text = data.toString();
      const frame = JSON.parse(text) as { type: string; status?: string };
      if (frame.type === 'error') group.errorFrames++;
      if (session.established && group.notes.length < MAX_NOTES) group.notes.push(text);
      if (frame.type !== 'status') return;
      if (frame.status === 'UDP_ESTABLISHED' && !session.established) {
        session.established = true;
        group.sessions.push(session);
        clearTimeout(timer);
        resolve(performance.now() - openedAt);
      } else if (session.established && frame.status !== 'UDP_ESTABLISHED') {
        session.lost = true;
      }
    });
  });
}

async function open(command: Extract<Command, { op: 'open' }>): Promise<OpenResult> {
  const group: Group = { sessions: [], messages: 0, bytes: 0, echo: false, rtt: null, errorFrames: 0, notes: [] };
  groups.set(command.group, group);
  const started = performance.now();
  const establishMs: number[] = [];
  let failed = 0;
  let firstError: string | null = null;
  let next = 0;
  const deadline = command.deadlineMs === undefined ? Infinity : started + command.deadlineMs;
  const worker = async () => {
    while (next < command.sessions.length) {
      if (performance.now() > deadline) {
        failed += command.sessions.length - next;
        firstError ??= `${command.sessions.length - next} sessions not started: the ${command.deadlineMs} ms deadline passed`;
        next = command.sessions.length;
        break;
      }
      const index = next++;
      try {
        establishMs.push(await openOne(group, command.sessions[index]!, index, command.timeoutMs));
      } catch (err) {
        failed++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(command.concurrency, command.sessions.length) }, worker));
  // Round-robin in index order, whatever order they were established in.
  group.sessions.sort((a, b) => a.index - b.index);
  return { establishMs, totalMs: performance.now() - started, failed, firstError };
}

function send(command: Extract<Command, { op: 'send' }>): Promise<SendResult> {
  const group = groupOf(command.group);
  const sessions = group.sessions.filter((s) => !s.lost);
  if (sessions.length === 0) throw new Error(`group ${command.group} has no live session: ${group.notes.join('; ')}`);
  const { size, rate, durationMs } = command;
  const filler = randomBytes(size);
  group.rtt = command.rtt ? [] : null;
  let sent = 0;
  let next = 0;
  const started = performance.now();
  const end = started + durationMs;

  /** Writes one message to the next session in turn; false when that session is backed up. */
  const sendOne = (): boolean => {
    const session = sessions[next]!;
    next = next + 1 === sessions.length ? 0 : next + 1;
    if (session.ws.bufferedAmount > HIGH_WATER_BYTES) return false;
    // A fresh buffer per message: `ws` keeps a reference until the bytes are written.
    const message = Buffer.allocUnsafe(size);
    filler.copy(message);
    if (size >= MESSAGE_HEADER_BYTES) {
      message.writeUInt32LE(session.index, 0);
      message.writeUInt32LE(session.sequence++ >>> 0, 4);
      message.writeDoubleLE(performance.now(), SENT_AT_OFFSET);
    }
    cork(session);
    session.ws.send(message);
    sent++;
    return true;
  };

  return new Promise((resolve) => {
    const finish = (sendMs: number) => {
      setTimeout(() => {
        const rttMs = group.rtt ?? [];
        group.rtt = null;
        resolve({ sent, sendMs, rttMs, rttReceived: rttMs.length });
      }, command.drainMs);
    };
    const tick = () => {
      const now = performance.now();
      if (rate > 0) {
        let due = Math.floor(((Math.min(now, end) - started) * rate) / 1000) - sent;
        let backedUp = 0;
        while (due > 0 && backedUp < sessions.length) {
          if (sendOne()) {
            due--;
            backedUp = 0;
          } else backedUp++;
        }
        uncorkAll();
        if (now >= end) finish(now - started);
        else setTimeout(tick, PACE_TICK_MS);
        return;
      }
      let burst = 0;
      let backedUp = 0;
      while (burst < BLAST_BURST_MESSAGES && backedUp < sessions.length) {
        if (sendOne()) {
          burst++;
          backedUp = 0;
        } else backedUp++;
      }
      uncorkAll();
      if (now >= end) finish(now - started);
      else if (burst > 0) setImmediate(tick);
      else setTimeout(tick, PACE_TICK_MS); // every socket is backed up: let them drain
    };
    tick();
  });
}

function counts(command: Extract<Command, { op: 'counts' }>): Counts {
  const group = groupOf(command.group);
  const out = { messages: group.messages, bytes: group.bytes };
  if (command.reset) {
    group.messages = 0;
    group.bytes = 0;
  }
  return out;
}

function health(command: Extract<Command, { op: 'health' }>): Health {
  const group = groupOf(command.group);
  let lost = 0;
  for (const s of group.sessions) if (s.lost || s.ws.readyState !== WebSocket.OPEN) lost++;
  return { open: group.sessions.length - lost, lost, errorFrames: group.errorFrames, notes: group.notes };
}

async function close(command: Extract<Command, { op: 'close' }>): Promise<{ closed: number }> {
  const group = groups.get(command.group);
  if (!group) return { closed: 0 };
  groups.delete(command.group);
  const closing = group.sessions.map(
    (s) =>
      new Promise<void>((resolve) => {
        if (s.ws.readyState === WebSocket.CLOSED) return resolve();
        s.ws.once('close', () => resolve());
        s.ws.close(1000);
      }),
  );
  const deadline = new Promise<void>((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref());
  await Promise.race([Promise.all(closing), deadline]);
  for (const s of group.sessions) if (s.ws.readyState !== WebSocket.CLOSED) s.ws.terminate();
  return { closed: group.sessions.length };
}

async function handle(command: Command): Promise<unknown> {
  switch (command.op) {
    case 'open':
      return open(command);
    case 'send':
      return send(command);
    case 'counts':
      return counts(command);
    case 'echo':
      groupOf(command.group).echo = command.on;
      return null;
    case 'health':
      return health(command);
    case 'close':
      return close(command);
  }
}

process.on('message', (request: Request) => {
  handle(request.command).then(
    (result) => process.send!({ id: request.id, ok: true, result }),
    (err: unknown) => process.send!({ id: request.id, ok: false, error: (err as Error).message }),
  );
});
// The runner went away (finished or crashed): nothing left to do.
process.on('disconnect', () => process.exit(0));
