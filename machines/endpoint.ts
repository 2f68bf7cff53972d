/**
 * Where a datagram goes or came from: the ground floor, a pure value type that the machines and
 * every part of src/ share. It lives with the machines, which import nothing from src/.
 */

export type Family = 'ipv4' | 'ipv6';

export interface Endpoint {
  family: Family;
  address: string;
  port: number;
}

/** "203.0.113.7:40000" or "[2001:db8::7]:40000", the `peer` field of status frames. */
export function formatEndpoint(endpoint: Endpoint): string {
  return endpoint.family === 'ipv6' ? `[${endpoint.address}]:${endpoint.port}` : `${endpoint.address}:${endpoint.port}`;
}

export function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.port === b.port && a.address === b.address && a.family === b.family;
}
