/**
 * `--relay` names into the endpoints sessions send to, once at start: an IP literal is itself,
 * a name is every A and AAAA record it has then (the relay answers on both families). A name that
 * does not resolve stops the start: a server told to use a relay should not run without it
 * unnoticed.
 */
import { lookup } from 'node:dns/promises';
import type { Endpoint } from '../../machines/endpoint.js';
import { StartError } from '../errors.js';
import { normalizeAddress } from '../net/address.js';
import type { HostPort } from '../net/host-port.js';

export type RelayLookup = (host: string) => Promise<Array<{ address: string }>>;

const systemLookup: RelayLookup = (host) => lookup(host, { all: true });

export async function resolveRelays(relays: readonly HostPort[], lookupAll: RelayLookup = systemLookup): Promise<Endpoint[]> {
  const out: Endpoint[] = [];
  const add = (endpoint: Endpoint) => {
    if (!out.some((e) => e.family === endpoint.family && e.address === endpoint.address && e.port === endpoint.port)) out.push(endpoint);
  };
  for (const relay of relays) {
    const literal = normalizeAddress(relay.host);
    if (literal) {
      add({ ...literal, port: relay.port });
      continue;
    }
    let records: Array<{ address: string }>;
    try {
      records = await lookupAll(relay.host);
    } catch (err) {
      throw new StartError(`--relay ${relay.text} does not resolve: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    for (const record of records) {
      const address = normalizeAddress(record.address);
      if (address) add({ ...address, port: relay.port });
    }
  }
  return out;
}
