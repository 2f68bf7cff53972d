/**
 * JSON-lines logs on stdout (pino). Secrets never reach a log line: nothing logs a request
 * URL, a header, a key or a token; the redact list is a second line of defence.
 */
import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.js';

export type { Logger };

export function createLogger(level: LogLevel, destination: NodeJS.WritableStream | number = 1): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: ['key', 'token', 'secret', 'jwtSecret', '*.key', '*.token', '*.secret', '*.jwtSecret'], censor: '[redacted]' },
    },
    typeof destination === 'number' ? pino.destination({ fd: destination, sync: true }) : destination,
  );
}
