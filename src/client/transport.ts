/**
 * What the session needs of a WebSocket: Node's (`ws`, node.ts) and the browser's (browser.ts)
 * are adapted to this. Pure types.
 */

export interface TransportEvents {
  open(): void;
  /** A binary message (bytes) or a text frame (string). */
  message(data: Uint8Array | string): void;
  close(code: number, reason: string): void;
  /** The upgrade was answered with an HTTP error (Node), or failed with no answer a browser shows (status null). */
  refused(status: number | null, body: string, retryAfter: string | null): void;
  /** Nothing answered at the URL (connection refused, no route, DNS). */
  unreachable(message: string): void;
}

export interface Transport {
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  /** Bytes handed to send() that are not yet on the wire. */
  readonly bufferedAmount: number;
  /** Stops reading (Node only: TCP backpressure on the server); the browser cannot. */
  pause?(): void;
  resume?(): void;
}

/** Opens a WebSocket to `url` with `token` (a header in Node, `access_token` in browsers). */
export type OpenTransport = (url: URL, token: string, events: TransportEvents) => Transport;
