/**
 * This server's own UDP endpoints, for the target policy: the bound ports on every address that
 * reaches this host (loopback, the interfaces' addresses, or the one bind address).
 */
import { networkInterfaces } from 'node:os';
import { BlockList } from 'node:net';
import type { Family } from '../../machines/endpoint.js';
import type { Clock } from '../clock.js';

/** Interface addresses are read again at most this often (ms). */
export const LOCAL_ADDRESSES_TTL_MS = 10_000;

export function ownEndpointsOf(ports: () => Record<Family, number | null>, bind: { ipv4: string; ipv6: string }, clock: Clock) {
  let cached: BlockList | null = null;
  let readAt = 0;
  const addresses = () => {
    const now = clock.now();
    if (cached && now - readAt < LOCAL_ADDRESSES_TTL_MS) return cached;
    const list = new BlockList();
    if (bind.ipv4 === '0.0.0.0') list.addSubnet('127.0.0.0', 8, 'ipv4');
    else list.addAddress(bind.ipv4, 'ipv4');
    if (bind.ipv6 === '::') list.addAddress('::1', 'ipv6');
    else list.addAddress(bind.ipv6, 'ipv6');
    for (const entries of Object.values(networkInterfaces())) {
      for (const entry of entries ?? []) {
        const family = entry.family === 'IPv6' ? 'ipv6' : 'ipv4';
        const wildcard = family === 'ipv6' ? bind.ipv6 === '::' : bind.ipv4 === '0.0.0.0';
        if (wildcard) list.addAddress(entry.address.replace(/%.*$/, ''), family);
      }
    }
    cached = list;
    readAt = now;
    return list;
  };
  return () => ({ ports: ports(), addresses: addresses() });
}
