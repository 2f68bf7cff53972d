/**
 * Coded errors. A code is a stable string that clients and tests may switch on; a message is
 * for people. Foreign errors (jose, node) are translated where they enter.
 */

/** Why an HTTP request or WebSocket upgrade was refused (the `error.code` of the JSON body). */
export type RefusalCode =
  | 'missing_token'
  | 'invalid_token'
  | 'expired_token'
  | 'bad_parameter'
  | 'bad_handshake'
  | 'not_found'
  | 'method_not_allowed'
  | 'upgrade_required'
  | 'unavailable'
  | 'auth_unavailable'
  | 'target_denied'
  | 'rate_limited'
  | 'too_many_sessions'
  | 'server_full'
  | 'forbidden';

export class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: RefusalCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'Refusal';
  }

  body(): string {
    return JSON.stringify({ error: { code: this.code, message: this.message } });
  }
}

/** Why a client message was rejected (the `code` of a `{"type":"error"}` frame); the session goes on. */
export type ClientErrorCode =
  | 'payload_too_large'
  | 'text_not_supported'
  | 'queue_full'
  | 'not_delivered'
  | 'rate_limited'
  | 'client_backpressure';

export interface ErrorFrame {
  type: 'error';
  code: ClientErrorCode;
  message: string;
  /** How many events this frame reports, when more than one. */
  count?: number;
}

/** A listening socket of the server: the HTTP/WebSocket port, the UDP port, the inspector relay. */
export type Listener = 'http' | 'udp' | 'inspect';

/** A bind or listen that failed: for what, on which port, with which system error (`EADDRINUSE`). */
export interface BindFailure {
  listener: Listener;
  /** What was tried, for people: "UDP ipv4 bind", "HTTP listen on 127.0.0.1:8080". */
  action: string;
  port: number;
  errno: string;
}

/** The server could not start (a port taken, a file unreadable, ...); the message says what and where. */
export class StartError extends Error {
  readonly code = 'start_failed';
  constructor(
    message: string,
    /** Set when a port could not be bound, so the command line can name the flag to change. */
    readonly bind: BindFailure | null = null,
  ) {
    super(message);
  }
}

/** A bad flag, environment variable or config value; the message names it. */
export class ConfigError extends Error {
  readonly code = 'bad_config';
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}
