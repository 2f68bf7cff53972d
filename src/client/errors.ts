/**
 * The client library's errors: each has a stable `code` to switch on (the server's own codes
 * where the server decided) and a message for people. Pure: no Node built-ins.
 */

export class AutoproxError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * The server refused the WebSocket upgrade. `status` and `code` are the server's (README, "Opening
 * a session": 401 `invalid_token`, 429 `rate_limited`, ...). In a browser, which hides the HTTP
 * response of a failed upgrade, `status` is null and `code` is `upgrade_failed`.
 */
export class RefusedError extends AutoproxError {
  constructor(
    readonly status: number | null,
    code: string,
    message: string,
    /** From `Retry-After` (429, 503), seconds. */
    readonly retryAfterS: number | null = null,
  ) {
    super(code, message);
  }

  /** Worth trying again later (the server is busy or limits the rate), not a bad request or token. */
  get retryable(): boolean {
    return this.status === null || this.status === 429 || this.status === 503;
  }
}

/** No autoprox server answers at that URL (`code: unreachable`). */
export class UnreachableError extends AutoproxError {}

/** The session closed: the WebSocket close code and the session's `reason` (README, "Close codes"). */
export class ClosedError extends AutoproxError {
  constructor(
    readonly closeCode: number,
    readonly reason: string,
    message: string,
  ) {
    super('closed', message);
  }
}

/**
 * A message the library does not send because the server would reject it, with the server's
 * code (`payload_too_large`, `text_not_supported`), or because the session is not open
 * (`not_open`: reconnecting; `closed`).
 */
export class SendError extends AutoproxError {}

/** A wait that took longer than asked (`code: timeout`). */
export class TimeoutError extends AutoproxError {
  constructor(message: string) {
    super('timeout', message);
  }
}
