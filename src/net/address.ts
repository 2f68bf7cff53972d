/**
 * Classifies peer addresses given by clients. Pure (node:net's parsers only, no sockets).
 */
import { BlockList, isIP } from 'node:net';
import type { Endpoint, Family } from './endpoint.js';

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

const MAPPED_V4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/** Parses one `host` query value: an IPv4 literal, an IPv6 literal (no brackets) or a DNS name. */
export function parseHost(value: string): ParsedHost | { error: string } {
  if (value.length === 0) return { error: 'is empty' };
  if (value.length > MAX_HOST_LENGTH) return { error: `is longer than ${MAX_HOST_LENGTH} characters` };
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

/** An IP literal as family + canonical address (IPv4-mapped IPv6 becomes IPv4), or null. */
export function normalizeAddress(value: string): { family: Family; address: string } | null {
  const version = isIP(value);
  if (version === 4) return { family: 'ipv4', address: value };
  if (version !== 6) return null;
  const mapped = MAPPED_V4.exec(value);
  if (mapped && isIP(mapped[1]!) === 4) return { family: 'ipv4', address: mapped[1]! };
  return { family: 'ipv6', address: value };
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
