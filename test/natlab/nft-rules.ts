/**
 * nftables rule sets of a site router. Pure: a description in, `nft -f` text out.
 *
 * Every router is stateful and closed by default: input and forward have policy drop, and
 * only what a LAN host started (conntrack established/related) comes back in. Policy drop on
 * input matters: a router that accepted the peer's early, unsolicited packet would confirm a
 * conntrack entry for it and then could not keep the LAN host's source port when it maps it.
 * IPv6 neighbour discovery is accepted, or nothing on IPv6 works at all.
 */

/** How the NAT picks the public port of a new mapping (RFC 4787 terms). */
export type NatMapping =
  /** Linux masquerade's default: keeps the source port when free, one mapping for every destination. */
  | 'endpoint-independent'
  /** A new random port per destination (`masquerade fully-random`): defeats hole punching. */
  | 'symmetric';

/** What the site does with IPv6. */
export type Ipv6Mode =
  /** Routed, no NAT; the router drops new inbound flows and lets established/related back in. */
  | 'firewalled'
  /** Addresses and routes exist, but the router silently drops every IPv6 packet it would forward. */
  | 'blackholed'
  /** No IPv6 at all: no global addresses, no routes (sending to an IPv6 peer fails at once). */
  | 'absent';

export const WAN_IF = 'wan0';
export const LAN_IF = 'lan0';
export const FILTER_TABLE = 'lab';
export const NAT_TABLE = 'lab_nat';

/** Named counters a test can read to prove the router did what the case says. */
export type RouterCounter =
  /** Packets from the internet to the router's own address that nothing asked for (the NAT's filter). */
  | 'unsolicited_in'
  /** New inbound flows the firewall dropped while forwarding (IPv6 to a LAN host). */
  | 'inbound_new_dropped'
  /** LAN packets to the router's own public address: the NAT does not hairpin them. */
  | 'hairpin_dropped'
  /** IPv6 packets dropped by a blackholed site. */
  | 'ipv6_blackholed';

export const ROUTER_COUNTERS: readonly RouterCounter[] = ['unsolicited_in', 'inbound_new_dropped', 'hairpin_dropped', 'ipv6_blackholed'];

export interface PortForward {
  /** UDP port on the public address. */
  port: number;
  /** LAN address it goes to (same port). */
  to: string;
}

export interface RouterRules {
  public4: string;
  nat: NatMapping;
  ipv6: Ipv6Mode;
  /** A UDP port forward: endpoint-independent filtering for that one port. */
  portForward?: PortForward | undefined;
}

/** Port range a rebinding case moves the NAT's UDP mappings to (`masquerade to :lo-hi`). */
export interface PortRange {
  low: number;
  high: number;
}

/** The masquerade rule(s) of the postrouting chain. */
export function masqueradeRules(nat: NatMapping, udpPorts?: PortRange): string[] {
  const flags = nat === 'symmetric' ? ' fully-random' : '';
  const rules: string[] = [];
  if (udpPorts) rules.push(`oifname "${WAN_IF}" meta l4proto udp masquerade to :${udpPorts.low}-${udpPorts.high}${flags}`);
  rules.push(`oifname "${WAN_IF}" masquerade${flags}`);
  return rules;
}

export function routerRuleset(r: RouterRules): string {
  const counters = ROUTER_COUNTERS.map((c) => `  counter ${c} {}`);
  const forward = [
    ...(r.ipv6 === 'blackholed' ? [`meta nfproto ipv6 counter name "ipv6_blackholed" drop`] : []),
    'ct state established,related accept',
    ...(r.portForward ? ['ct status dnat accept'] : []),
    `iifname "${LAN_IF}" oifname "${WAN_IF}" accept`,
    `iifname "${WAN_IF}" counter name "inbound_new_dropped" drop`,
  ];
  const input = [
    'iif "lo" accept',
    'ct state established,related accept',
    'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } accept',
    `iifname "${LAN_IF}" ip daddr ${r.public4} counter name "hairpin_dropped" drop`,
    `iifname "${WAN_IF}" counter name "unsolicited_in" drop`,
  ];
  const prerouting = r.portForward
    ? [`iifname "${WAN_IF}" udp dport ${r.portForward.port} dnat to ${r.portForward.to}:${r.portForward.port}`]
    : [];
  const indent = (rules: string[]) => rules.map((rule) => `    ${rule}`);
  return [
    `table inet ${FILTER_TABLE} {`,
    ...counters,
    '  chain input {',
    '    type filter hook input priority filter; policy drop;',
    ...indent(input),
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy drop;',
    ...indent(forward),
    '  }',
    '}',
    `table ip ${NAT_TABLE} {`,
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...indent(prerouting),
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    ...indent(masqueradeRules(r.nat)),
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Replaces the postrouting chain's rules (`nft -f` text), e.g. to move mappings to a new port range. */
export function replaceMasquerade(nat: NatMapping, udpPorts?: PortRange): string {
  return [
    `flush chain ip ${NAT_TABLE} postrouting`,
    ...masqueradeRules(nat, udpPorts).map((rule) => `add rule ip ${NAT_TABLE} postrouting ${rule}`),
    '',
  ].join('\n');
}
