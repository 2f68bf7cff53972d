/**
 * A real `ws` client of one session that records what it observes: status frames, error
 * frames, peer data, the close code. Every wait is bounded.
 */
import WebSocket from 'ws';
import type { StatusFrame } from '../../machines/types.js';
import { Waiter } from './waiter.js';

export interface ErrorFrame {
  type: 'error';
  code: string;
  message: string;
}

export interface SessionOptions {
  hosts: string[];
  port: number;
  key: string;
  token: string;
}

const WAIT_MS = 10_000;

export function proxyUrl(wsUrl: string, o: { hosts: string[]; port: number | string; key: string }): string {
  const url = new URL(wsUrl);
  for (const h of o.hosts) url.searchParams.append('host', h);
  url.searchParams.set('port', String(o.port));
  url.searchParams.set('key', o.key);
  return url.toString();
}

export class TestClient {
  readonly statuses: StatusFrame[] = [];
  readonly errors: ErrorFrame[] = [];
  readonly data: Buffer[] = [];
  closeCode: number | null = null;
  closeReason = '';
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<number>;
  readonly #waiter = new Waiter();

  constructor(wsUrl: string, options: SessionOptions) {
    // An empty token sends no Authorization header (for tests that put it in the URL).
    const headers: Record<string, string> = options.token ? { Authorization: `Bearer ${options.token}` } : {};
    this.ws = new WebSocket(proxyUrl(wsUrl, options), { headers });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`refused: HTTP ${res.statusCode}`)));
    });
    this.opened.catch(() => {}); // observed through `opened` by tests that care
    this.closed = new Promise((resolve) =>
      this.ws.once('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        this.#notify();
        resolve(code);
      }),
    );
    this.ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) this.data.push(data);
      else {
        const frame = JSON.parse(data.toString()) as StatusFrame | ErrorFrame;
        if (frame.type === 'status') this.statuses.push(frame);
        else this.errors.push(frame);
      }
      this.#notify();
    });
    this.ws.on('error', () => {});
  }

  #notify() {
    this.#waiter.notify();
  }

  /** Resolves once `predicate` holds, re-checked after every frame; rejects after `timeoutMs`. */
  until(predicate: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
    return this.#waiter.until(predicate, timeoutMs, () => `${what}; statuses: ${JSON.stringify(this.statuses)}`);
  }

  get status(): StatusFrame | undefined {
    return this.statuses.at(-1);
  }

  /** Waits until the latest status is `status` (and matches `fields`). */
  waitForStatus(status: StatusFrame['status'], fields: Partial<StatusFrame> = {}, timeoutMs = WAIT_MS): Promise<StatusFrame> {
    const matches = () => {
      const last = this.status;
      return !!last && last.status === status && Object.entries(fields).every(([k, v]) => last[k as keyof StatusFrame] === v);
    };
    return this.until(matches, `${status} ${JSON.stringify(fields)}`, timeoutMs).then(() => this.status!);
  }

  waitForData(count: number, timeoutMs = WAIT_MS): Promise<Buffer[]> {
    return this.until(() => this.data.length >= count, `${count} messages (have ${this.data.length})`, timeoutMs).then(() => this.data);
  }

  waitForError(code: string, timeoutMs = WAIT_MS): Promise<ErrorFrame> {
    return this.until(() => this.errors.some((e) => e.code === code), `error ${code}`, timeoutMs).then(
      () => this.errors.find((e) => e.code === code)!,
    );
  }

  send(data: Buffer | string): void {
    this.ws.send(data);
  }

  close(): Promise<number> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000);
    return this.closed;
  }
}

/** The sequence of statuses as "STATUS/family" strings, for order assertions. */
export function statusTrail(client: TestClient): string[] {
  return client.statuses.map((s) => (s.family ? `${s.status}/${s.family}` : s.status));
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
