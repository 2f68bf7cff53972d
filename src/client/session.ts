/**
 * One autoprox session as a program sees it: status as events, messages in order (events or
 * `for await`), typed errors, visible backpressure, and reconnection only when asked for. The
 * WebSocket underneath is handed in (transport.ts), so this file runs in Node and in browsers.
 */
import { Emitter } from './emitter.js';
import { AutoproxError, ClosedError, RefusedError, SendError, TimeoutError, UnreachableError } from './errors.js';
import { parseServerFrame, type EndpointsFrame, type ErrorFrame, type StatusFrame } from './frames.js';
import type { OpenTransport, Transport } from './transport.js';
import { backoffDelayMs, RECONNECT_DEFAULTS, type ReconnectOptions } from './backoff.js';
import { sessionUrl, validateOptions, type SessionParameters } from './parameters.js';

/** The server's default `--max-payload` (bytes): the largest message `send` lets through unless told otherwise. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1200;
/** Bytes waiting in the WebSocket above which `send` returns false. */
export const DEFAULT_HIGH_WATER_MARK_BYTES = 1024 * 1024;
/** Messages waiting for `for await` above which a Node session stops reading from the server. */
export const DEFAULT_MAX_QUEUED_MESSAGES = 4096;
/** How long `connect` waits for the server's CONNECTED frame after the upgrade (ms). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** How often `drained()` looks at the WebSocket's buffer (ms): neither API has a drain event. */
const DRAIN_POLL_MS = 10;

/** Close codes after which reconnecting cannot help: the client closed, bad input, a token to renew. */
const FINAL_CLOSE_CODES: ReadonlySet<number> = new Set([1000, 1002, 1003, 1007, 1008, 1009, 4001, 4003]);

export interface ConnectOptions extends SessionParameters {
  /** The server's `--max-payload` (default 1200 bytes): larger messages are refused by `send`. */
  maxPayload?: number;
  /** Bytes waiting in the WebSocket above which `send` returns false (default 1 MiB). */
  highWaterMark?: number;
  /** Messages held for `for await` before a Node session pauses reading (default 4096). */
  maxQueuedMessages?: number;
  /** How long to wait for CONNECTED after the upgrade (default 10 s). */
  connectTimeoutMs?: number;
  /** Reconnect after an unexpected close (off unless given): true for the defaults, or options. */
  reconnect?: boolean | ReconnectOptions;
}

/** How a session ended: the WebSocket close code, the session's `reason` code, a message. */
export interface SessionEnd {
  code: number;
  reason: string;
  message: string;
}

export interface ReconnectEvent {
  /** 1 for the first attempt after a close. */
  attempt: number;
  /** How long the library waits before this attempt (ms, jittered). */
  delayMs: number;
  /** Why: the close or the failed attempt before. */
  cause: AutoproxError;
}

export interface SessionEvents extends Record<string, unknown> {
  status: StatusFrame;
  error: ErrorFrame;
  endpoints: EndpointsFrame;
  message: Uint8Array;
  reconnect: ReconnectEvent;
  close: SessionEnd;
}

type Attempt = { resolve: () => void; reject: (err: AutoproxError) => void };

export class Session extends Emitter<SessionEvents> implements AsyncIterable<Uint8Array> {
  readonly #open: OpenTransport;
  readonly #url: URL;
  readonly #token: string;
  readonly #maxPayload: number;
  readonly #highWaterMark: number;
  readonly #maxQueued: number;
  readonly #connectTimeoutMs: number;
  readonly #reconnect: Required<ReconnectOptions> | null;
  #transport: Transport | null = null;
  #state: 'opening' | 'open' | 'reconnecting' | 'closing' | 'closed' = 'opening';
  #status: StatusFrame | null = null;
  #closedFrame: StatusFrame | null = null;
  #end: SessionEnd | null = null;
  readonly #ended: Promise<SessionEnd>;
  #resolveEnded!: (end: SessionEnd) => void;
  #reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  readonly #queue: Uint8Array[] = [];
  readonly #waiters: Array<(result: IteratorResult<Uint8Array>) => void> = [];
  #iterators = 0;
  #paused = false;

