/**
 * The client address of a request: the socket's peer, or, when that peer is a trusted proxy
 * (`--trust-proxy`), the nearest address in X-Forwarded-For that is not a trusted proxy.
 * Pure: the trusted list is handed in. Without a trusted proxy the header is ignored, so a
 * client cannot choose its own address for the rate limits.
 */
import { normalizeAddress } from '../net/address.js';
import type { TargetRule } from '../net/target-policy.js';

/** X-Forwarded-For entries looked at, at most. */
const MAX_HOPS = 16;

function trusted(address: string, proxies: TargetRule[]): boolean {
  const literal = normalizeAddress(address);
  if (!literal) return false;
  const bare = literal.address.replace(/%.*$/, '');
  return proxies.some((p) => p.family === literal.family && p.list.check(bare, literal.family));
}

/** One X-Forwarded-For entry as an address: "192.0.2.1", "2001:db8::1", "[2001:db8::1]:4711", "192.0.2.1:4711". */
function entryAddress(entry: string): string | null {
  const text = entry.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(text);
  const candidate = bracketed ? bracketed[1]! : /^[\d.]+:\d+$/.test(text) ? text.split(':')[0]! : text;
  return normalizeAddress(candidate)?.address ?? null;
}

export function clientAddress(remote: string | undefined, forwardedFor: string | string[] | undefined, proxies: TargetRule[]): string {
  const peer = normalizeAddress(remote ?? '')?.address ?? remote ?? 'unknown';
  if (proxies.length === 0 || forwardedFor === undefined || !trusted(peer, proxies)) return peer;
  const hops = [forwardedFor].flat().join(',').split(',').slice(-MAX_HOPS);
  let client = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const address = entryAddress(hops[i]!);
    if (address === null) break; // a garbled entry: trust nothing before it
    client = address;
    if (!trusted(address, proxies)) break;
  }
  return client;
}
