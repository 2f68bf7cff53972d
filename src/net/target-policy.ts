/**
 * Where a session may send UDP. Pure: the server hands in its own endpoints; nothing here
 * opens a socket.
 *
 * Order of the checks (first match decides):
 * 1. never a peer: unspecified, multicast, broadcast (always denied);
 * 2. the server's own UDP endpoints (denied unless `allowSelf`): no loops through ourselves;
 * 3. `--deny-targets`;
 * 4. `--allow-targets`, when given: only these;
 * 5. the token's `apx_targets` claim, when present: only these.
 * Loopback and private ranges are allowed by default: LAN peers are legitimate.
 */
import { BlockList, isIP } from 'node:net';
import { neverPeerReason, normalizeAddress } from './address.js';
import type { Endpoint, Family } from '../../machines/endpoint.js';

/** A CIDR, optionally limited to a port or port range: "10.0.0.0/8", "192.0.2.7/32:40000", "[2001:db8::/32]:40000-40100". */
export interface TargetRule {
  text: string;
  family: Family;
  list: BlockList;
  ports: [number, number] | null;
}

/** Parses "addr/prefix" (a bare address means a single host). */
export function parseCidr(text: string): { family: Family; address: string; prefix: number } | { error: string } {
  const [addressText, prefixText, ...rest] = text.trim().split('/');
  if (rest.length > 0 || !addressText) return { error: `"${text}" is not a CIDR (address/prefix)` };
  const literal = normalizeAddress(addressText);
  if (!literal || isIP(addressText) === 0) return { error: `"${text}": "${addressText}" is not an IP address` };
  const max = literal.family === 'ipv4' ? 32 : 128;
  if (prefixText === undefined) return { ...literal, prefix: max };
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) {
    return { error: `"${text}": the prefix must be 0-${max}` };
  }
  // An IPv4-mapped IPv6 CIDR would silently change meaning: refuse it.
  if (literal.family === 'ipv4' && isIP(addressText) === 6) return { error: `"${text}": write IPv4 ranges in IPv4` };
  return { ...literal, prefix: Number(prefixText) };
}

function parsePorts(text: string): [number, number] | null {
  const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!match) return null;
  const low = Number(match[1]);
  const high = Number(match[2] ?? match[1]);
  return low >= 1 && high <= 65535 && low <= high ? [low, high] : null;
}

export function parseTargetRule(text: string): TargetRule | { error: string } {
  const trimmed = text.trim();
  let cidrText = trimmed;
  let portText: string | null = null;
  const bracketed = /^\[([^\]]+)\](?::(.+))?$/.exec(trimmed);
  if (bracketed) {
    cidrText = bracketed[1]!;
    portText = bracketed[2] ?? null;
  } else if ((trimmed.match(/:/g) ?? []).length === 1) {
    [cidrText, portText] = trimmed.split(':') as [string, string];
  }
  const cidr = parseCidr(cidrText);
  if ('error' in cidr) return cidr;
  const ports = portText === null ? null : parsePorts(portText);
  if (portText !== null && ports === null) return { error: `"${text}": the port must be 1-65535 or a range like 40000-40100` };
  const list = new BlockList();
  list.addSubnet(cidr.address, cidr.prefix, cidr.family);
  return { text: trimmed, family: cidr.family, list, ports };
}

/** Parses a comma-separated list of rules; the error names the bad entry. */
export function parseTargetRules(text: string): TargetRule[] | { error: string } {
  const rules: TargetRule[] = [];
  for (const entry of text.split(',').map((e) => e.trim()).filter((e) => e.length > 0)) {
    const rule = parseTargetRule(entry);
    if ('error' in rule) return rule;
    rules.push(rule);
  }
  return rules;
}

function matches(rules: TargetRule[], endpoint: Endpoint, bare: string): TargetRule | undefined {
  return rules.find(
    (r) =>
      r.family === endpoint.family &&
      r.list.check(bare, endpoint.family) &&
      (r.ports === null || (endpoint.port >= r.ports[0] && endpoint.port <= r.ports[1])),
  );
}

