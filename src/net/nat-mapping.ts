/**
 * What STUN answers say about this host: its public endpoint per family, and whether its NAT
 * maps endpoint-independently (every destination sees the same public endpoint, so a peer can
 * punch to the one STUN reported) or endpoint-dependently (a symmetric NAT: each destination
 * gets its own mapping). Pure.
 * @see https://www.rfc-editor.org/rfc/rfc4787#section-4.1
 */
import { formatEndpoint, type Endpoint, type Family } from '../../machines/endpoint.js';

export type NatMapping = 'endpoint-independent' | 'endpoint-dependent' | 'unknown';

/** One STUN server's answer on one family (or why there is none). */
export interface StunResult {
  /** The server as configured (`host:port`). */
  server: string;
  family: Family;
  /** The server's address the request went to, or null if it has none on this family. */
  to: Endpoint | null;
  /** This host's endpoint as the server saw it. */
  mapped: Endpoint | null;
  rttMs: number | null;
  /** Why there is no answer: `timeout`, `no_address` (none on this family), `resolve_failed`, `error_response`, `no_mapped_address`, `send_failed`. */
  error: string | null;
}

/** The `endpoints` text frame (README, "The WebSocket API"). */
export interface EndpointsFrame {
  type: 'endpoints';
  ipv4: string | null;
  ipv6: string | null;
  nat: NatMapping;
  relay: string | null;
}

/** The public endpoint of a family: the first answering server's (servers in configured order). */
export function publicEndpoint(results: readonly StunResult[], family: Family): Endpoint | null {
  return results.find((r) => r.family === family && r.mapped !== null)?.mapped ?? null;
}

/**
 * Needs answers from two servers at different addresses on one family: the same mapped
 * endpoint from both is endpoint-independent, two different ones endpoint-dependent. Any family
 * that is dependent makes the host dependent (a peer punching it there would miss).
 */
export function natMapping(results: readonly StunResult[]): NatMapping {
  let independent = false;
  for (const family of ['ipv4', 'ipv6'] as const) {
    const answered = results.filter((r) => r.family === family && r.mapped !== null && r.to !== null);
    const addresses = new Set(answered.map((r) => r.to!.address));
    if (addresses.size < 2) continue;
    const mapped = new Set(answered.map((r) => formatEndpoint(r.mapped!)));
    if (mapped.size > 1) return 'endpoint-dependent';
    independent = true;
  }
  return independent ? 'endpoint-independent' : 'unknown';
}

export function endpointsFrame(results: readonly StunResult[], relay: string | null): EndpointsFrame {
  const text = (family: Family) => {
    const endpoint = publicEndpoint(results, family);
    return endpoint ? formatEndpoint(endpoint) : null;
  };
  return { type: 'endpoints', ipv4: text('ipv4'), ipv6: text('ipv6'), nat: natMapping(results), relay };
}
