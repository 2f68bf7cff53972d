/**
 * `HOST:PORT` as servers are named on the command line (`--stun`, and the lead's `--relay`):
 * `stun.example.net:3478`, `192.0.2.1:3478`, `[2001:db8::1]:3478` (IPv6 literals in brackets,
 * as in URLs). Pure.
 */
import { normalizeAddress, parseHost } from './address.js';

export interface HostPort {
  /** An IP literal (IPv6 without brackets, RFC 5952 form) or a DNS name. */
  host: string;
  port: number;
  /** How it is written back: `host:port` or `[v6]:port`. */
  text: string;
}

export function parseHostPort(value: string): HostPort | { error: string } {
  const text = value.trim();
  const bracketed = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text);
  const plain = /^([^:[\]]+):(\d{1,5})$/.exec(text);
  if (!bracketed && !plain) {
    const hint = text.split(':').length > 2 && !text.startsWith('[') ? ' (write IPv6 literals in brackets: [2001:db8::1]:3478)' : '';
    return { error: `"${value}" is not HOST:PORT${hint}` };
  }
  const [, rawHost, rawPort] = (bracketed ?? plain)!;
  const port = Number(rawPort);
  if (port < 1 || port > 65535) return { error: `"${value}": the port must be from 1 to 65535` };
  if (bracketed) {
    const literal = normalizeAddress(rawHost!);
    if (!literal || literal.family !== 'ipv6' || literal.address.includes('%')) return { error: `"${value}": [${rawHost}] is not an IPv6 address` };
    return { host: literal.address, port, text: `[${literal.address}]:${port}` };
  }
  const parsed = parseHost(rawHost!);
  if ('error' in parsed) return { error: `"${value}": the host ${parsed.error}` };
  const host = parsed.kind === 'ip' ? parsed.address : parsed.name.toLowerCase();
  return { host, port, text: `${host}:${port}` };
}

/** A comma-separated list (how an environment variable or a joined repeatable flag carries several). */
export function parseHostPortList(value: string): HostPort[] | { error: string } {
  const out: HostPort[] = [];
  for (const item of value.split(',').map((s) => s.trim()).filter((s) => s.length > 0)) {
    const parsed = parseHostPort(item);
    if ('error' in parsed) return parsed;
    if (!out.some((o) => o.text === parsed.text)) out.push(parsed);
  }
  return out;
}
