/**
 * The session URL from what a program gives (README, "Opening a session"), checked here with
 * the server's own rules so that a mistake is an error at once, naming the parameter. Pure.
 */
import { AutoproxError } from './errors.js';

export interface SessionParameters {
  /** The peer server's candidate addresses or names (1-16). */
  hosts: string[];
  /** The peer server's UDP port. */
  port: number;
  /** The pre-shared key: 32 bytes, base64url (`autoprox keygen`). */
  key: string;
  /** A token for this server (`autoprox token`, or your identity provider's). */
  token: string;
}

/** The server's limit on `host` candidates. */
export const MAX_HOSTS = 16;
const KEY = /^[A-Za-z0-9_-]{43}=?$/;

export function validateOptions(options: SessionParameters): void {
  const bad = (name: string, message: string) => new AutoproxError('bad_parameter', `${name}: ${message}`);
  if (typeof options !== 'object' || options === null) throw bad('options', 'give { hosts, port, key, token }');
  if (!Array.isArray(options.hosts) || options.hosts.length === 0) throw bad('hosts', 'give at least one peer address or name, as an array');
  if (options.hosts.length > MAX_HOSTS) throw bad('hosts', `at most ${MAX_HOSTS} candidates`);
  for (const host of options.hosts) {
    if (typeof host !== 'string' || host.length === 0 || host.length > 253) throw bad('hosts', `"${String(host)}" is not an address or a name`);
  }
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) throw bad('port', 'must be an integer from 1 to 65535 (the peer server\'s UDP port)');
  if (typeof options.key !== 'string' || !KEY.test(options.key)) throw bad('key', 'must be 32 bytes in base64url (43 characters; `autoprox keygen` makes one)');
  if (typeof options.token !== 'string' || options.token.length === 0) throw bad('token', 'give a token (`autoprox token`, or your identity provider\'s)');
}

/**
 * `base` may be the server's address (`ws://host:8080`, `http://...` too) or the full session
 * path; the query carries the candidates, the port and the key.
 */
export function sessionUrl(base: string | URL, options: SessionParameters): URL {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new AutoproxError('bad_parameter', `url: "${String(base)}" is not a URL (like ws://127.0.0.1:8080)`);
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new AutoproxError('bad_parameter', `url: must start with ws://, wss://, http:// or https://, not ${url.protocol}`);
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/v0/ws/proxy';
  for (const name of ['host', 'port', 'key', 'access_token']) url.searchParams.delete(name);
  for (const host of options.hosts) url.searchParams.append('host', host);
  url.searchParams.set('port', String(options.port));
  url.searchParams.set('key', options.key);
  return url;
}
