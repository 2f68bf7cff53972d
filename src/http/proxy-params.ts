/**
 * Validates the query of `GET /v0/ws/proxy?host=H&port=P&key=K`. Pure: every failure names
 * the parameter and becomes a 400 before the upgrade.
 */
import { neverPeerReason, parseHost } from '../net/address.js';
import { Refusal } from '../errors.js';
import { PSK_BYTES } from '../protocol/crypto.js';

/** Candidate hosts one session may give. */
export const MAX_HOSTS = 16;
const KNOWN = new Set(['host', 'port', 'key', 'access_token']);
const BASE64URL_KEY = /^[A-Za-z0-9_-]{43}=?$/;

export interface ProxyParams {
  /** IP literals (canonical) and DNS names, in the client's order. */
  hosts: string[];
  port: number;
  key: Buffer;
}

function bad(param: string, message: string): Refusal {
  return new Refusal(400, 'bad_parameter', `${param}: ${message}`);
}

export function parseProxyParams(query: URLSearchParams): ProxyParams | Refusal {
  for (const name of new Set(query.keys())) {
    if (!KNOWN.has(name)) return bad(name, 'unknown parameter (expected host, port, key, access_token)');
  }

  const hostValues = query.getAll('host');
  if (hostValues.length === 0) return bad('host', 'is required: the peer server address or DNS name');
  if (hostValues.length > MAX_HOSTS) return bad('host', `at most ${MAX_HOSTS} candidates`);
  const hosts: string[] = [];
  for (const value of hostValues) {
    const parsed = parseHost(value);
    if ('error' in parsed) return bad('host', parsed.error);
    if (parsed.kind === 'ip') {
      const why = neverPeerReason(parsed.family, parsed.address);
      if (why) return bad('host', `${value} is ${why}, which can never be a peer`);
      hosts.push(parsed.address);
    } else {
      hosts.push(parsed.name);
    }
  }

  const ports = query.getAll('port');
  if (ports.length === 0) return bad('port', 'is required: the peer server UDP port (1-65535)');
  if (ports.length > 1) return bad('port', 'given more than once');
  const port = Number(ports[0]);
  if (!/^\d{1,5}$/.test(ports[0]!) || port < 1 || port > 65535) return bad('port', 'must be an integer from 1 to 65535');

  const keys = query.getAll('key');
  if (keys.length === 0) return bad('key', `is required: ${PSK_BYTES} random bytes, base64url`);
  if (keys.length > 1) return bad('key', 'given more than once');
  const text = keys[0]!;
  if (!BASE64URL_KEY.test(text)) {
    return bad('key', `must be ${PSK_BYTES} bytes in base64url (43 characters of A-Z a-z 0-9 - _, optional "=" padding)`);
  }
  const key = Buffer.from(text, 'base64url');
  if (key.length !== PSK_BYTES || key.toString('base64url') !== text.replace(/=$/, '')) {
    return bad('key', `is not a canonical base64url encoding of ${PSK_BYTES} bytes`);
  }

  if (query.getAll('access_token').length > 1) return bad('access_token', 'given more than once');
  return { hosts, port, key };
}
