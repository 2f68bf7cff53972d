/**
 * This server's own UDP endpoints, for the target policy: the bound ports on every address that
 * reaches this host (loopback, the interfaces' addresses, or the one bind address).
 *
 * The answer is one object for as long as nothing in it changes (same ports, same addresses):
 * the policy keeps its decisions while it gets the same object back, so a re-read that finds
 * the same interfaces costs no decision anywhere.
 */
import { networkInterfaces } from 'node:os';
import { BlockList } from 'node:net';
import type { Family } from '../../machines/endpoint.js';
import type { Clock } from '../clock.js';
import type { OwnEndpoints } from '../net/target-policy.js';

/** Interface addresses are read again at most this often (ms). */
export const LOCAL_ADDRESSES_TTL_MS = 10_000;

export type { OwnEndpoints };

/** The addresses to list, in a stable order (what decides whether the list changed). */
function ownAddresses(bind: { ipv4: string; ipv6: string }, interfaces: typeof networkInterfaces): Array<{ address: string; family: Family; prefix: number }> {
  const found: Array<{ address: string; family: Family; prefix: number }> = [];
  if (bind.ipv4 === '0.0.0.0') found.push({ address: '127.0.0.0', family: 'ipv4', prefix: 8 });
  else found.push({ address: bind.ipv4, family: 'ipv4', prefix: 32 });
  if (bind.ipv6 === '::') found.push({ address: '::1', family: 'ipv6', prefix: 128 });
  else found.push({ address: bind.ipv6, family: 'ipv6', prefix: 128 });
  for (const entries of Object.values(interfaces())) {
    for (const entry of entries ?? []) {
      const family = entry.family === 'IPv6' ? 'ipv6' : 'ipv4';
      const wildcard = family === 'ipv6' ? bind.ipv6 === '::' : bind.ipv4 === '0.0.0.0';
      if (wildcard) found.push({ address: entry.address.replace(/%.*$/, ''), family, prefix: family === 'ipv6' ? 128 : 32 });
    }
  }
  return found;
}

/** `interfaces`: the host's interfaces (tests hand in their own). */
export function ownEndpointsOf(
  ports: () => Record<Family, number | null>,
  bind: { ipv4: string; ipv6: string },
  clock: Clock,
  interfaces: typeof networkInterfaces = networkInterfaces,
): () => OwnEndpoints {
  let list: BlockList | null = null;
  let signature = '';
  let readAt = 0;
  const addresses = () => {
    const now = clock.now();
    if (list && now - readAt < LOCAL_ADDRESSES_TTL_MS) return list;
    readAt = now;
    const found = ownAddresses(bind, interfaces);
    const nextSignature = found.map((a) => `${a.family} ${a.address}/${a.prefix}`).join(',');
    if (list && nextSignature === signature) return list;
    const next = new BlockList();
    for (const a of found) next.addSubnet(a.address, a.prefix, a.family);
    list = next;
    signature = nextSignature;
    return list;
  };
  let last: OwnEndpoints | null = null;
  return () => {
    const now = ports();
    const listed = addresses();
    if (last && last.addresses === listed && last.ports.ipv4 === now.ipv4 && last.ports.ipv6 === now.ipv6) return last;
    last = { ports: { ipv4: now.ipv4, ipv6: now.ipv6 }, addresses: listed };
    return last;
  };
}