/** This server's UDP endpoints: one object for as long as they stay the same (see own-endpoints.ts). */
export interface OwnEndpoints {
  ports: Readonly<Record<Family, number | null>>;
  addresses: BlockList;
}

export interface TargetPolicyOptions {
  allow: TargetRule[] | null;
  deny: TargetRule[];
  allowSelf: boolean;
  /** This server's UDP endpoints right now: bound ports on every local address. */
  ownEndpoints: () => OwnEndpoints;
}

/** Decisions remembered per set of token rules, at most; past it that memo starts afresh. */
export const DENY_MEMO_MAX_ENTRIES = 4096;
/** The memo key of "no token rules". */
const NO_TOKEN_RULES: TargetRule[] = [];

export class TargetPolicy {
  /**
   * Decisions by token rules and endpoint. Every heartbeat sent is checked, and a check costs
   * several BlockList lookups (each makes a SocketAddress): microseconds per heartbeat, a large
   * share of a session's upkeep. A decision depends only on the endpoint, the rules and this
   * server's own endpoints, so it is kept until those change (ownEndpoints answers the same
   * object until then); the rules' memo goes when the rules (the session) go.
   */
  #memo = new WeakMap<TargetRule[], Map<string, string | null>>();
  /**
   * The last decision per endpoint object: an established path asks about the same object
   * every heartbeat, and this answers without building a key. Endpoints are never mutated.
   */
  #byObject = new WeakMap<Endpoint, { rules: TargetRule[]; reason: string | null }>();
  /** The own endpoints the memo was made with. */
  #memoOwn: OwnEndpoints | null = null;

  constructor(private readonly options: TargetPolicyOptions) {}

  /** Why `endpoint` may not be sent to, or null when it may. `tokenRules` narrows further. */
  deny(endpoint: Endpoint, tokenRules: TargetRule[] | null = null): string | null {
    const own = this.options.allowSelf ? null : this.options.ownEndpoints();
    if (own !== this.#memoOwn) {
      this.#memo = new WeakMap();
      this.#byObject = new WeakMap();
      this.#memoOwn = own;
    }
    const rules = tokenRules ?? NO_TOKEN_RULES;
    const last = this.#byObject.get(endpoint);
    if (last !== undefined && last.rules === rules) return last.reason;
    let memo = this.#memo.get(rules);
    if (!memo) {
      memo = new Map();
      this.#memo.set(rules, memo);
    }
    const key = `${endpoint.family} ${endpoint.port} ${endpoint.address}`;
    let reason = memo.get(key);
    if (reason === undefined) {
      reason = this.#decide(endpoint, tokenRules, own);
      if (memo.size >= DENY_MEMO_MAX_ENTRIES) memo.clear();
      memo.set(key, reason);
    }
    this.#byObject.set(endpoint, { rules, reason });
    return reason;
  }

  #decide(endpoint: Endpoint, tokenRules: TargetRule[] | null, own: OwnEndpoints | null): string | null {
    const never = neverPeerReason(endpoint.family, endpoint.address);
    if (never) return `${endpoint.address} is ${never}`;
    const bare = endpoint.family === 'ipv6' ? endpoint.address.replace(/%.*$/, '') : endpoint.address;
    if (own !== null) {
      if (own.ports[endpoint.family] === endpoint.port && own.addresses.check(bare, endpoint.family)) {
        return `${endpoint.address} port ${endpoint.port} is this server's own UDP endpoint`;
      }
    }
    const denied = matches(this.options.deny, endpoint, bare);
    if (denied) return `${endpoint.address} port ${endpoint.port} is denied by --deny-targets ${denied.text}`;
    if (this.options.allow && !matches(this.options.allow, endpoint, bare)) {
      return `${endpoint.address} port ${endpoint.port} is not in --allow-targets`;
    }
    if (tokenRules && !matches(tokenRules, endpoint, bare)) {
      return `${endpoint.address} port ${endpoint.port} is not among the token's allowed targets`;
    }
    return null;
  }
}