  /** Use `connect` (node.ts / browser.ts): it opens the session and resolves once CONNECTED. */
  constructor(open: OpenTransport, url: string | URL, options: ConnectOptions) {
    super();
    validateOptions(options);
    this.#open = open;
    this.#url = sessionUrl(url, options);
    this.#token = options.token;
    this.#maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD_BYTES;
    this.#highWaterMark = options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK_BYTES;
    this.#maxQueued = options.maxQueuedMessages ?? DEFAULT_MAX_QUEUED_MESSAGES;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const reconnect = options.reconnect === true ? {} : options.reconnect || null;
    this.#reconnect = reconnect ? { ...RECONNECT_DEFAULTS, ...reconnect } : null;
    this.#ended = new Promise((resolve) => (this.#resolveEnded = resolve));
  }

  /** The current session id (from its CONNECTED frame; a reconnect starts a new session). */
  get id(): string | null {
    return this.#status?.session ?? null;
  }

  /** The latest status frame. */
  get status(): StatusFrame | null {
    return this.#status;
  }

  /** Resolves with how the session ended, once it has (after close(), or any final close). */
  get ended(): Promise<SessionEnd> {
    return this.#ended;
  }

  /** Bytes handed to `send` and not yet on the wire. */
  get bufferedAmount(): number {
    return this.#transport?.bufferedAmount ?? 0;
  }

  /** Opens the first WebSocket; rejects as that attempt fails (no reconnect for the first). */
  async start(): Promise<this> {
    try {
      await this.#attempt();
    } catch (err) {
      this.#finish({ code: err instanceof ClosedError ? err.closeCode : 1006, reason: (err as AutoproxError).code, message: (err as Error).message });
      throw err;
    }
    return this;
  }

