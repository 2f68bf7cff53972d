/**
 * Commands from the bench runner to its client processes (over the IPC channel of `fork`),
 * and their answers. Sessions live in named groups ("autoprox:100", ...).
 *
 * A data message written by a bench client: session index (u32 LE) | sequence (u32 LE) |
 * sender's performance.now() (f64 LE) | filler, so the echo side needs nothing but `send`.
 */

export const MESSAGE_HEADER_BYTES = 16;
export const SENT_AT_OFFSET = 8;

export interface SessionSpec {
  url: string;
  /** Authorization header (autoprox), or none (bare relays). */
  token?: string;
}

export type Command =
  /**
   * Opens the sessions, at most `concurrency` handshakes at a time, and waits for UDP_ESTABLISHED
   * on each; none is started after `deadlineMs` (those count as failed).
   */
  | { op: 'open'; group: string; sessions: SessionSpec[]; concurrency: number; timeoutMs: number; deadlineMs?: number }
  /**
   * Sends `size`-byte messages round-robin over the group's sessions for `durationMs`:
   * `rate` messages/s in bursts every millisecond, or as fast as the WebSockets take them
   * (`rate` 0: the sender waits whenever a socket holds more than its high-water mark).
   * With `rtt`, the round-trip times of the echoed messages are returned.
   */
  | { op: 'send'; group: string; size: number; rate: number; durationMs: number; rtt: boolean; drainMs: number }
  /** Messages and bytes received by the group since the last reset. */
  | { op: 'counts'; group: string; reset: boolean }
  /** Echo every received binary message back (the far side of a round-trip test). */
  | { op: 'echo'; group: string; on: boolean }
  /** Status frames seen that are not UDP_ESTABLISHED after the group was established (path lost). */
  | { op: 'health'; group: string }
  | { op: 'close'; group: string };

export interface OpenResult {
  /** Per session: ms from the WebSocket's `open` to its UDP_ESTABLISHED frame. */
  establishMs: number[];
  /** From the command to every session established (ms). */
  totalMs: number;
  failed: number;
  firstError: string | null;
}

export interface SendResult {
  sent: number;
  /** How long the sender sent (ms). */
  sendMs: number;
  /** Round-trip times of echoed messages received until `drainMs` after the last send (ms). */
  rttMs: number[];
  rttReceived: number;
}

export interface Counts {
  messages: number;
  bytes: number;
}

export interface Health {
  open: number;
  /** Sessions that left UDP_ESTABLISHED, or closed. */
  lost: number;
  errorFrames: number;
  notes: string[];
}

export type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };
export type Request = { id: number; command: Command };
