/**
 * Error frames to a client, without letting them pile up: while the client's WebSocket send
 * buffer is over its bound, rejections and drops are counted, and one frame per code reports
 * the count once the buffer has drained. Nothing is dropped without the client hearing of it.
 */
import type { WebSocket } from 'ws';
import type { Clock, Timer } from '../clock.js';
import type { ClientErrorCode, ErrorFrame } from '../errors.js';

/** Peer data and reports stop being queued to a client above this many buffered bytes. */
export const WS_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** How often a backed-up client's buffer is looked at again (ms). */
export const DRAIN_CHECK_MS = 50;

const DEFERRED_MESSAGES: Partial<Record<ClientErrorCode, (n: number) => string>> = {
  client_backpressure: (n) => `${n} message(s) from the peer were dropped: this client read too slowly (over ${WS_MAX_BUFFERED_BYTES} bytes waiting)`,
};

export class ClientReports {
  readonly #pending = new Map<ClientErrorCode, { count: number; message: string }>();
  #timer: Timer | null = null;

  constructor(
    private readonly ws: WebSocket,
    private readonly clock: Clock,
  ) {}

  /** True while the client's send buffer is over its bound. */
  backedUp(): boolean {
    return this.ws.bufferedAmount > WS_MAX_BUFFERED_BYTES;
  }

  /** Sends an error frame now, or counts it for later while the client is backed up. */
  error(code: ClientErrorCode, message: string): void {
    if (this.backedUp()) this.defer(code, message);
    else this.send({ type: 'error', code, message });
  }

  /** Counts an event to report once the client has drained. */
  defer(code: ClientErrorCode, message = ''): void {
    const entry = this.#pending.get(code);
    if (entry) entry.count++;
    else this.#pending.set(code, { count: 1, message });
    this.#timer ??= this.clock.after(DRAIN_CHECK_MS, () => this.#flush());
  }

  send(frame: ErrorFrame | object): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(frame));
  }

  #flush(): void {
    this.#timer = null;
    if (this.ws.readyState !== this.ws.OPEN) {
      this.#pending.clear();
      return;
    }
    if (this.backedUp()) {
      this.#timer = this.clock.after(DRAIN_CHECK_MS, () => this.#flush());
      return;
    }
    for (const [code, { count, message }] of this.#pending) {
      const text = DEFERRED_MESSAGES[code]?.(count) ?? (count === 1 ? message : `${count} message(s) rejected: ${message}`);
      this.send({ type: 'error', code, message: text, count });
    }
    this.#pending.clear();
  }

  dispose(): void {
    this.#timer?.cancel();
    this.#timer = null;
    this.#pending.clear();
  }
}