  /**
   * Resolves with the UDP_ESTABLISHED frame (at once if established now). Rejects with a
   * ClosedError if the session ends first, a TimeoutError after `timeoutMs`.
   */
  established(options: { timeoutMs?: number } = {}): Promise<StatusFrame> {
    if (this.#status?.status === 'UDP_ESTABLISHED' && this.#state === 'open') return Promise.resolve(this.#status);
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | null = null;
      const done = () => {
        this.off('status', onStatus);
        this.off('close', onClose);
        if (timer) clearTimeout(timer);
      };
      const onStatus = (frame: StatusFrame) => {
        if (frame.status !== 'UDP_ESTABLISHED') return;
        done();
        resolve(frame);
      };
      const onClose = (end: SessionEnd) => {
        done();
        reject(new ClosedError(end.code, end.reason, `the session closed before it was established: ${end.message}`));
      };
      if (this.#end) return onClose(this.#end);
      this.on('status', onStatus).on('close', onClose);
      if (options.timeoutMs !== undefined && Number.isFinite(options.timeoutMs)) {
        timer = setTimeout(() => {
          done();
          reject(new TimeoutError(`not established within ${options.timeoutMs} ms (status ${this.#status?.status ?? 'none'}${this.#status?.family ? `, ${this.#status.family}` : ''})`));
        }, options.timeoutMs);
      }
    });
  }

  /**
   * Sends one message (one datagram to the peer). Throws a SendError for what the server would
   * reject (`payload_too_large`, `text_not_supported`) and when the session is not open
   * (`not_open` while reconnecting, `closed`). Returns false when the WebSocket holds more than
   * `highWaterMark` bytes: the message is still sent; wait for `drained()` before sending more.
   */
  send(data: Uint8Array | ArrayBuffer): boolean {
    if (typeof data === 'string') throw new SendError('text_not_supported', 'text frames are not relayed: send binary messages (a Uint8Array)');
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : null;
    if (bytes === null) throw new SendError('text_not_supported', 'send takes a Uint8Array (or an ArrayBuffer)');
    if (this.#state === 'closed' || this.#state === 'closing') throw new SendError('closed', 'the session is closed');
    if (this.#state !== 'open' || !this.#transport) throw new SendError('not_open', 'the session is reconnecting: nothing is sent until its status frames come again');
    if (bytes.byteLength > this.#maxPayload) throw new SendError('payload_too_large', `message of ${bytes.byteLength} bytes is over the ${this.#maxPayload}-byte limit`);
    this.#transport.send(bytes);
    return this.#transport.bufferedAmount <= this.#highWaterMark;
  }

  /** Resolves once the WebSocket holds no more than half the high-water mark; rejects if the session closes. */
  drained(): Promise<void> {
    return new Promise((resolve, reject) => {
      const look = () => {
        if (this.#end) return reject(new ClosedError(this.#end.code, this.#end.reason, `the session closed: ${this.#end.message}`));
        if (this.bufferedAmount <= this.#highWaterMark / 2) return resolve();
        setTimeout(look, DRAIN_POLL_MS);
      };
      look();
    });
  }

  /** Closes the session (code 1000) and resolves with how it ended. Safe to call twice. */
  async close(): Promise<SessionEnd> {
    if (this.#end) return this.#end;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    const transport = this.#transport;
    if (this.#state === 'open' && transport) {
      this.#state = 'closing';
      transport.close(1000);
    } else {
      this.#state = 'closing';
      transport?.close(1000);
      this.#finish({ code: 1000, reason: 'client_closed', message: 'the client closed the session' });
    }
    return this.#ended;
  }

  /** Peer messages in order; ends when the session has ended and every message was read. */
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    this.#iterators++;
    let done = false;
    return {
      next: () => (done ? Promise.resolve({ done: true, value: undefined }) : this.#next()),
      return: () => {
        if (!done) this.#iterators--;
        done = true;
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }

  #next(): Promise<IteratorResult<Uint8Array>> {
    const value = this.#queue.shift();
    if (value !== undefined) {
      if (this.#paused && this.#queue.length <= this.#maxQueued / 2) {
        this.#paused = false;
        this.#transport?.resume?.();
      }
      return Promise.resolve({ done: false, value });
    }
    if (this.#end) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  // ---- one WebSocket ----

  /** Opens a WebSocket and resolves at its CONNECTED frame. */
  #attempt(): Promise<void> {
    return new Promise((resolve, reject) => {
      let pending: Attempt | null = { resolve, reject };
      const settle = (err: AutoproxError | null) => {
        if (!pending) return;
        const { resolve: ok, reject: fail } = pending;
        pending = null;
        clearTimeout(timer);
        if (err) fail(err);
        else ok();
      };
      let transport: Transport | null = null;
      let over = false;
      // From CONNECTED until the next task, what arrives waits: the program's listeners, attached
      // right after `await connect(...)`, see every frame after CONNECTED (in one TCP read the
      // server's UDP_WAITING often follows CONNECTED).
      let held: Array<() => void> | null = null;
      const later = (event: () => void) => (held ? held.push(event) : event());
      const connected = () => {
        held = [];
        settle(null);
        setTimeout(() => {
          const events = held ?? [];
          held = null;
          for (const event of events) event();
        }, 0);
      };
      const timer = setTimeout(() => {
        settle(new TimeoutError(`no CONNECTED frame within ${this.#connectTimeoutMs} ms from ${this.#safeUrl()}`));
        over = true;
        transport?.close(1000);
      }, this.#connectTimeoutMs);
      transport = this.#open(this.#url, this.#token, {
        open: () => {},
        message: (data) =>
          later(() => {
            if (over || this.#transport !== transport) return;
            if (typeof data === 'string') this.#onText(data, connected);
            else this.#onBytes(data);
          }),
        close: (code, reason) =>
          later(() => {
            if (over) return;
            over = true;
            if (pending) {
              settle(new ClosedError(code, this.#closedFrame?.reason ?? 'closed', `the server closed the WebSocket before CONNECTED (${code}${reason ? ` ${reason}` : ''})`));
              return;
            }
            this.#onClosed(code, reason);
          }),
        refused: (status, body, retryAfter) => {
          if (over) return;
          over = true;
          settle(refusedError(status, body, retryAfter, this.#safeUrl()));
        },
        unreachable: (message) => {
          if (over) return;
          over = true;
          settle(new UnreachableError('unreachable', `no autoprox server answers at ${this.#safeUrl()} (${message}): start one with \`autoprox serve\`, or check the URL`));
        },
      });
      this.#transport = transport;
    });
  }

  #onText(text: string, connected: () => void): void {
    const frame = parseServerFrame(text);
    if (!frame) return; // a newer server's frame, or garbage: nothing this library knows to do
    if (frame.type === 'error') return this.emit('error', frame);
    if (frame.type === 'endpoints') return this.emit('endpoints', frame);
    this.#status = frame;
    if (frame.status === 'CLOSED') this.#closedFrame = frame;
    if (frame.status === 'CONNECTED' && this.#state !== 'closing') this.#state = 'open';
    this.emit('status', frame);
    if (frame.status === 'CONNECTED') connected();
  }

  #onBytes(data: Uint8Array): void {
    this.emit('message', data);
    const waiter = this.#waiters.shift();
    if (waiter) return waiter({ done: false, value: data });
    if (this.#iterators === 0 && this.listenerCount('message') > 0) return;
    this.#queue.push(data);
    if (!this.#paused && this.#queue.length >= this.#maxQueued && this.#transport?.pause) {
      this.#paused = true;
      this.#transport.pause();
    }
  }

  #onClosed(code: number, reason: string): void {
    const frame = this.#closedFrame;
    this.#closedFrame = null;
    const end: SessionEnd = {
      code,
      reason: frame?.reason ?? (code === 1000 ? 'client_closed' : reason || 'connection_lost'),
      message: frame?.message ?? (reason || `the WebSocket closed with code ${code}`),
    };
    if (this.#state === 'closing' || !this.#reconnect || FINAL_CLOSE_CODES.has(code)) return this.#finish(end);
    this.#state = 'reconnecting';
    this.#transport = null;
    this.#retry(1, new ClosedError(code, end.reason, end.message));
  }

  #retry(attempt: number, cause: AutoproxError): void {
    const options = this.#reconnect!;
    if (attempt > options.attempts) {
      this.#finish({ code: cause instanceof ClosedError ? cause.closeCode : 1006, reason: cause.code === 'closed' ? (cause as ClosedError).reason : cause.code, message: `gave up after ${options.attempts} reconnect attempts: ${cause.message}` });
      return;
    }
    const retryAfterMs = cause instanceof RefusedError && cause.retryAfterS !== null ? cause.retryAfterS * 1000 : 0;
    const delayMs = Math.max(retryAfterMs, backoffDelayMs(attempt, options, Math.random));
    this.emit('reconnect', { attempt, delayMs, cause });
    const reason = cause instanceof ClosedError ? cause.reason : cause.code;
    this.#status = { type: 'status', status: 'RECONNECTING', session: this.#status?.session ?? '', attempt, delayMs, reason, message: cause.message };
    this.emit('status', this.#status);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      if (this.#state !== 'reconnecting') return;
      this.#attempt().then(
        () => {},
        (err: AutoproxError) => {
          if (this.#state !== 'reconnecting') return;
          const retryable = !(err instanceof RefusedError) || err.retryable;
          if (retryable) this.#retry(attempt + 1, err);
          else this.#finish({ code: 1006, reason: err.code, message: err.message });
        },
      );
    }, delayMs);
  }

  #finish(end: SessionEnd): void {
    if (this.#end) return;
    this.#end = end;
    this.#state = 'closed';
    this.#transport = null;
    for (const waiter of this.#waiters.splice(0)) waiter({ done: true, value: undefined });
    this.emit('close', end);
    this.#resolveEnded(end);
  }

  /** The URL without the key (it goes in messages). */
  #safeUrl(): string {
    const url = new URL(this.#url);
    url.search = '';
    return url.toString();
  }
}

function refusedError(status: number | null, body: string, retryAfter: string | null, url: string): RefusedError {
  if (status === null) {
    return new RefusedError(null, 'upgrade_failed', `the WebSocket to ${url} failed before it opened; a browser does not say why (a refused token or parameter, a rate limit, or no server): the server's log, or \`autoprox connect\` with the same URL, names the reason`);
  }
  let code = 'refused';
  let message = body.slice(0, 300) || `HTTP ${status}`;
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } };
    if (typeof parsed.error?.code === 'string') code = parsed.error.code;
    if (typeof parsed.error?.message === 'string') message = parsed.error.message;
  } catch {
    // not autoprox's JSON: keep the start of the body
  }
  const seconds = retryAfter !== null && /^\d+$/.test(retryAfter) ? Number(retryAfter) : null;
  return new RefusedError(status, code, `refused with HTTP ${status} ${code}: ${message}`, seconds);
}
