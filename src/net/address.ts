/**
 * Classifies peer addresses given by clients. Pure (node:net's parsers only, no sockets).
 */
import { BlockList, isIP } from 'node:net';
import type { Endpoint, Family } from '../../machines/endpoint.js';

export type ParsedHost =
  | { kind: 'ip'; family: Family; address: string }
  | { kind: 'name'; name: string };

/** RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens; at most 253 characters. */
const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;
export const MAX_HOST_LENGTH = 253;

/** Where a peer can never be: these targets are refused for every client. */
const NEVER_PEER: Array<{ why: string; list: BlockList }> = [
  { why: 'an unspecified address', list: block([['0.0.0.0', 8, 'ipv4'], ['::', 128, 'ipv6']]) },
  { why: 'a multicast address', list: block([['224.0.0.0', 4, 'ipv4'], ['ff00::', 8, 'ipv6']]) },
  { why: 'the broadcast address', list: block([['255.255.255.255', 32, 'ipv4']]) },
];

function block(subnets: Array<[string, number, Family]>): BlockList {
  const list = new BlockList();
  for (const [net, prefix, family] of subnets) list.addSubnet(net, prefix, family);
  return list;
}


/** Parses one `host` query value: an IPv4 literal, an IPv6 literal (no brackets) or a DNS name. */
export function parseHost(value: string): ParsedHost | { error: string } {
  if (value.length === 0) return { error: 'is empty' };
  if (value.replace(/\.$/, '').length > MAX_HOST_LENGTH) return { error: `is longer than ${MAX_HOST_LENGTH} characters` };
  if (value.startsWith('[')) return { error: 'must be given without brackets (e.g. host=2001:db8::1)' };
  const literal = normalizeAddress(value);
  if (literal) return { kind: 'ip', ...literal };
  if (value.includes(':')) return { error: `"${value}" is not a valid IPv6 address` };
  const name = value.endsWith('.') ? value.slice(0, -1) : value;
  const labels = name.split('.');
  if (!labels.every((label) => LABEL.test(label))) {
    return { error: `"${value}" is neither an IP address nor a valid DNS name` };
  }
  if (/^\d+$/.test(labels[labels.length - 1]!)) {
    return { error: `"${value}" is neither an IP address nor a valid DNS name` };
  }
  return { kind: 'name', name };
}

/**
 * An IP literal as family + canonical address, or null. IPv4-mapped IPv6 (any spelling) becomes
 * IPv4; IPv6 is written as RFC 5952 says (lower case, longest zero run compressed), the form
 * the kernel reports datagram sources in, so addresses compare as strings.
 */
export function normalizeAddress(value: string): { family: Family; address: string } | null {
  const version = isIP(value);
  if (version === 4) return { family: 'ipv4', address: value };
  if (version !== 6) return null;
  const zoneAt = value.indexOf('%');
  const zone = zoneAt < 0 ? '' : value.slice(zoneAt);
  const groups = ipv6Groups(zoneAt < 0 ? value : value.slice(0, zoneAt));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return { family: 'ipv4', address: `${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}` };
  }
  return { family: 'ipv6', address: formatIpv6(groups) + zone };
}

/** The eight 16-bit groups of an IPv6 address already known valid (node:net's isIP). */
function ipv6Groups(address: string): number[] {
  let text = address.toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const parse = (part: string | undefined) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const left = parse(head);
  const right = parse(tail);
  return [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/** RFC 5952 section 4: the longest run of two or more zero groups becomes "::". */
function formatIpv6(groups: number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** Why an address can never be a peer, or null when it can. */
export function neverPeerReason(family: Family, address: string): string | null {
  const bare = family === 'ipv6' ? address.replace(/%.*$/, '') : address;
  for (const { why, list } of NEVER_PEER) {
    if (list.check(bare, family)) return why;
  }
  return null;
}

export function endpoint(family: Family, address: string, port: number): Endpoint {
  return { family, address, port };
}

/**
 * The group a datagram source is counted in by per-source limits: an IPv4 address, or the /64
 * of an IPv6 address (one subscriber usually holds a whole /64, so counting per /128 would give
 * one host 2^64 fresh budgets).
 */
export function sourceGroup(family: Family, address: string): string {
  if (family === 'ipv4') return address;
  const zoneAt = address.indexOf('%');
  const groups = ipv6Groups(zoneAt < 0 ? address : address.slice(0, zoneAt));
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** A loopback address (127.0.0.0/8, ::1, or an IPv4-mapped loopback). */
export function isLoopback(ip: string): boolean {
  const literal = normalizeAddress(ip);
  return literal !== null && (literal.family === 'ipv4' ? literal.address.startsWith('127.') : literal.address === '::1');
}
