/**
 * The lab's address plan. Public addresses are documentation ranges only (RFC 5737, RFC 3849):
 * site 1's WAN is 198.51.100.0/24, site 2's is 203.0.113.0/24, the internet's own servers
 * (STUN) are in 192.0.2.0/24, IPv6 is inside 2001:db8::/32. LANs are private 10.<site>.0.0/24.
 * Pure: strings in, strings out.
 */

/** A site's index in the plan: there are two public IPv4 documentation ranges, so two sites. */
export type SiteIndex = 1 | 2;

const PUBLIC4_SUBNET: Record<SiteIndex, string> = { 1: '198.51.100', 2: '203.0.113' };

export interface SiteAddresses {
  /** The internet router's address on this site's WAN link. */
  inet4: string;
  inet6: string;
  /** The site router's public (WAN) addresses. */
  public4: string;
  public6: string;
  /** The site router's LAN addresses (the hosts' gateways). */
  gateway4: string;
  gateway6: string;
  /** The LAN prefix the internet routes to the site router (IPv6 is routed, not NATed). */
  lan6Prefix: string;
}

export const WAN4_PREFIX_LEN = 24;
export const LAN4_PREFIX_LEN = 24;
export const IPV6_PREFIX_LEN = 64;
/**
 * Addresses of servers on the internet itself (on the internet router's loopback), not behind
 * any NAT: two, so that a NAT's mapping can be seen from two different destination addresses.
 */
export const INTERNET_SERVERS4 = ['192.0.2.1', '192.0.2.2'] as const;

/** Hosts are numbered from this last octet / last group up. */
const FIRST_HOST = 10;

export function siteAddresses(site: SiteIndex): SiteAddresses {
  return {
    inet4: `${PUBLIC4_SUBNET[site]}.1`,
    inet6: `2001:db8:${site}::1`,
    public4: `${PUBLIC4_SUBNET[site]}.2`,
    public6: `2001:db8:${site}::2`,
    gateway4: `10.${site}.0.1`,
    gateway6: `2001:db8:${site}1::1`,
    lan6Prefix: `2001:db8:${site}1::/${IPV6_PREFIX_LEN}`,
  };
}

/** The LAN addresses of host number `n` (0-based) of a site. */
export function hostAddresses(site: SiteIndex, n: number): { lan4: string; lan6: string } {
  return { lan4: `10.${site}.0.${FIRST_HOST + n}`, lan6: `2001:db8:${site}1::${FIRST_HOST + n}` };
}

/** An endpoint as autoprox prints it in `peer`: `addr:port` or `[v6]:port`. */
export function endpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
