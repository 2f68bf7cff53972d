/**
 * The one line `serve` prints when the server cannot start: for a port that is taken (or
 * needs privileges), the flag to change and the remedy, with the system's code once. Pure.
 */
import type { BindFailure, Listener, StartError } from '../errors.js';

/** The flag that sets the port of each listener. */
const FLAG_OF: Record<Listener, string> = { http: 'port', udp: 'udp-port', inspect: 'inspect-port' };
/** Ports below this need privileges on most systems (EACCES). */
const FIRST_UNPRIVILEGED_PORT = 1024;

function bindLine(bind: BindFailure): string | null {
  const flag = `--${FLAG_OF[bind.listener]}`;
  if (bind.errno === 'EADDRINUSE') {
    return `${bind.action} failed: EADDRINUSE (port ${bind.port} is in use, perhaps by another autoprox): give ${flag} another port, or ${flag} 0 for any free port`;
  }
  if (bind.errno === 'EACCES' && bind.port < FIRST_UNPRIVILEGED_PORT) {
    return `${bind.action} failed: EACCES (port ${bind.port} needs privileges): give ${flag} a port from ${FIRST_UNPRIVILEGED_PORT} up, or ${flag} 0 for any free port`;
  }
  return null;
}

/** What follows "autoprox: could not start: ". */
export function startFailureLine(err: StartError): string {
  return (err.bind && bindLine(err.bind)) ?? err.message;
}
