/** What both builds of the client library export besides `connect`. */
export { Session, DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_HIGH_WATER_MARK_BYTES, DEFAULT_MAX_QUEUED_MESSAGES, DEFAULT_CONNECT_TIMEOUT_MS } from './session.js';
export type { ConnectOptions, SessionEnd, SessionEvents, ReconnectEvent } from './session.js';
export type { ReconnectOptions } from './backoff.js';
export type { SessionParameters } from './parameters.js';
export { AutoproxError, ClosedError, RefusedError, SendError, TimeoutError, UnreachableError } from './errors.js';
export { parseServerFrame } from './frames.js';
export type { EndpointsFrame, ErrorFrame, Family, LinkStatus, ServerErrorCode, ServerFrame, StatusFrame, StatusReason } from './frames.js';
