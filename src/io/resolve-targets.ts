/**
 * Turns the client's `host` parameters into candidate endpoints: IP literals as they are, DNS
 * names through getaddrinfo (all AAAA and A records). IPv6 first, then IPv4; only families
 * this server can send on; never an address that can never be a peer.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { fromPromise } from 'xstate';
import { systemClock, type Clock, type Timer } from '../clock.js';
import type { ResolveInput, ResolvedTargets } from '../../machines/types.js';
import { neverPeerReason, normalizeAddress, parseHost } from '../net/address.js';
import { sameEndpoint, type Endpoint, type Family } from '../../machines/endpoint.js';

/** Candidate endpoints one session punches, at most, whatever its names resolve to. */
export const MAX_CANDIDATES = 16;
/** How long one name may take to resolve (ms). */
export const RESOLVE_TIMEOUT_MS = 5000;

export type Lookup = (name: string) => Promise<Array<{ address: string; family: number }>>;

const systemLookup: Lookup = (name) => dnsLookup(name, { all: true, verbatim: true });

function withTimeout<T>(promise: Promise<T>, ms: number, what: string, clock: Clock): Promise<T> {
  let timer: Timer | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = clock.after(ms, () => reject(new Error(`${what}: timed out after ${ms} ms`)));
  });
  return Promise.race([promise, timeout]).finally(() => timer?.cancel());
}

/** Why a session may not send to an endpoint (target policy), or null. */
export type DenyTarget = (endpoint: Endpoint) => string | null;

export async function resolveTargets(
  input: ResolveInput,
  lookup: Lookup = systemLookup,
  deny: DenyTarget = input.deny ?? (() => null),
  clock: Clock = systemClock,
): Promise<ResolvedTargets> {
  const problems: string[] = [];
  // One list per host, so candidates keep the client's order whatever resolves first.
  const perHost = input.hosts.map(() => [] as Endpoint[]);
  await Promise.all(
    input.hosts.map(async (host, index) => {
      const consider = (family: Family, address: string) => {
        const endpoint: Endpoint = { family, address, port: input.port };
        const never = neverPeerReason(family, address);
        const denied = never ? `${address} is ${never}` : deny(endpoint);
        if (denied) problems.push(`${host}: ${denied}`);
        else if (!input.families.includes(family)) problems.push(`${host}: ${address} is ${family} and this server has no ${family} socket`);
        else perHost[index]!.push(endpoint);
      };
      const parsed = parseHost(host);
      if ('error' in parsed) {
        problems.push(`${host}: ${parsed.error}`);
        return;
      }
      if (parsed.kind === 'ip') {
        consider(parsed.family, parsed.address);
        return;
      }
      try {
        const records = await withTimeout(lookup(parsed.name), RESOLVE_TIMEOUT_MS, parsed.name, clock);
        if (records.length === 0) problems.push(`${host}: no address`);
        for (const record of records) {
          const literal = normalizeAddress(record.address);
          if (literal) consider(literal.family, literal.address);
        }
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        problems.push(`${host}: ${code ?? (err as Error).message}`);
      }
    }),
  );

  const found = perHost.flat();
  const candidates: Endpoint[] = [];
  for (const family of ['ipv6', 'ipv4'] as const) {
    for (const endpoint of found) {
      if (endpoint.family === family && !candidates.some((c) => sameEndpoint(c, endpoint))) candidates.push(endpoint);
    }
  }
  if (candidates.length > MAX_CANDIDATES) {
    problems.push(`${candidates.length - MAX_CANDIDATES} more addresses left out: at most ${MAX_CANDIDATES} candidates per session`);
  }
  return { candidates: candidates.slice(0, MAX_CANDIDATES), problems };
}

/** The resolver actor: the session's own target policy comes with its input. */
export function createResolveTargetsActor(lookup: Lookup = systemLookup, clock: Clock = systemClock) {
  return fromPromise<ResolvedTargets, ResolveInput>(({ input }) => resolveTargets(input, lookup, input.deny, clock));
}
