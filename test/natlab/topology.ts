/**
 * Builds a small internet in network namespaces and tears it down:
 *
 *   host-a1 ─┐                                       ┌─ host-b1
 *   host-a2 ─┤ lan0 [nat-a] wan0 ── [inet] ── wan0 [nat-b] lan0 ├─
 *            10.1.0.0/24    198.51.100.0/24  203.0.113.0/24    10.2.0.0/24
 *            2001:db8:11::/64  2001:db8:1::/64  2001:db8:2::/64  2001:db8:21::/64
 *
 * [inet] also holds INTERNET_SERVERS4 (192.0.2.1, 192.0.2.2) on its loopback: public addresses
 * behind no NAT, where a case runs internet services (STUN servers).
 *
 * Each site router is an nftables NAT (IPv4) and stateful firewall (IPv6) with a bridged LAN.
 * Known traps (this kernel): new namespaces start with forwarding off and IPv6 DAD on, so the
 * sysctls are set before any interface exists and IPv6 addresses are added `nodad`; bridged LAN
 * traffic must not go through the router's IP filter (br_netfilter), as on a home router's switch.
 */
import { hostAddresses, INTERNET_SERVERS4, IPV6_PREFIX_LEN, LAN4_PREFIX_LEN, siteAddresses, WAN4_PREFIX_LEN, type SiteIndex } from './addressing.js';
import { createNamespace, deleteNamespace, namespacePrefix } from './namespaces.js';
import {
  FILTER_TABLE,
  LAN_IF,
  replaceMasquerade,
  routerRuleset,
  WAN_IF,
  type Ipv6Mode,
  type NatMapping,
  type PortRange,
  type RouterCounter,
} from './nft-rules.js';
import { run, runIn } from './run.js';

export type SiteName = 'a' | 'b';

export interface SiteSpec {
  nat: NatMapping;
  ipv6: Ipv6Mode;
  /** Hosts on the LAN (default 1), named `<site>1`, `<site>2`, ... */
  hosts?: number;
  /** Forward this UDP port of the public address to the site's first host. */
  portForward?: number;
}

export type LabSpec = Partial<Record<SiteName, SiteSpec>>;

/** One UDP mapping of a NAT, from conntrack. */
export interface NatMappingEntry {
  /** The destination, `addr:port`. */
  to: string;
  /** The public address and port the NAT maps the flow to. */
  public4: string;
  publicPort: number;
}

export interface Host {
  name: string;
  ns: string;
  lan4: string;
  /** Null when the site has no IPv6. */
  lan6: string | null;
  site: Site;
}

export interface Site {
  name: SiteName;
  spec: SiteSpec;
  router: string;
  public4: string;
  hosts: Host[];
}

/** The internet's table that blocks traffic between two sites (`blockSites`). */
const INET_BLOCK_TABLE = 'lab_block';
const SITE_INDEX: Record<SiteName, SiteIndex> = { a: 1, b: 2 };
/** A sysctl of the namespace: its /proc/sys path (below /proc/sys/net) and value. */
type Sysctl = readonly [path: string, value: 0 | 1, presence: 'required' | 'if-present'];

const COMMON_SYSCTLS: Sysctl[] = [
  ['ipv6/conf/all/accept_dad', 0, 'required'],
  ['ipv6/conf/default/accept_dad', 0, 'required'],
];
const ROUTER_SYSCTLS: Sysctl[] = [
  ['ipv4/ip_forward', 1, 'required'],
  ['ipv6/conf/all/forwarding', 1, 'required'],
  ['ipv6/conf/default/forwarding', 1, 'required'],
];
/** These exist only when br_netfilter is loaded; then they must be off. */
const NO_BRIDGE_FILTER_SYSCTLS: Sysctl[] = [
  ['bridge/bridge-nf-call-iptables', 0, 'if-present'],
  ['bridge/bridge-nf-call-ip6tables', 0, 'if-present'],
  ['bridge/bridge-nf-call-arptables', 0, 'if-present'],
];

let labCount = 0;

/** `ip -n <ns> -batch -`: one process per namespace and phase. */
function ipBatch(ns: string, commands: string[]): Promise<string> {
  return run(['ip', '-n', ns, '-batch', '-'], `${commands.join('\n')}\n`);
}

/** Writes /proc/sys/net files inside `ns` with `sh` (procps' sysctl is not in minimal images). */
function sysctl(ns: string, settings: Sysctl[]): Promise<string> {
  const script = settings
    .map(([path, value, presence]) => {
      const file = `/proc/sys/net/${path}`;
      return presence === 'required' ? `echo ${value} > ${file}` : `if [ -e ${file} ]; then echo ${value} > ${file}; fi`;
    })
    .join(' && ');
  return runIn(ns, ['sh', '-ec', script]);
}

export class Lab {
  /** The internet router's namespace (where internet services run). */
  readonly inet: string;
  /** Public IPv4 addresses of the internet's own servers (INTERNET_SERVERS4). */
  readonly servers4: readonly string[] = INTERNET_SERVERS4;
  readonly sites: Site[];
  readonly #namespaces: string[];

  private constructor(prefix: string, spec: LabSpec) {
    this.inet = `${prefix}inet`;
    this.sites = (Object.entries(spec) as Array<[SiteName, SiteSpec]>).map(([name, siteSpec]) => {
      const index = SITE_INDEX[name];
      const site: Site = { name, spec: siteSpec, router: `${prefix}nat-${name}`, public4: siteAddresses(index).public4, hosts: [] };
      for (let n = 0; n < (siteSpec.hosts ?? 1); n++) {
        const { lan4, lan6 } = hostAddresses(index, n);
        site.hosts.push({ name: `${name}${n + 1}`, ns: `${prefix}host-${name}${n + 1}`, lan4, lan6: siteSpec.ipv6 === 'absent' ? null : lan6, site });
      }
      return site;
    });
    this.#namespaces = [this.inet, ...this.sites.flatMap((s) => [s.router, ...s.hosts.map((h) => h.ns)])];
  }

  /** Builds the namespaces, links, addresses, routes and router rules of `spec`. */
  static async build(spec: LabSpec): Promise<Lab> {
    const lab = new Lab(`${namespacePrefix()}${++labCount}-`, spec);
    try {
      await lab.#build();
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  host(name: string): Host {
    const host = this.sites.flatMap((s) => s.hosts).find((h) => h.name === name);
    if (!host) throw new TypeError(`no host ${name} in this lab`);
    return host;
  }

  site(name: SiteName): Site {
    const site = this.sites.find((s) => s.name === name);
    if (!site) throw new TypeError(`no site ${name} in this lab`);
    return site;
  }

  /** Packets counted so far by one of a router's named counters. */
  async counter(site: SiteName, name: RouterCounter): Promise<number> {
    const out = await runIn(this.site(site).router, ['nft', '-j', 'list', 'counter', 'inet', FILTER_TABLE, name]);
    const parsed = JSON.parse(out) as { nftables: Array<{ counter?: { packets: number } }> };
    return parsed.nftables.find((item) => item.counter)?.counter?.packets ?? 0;
  }

  /** The router's UDP conntrack entries, in conntrack's own text format. */
  conntrack(site: SiteName): Promise<string> {
    return runIn(this.site(site).router, ['conntrack', '-L', '-p', 'udp']).catch(() => '');
  }

  /**
   * The router's UDP mappings of `lan4`:`port`, one per destination: where the flow goes and
   * the public port the NAT gave it (the reply tuple's destination port).
   */
  async udpMappings(site: SiteName, lan4: string, port: number): Promise<NatMappingEntry[]> {
    const entries: NatMappingEntry[] = [];
    for (const line of (await this.conntrack(site)).split('\n')) {
      const m = /src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+) .*?src=\S+ dst=(\S+) sport=\d+ dport=(\d+)/.exec(line);
      if (!m || m[1] !== lan4 || Number(m[3]) !== port) continue;
      entries.push({ to: `${m[2]}:${m[4]}`, public4: m[5]!, publicPort: Number(m[6]) });
    }
    return entries;
  }

  /** Forgets every NAT mapping of a router (`conntrack -F`). */
  async flushConntrack(site: SiteName): Promise<void> {
    await runIn(this.site(site).router, ['conntrack', '-F']);
  }

  /** Moves a router's future UDP mappings to `udpPorts` (existing mappings stay until flushed). */
  async remapUdpPorts(site: SiteName, udpPorts: PortRange): Promise<void> {
    const s = this.site(site);
    await runIn(s.router, ['nft', '-f', '-'], replaceMasquerade(s.spec.nat, udpPorts));
  }

  /**
   * The internet drops IPv4 forwarded between the public addresses of sites `x` and `y`, both
   * ways (a table of its own in the internet namespace); traffic to and from the internet's own
   * servers (a relay) is not forwarded, so it passes. `unblockSites` removes it.
   */
  async blockSites(x: SiteName, y: SiteName): Promise<void> {
    const [px, py] = [this.site(x).public4, this.site(y).public4];
    await runIn(this.inet, ['nft', '-f', '-'], [
      `table ip ${INET_BLOCK_TABLE} {`,
      '  chain forward {',
      '    type filter hook forward priority filter; policy accept;',
      `    ip saddr ${px} ip daddr ${py} counter drop`,
      `    ip saddr ${py} ip daddr ${px} counter drop`,
      '  }',
      '}',
      '',
    ].join('\n'));
  }

  /** Packets the block of `blockSites` has dropped so far (both ways). */
  async blockedPackets(): Promise<number> {
    const out = await runIn(this.inet, ['nft', '-j', 'list', 'table', 'ip', INET_BLOCK_TABLE]);
    const parsed = JSON.parse(out) as { nftables: Array<{ rule?: { expr: Array<{ counter?: { packets: number } }> } }> };
    return parsed.nftables.flatMap((item) => item.rule?.expr ?? []).reduce((sum, e) => sum + (e.counter?.packets ?? 0), 0);
  }

  /** Removes the block of `blockSites`. */
  async unblockSites(): Promise<void> {
    await runIn(this.inet, ['nft', 'delete', 'table', 'ip', INET_BLOCK_TABLE]);
  }

  /** Deletes every namespace of this lab (and kills what still runs inside). Never throws. */
  async destroy(): Promise<void> {
    await Promise.all(this.#namespaces.map((ns) => deleteNamespace(ns).catch(() => {})));
  }

  async #build(): Promise<void> {
    await Promise.all(this.#namespaces.map((ns) => createNamespace(ns)));
    // Before any interface exists, so that every interface inherits them.
    await Promise.all([
      sysctl(this.inet, [...COMMON_SYSCTLS, ...ROUTER_SYSCTLS]),
      ...this.sites.map((s) => sysctl(s.router, [...COMMON_SYSCTLS, ...ROUTER_SYSCTLS, ...NO_BRIDGE_FILTER_SYSCTLS])),
      ...this.sites.flatMap((s) => s.hosts.map((h) => sysctl(h.ns, COMMON_SYSCTLS))),
    ]);
    // Links: the internet to each router, each router's bridge and a veth per host.
    await ipBatch(
      this.inet,
      this.sites.map((s) => `link add wan-${s.name} type veth peer name ${WAN_IF} netns ${s.router}`),
    );
    await Promise.all(
      this.sites.map((s) =>
        ipBatch(s.router, [
          `link add ${LAN_IF} type bridge forward_delay 0 mcast_snooping 0`,
          ...s.hosts.flatMap((h) => [`link add port-${h.name} type veth peer name eth0 netns ${h.ns}`, `link set port-${h.name} master ${LAN_IF}`]),
        ]),
      ),
    );
    // Everything up first, so addresses and routes are added on links that have carrier.
    await Promise.all([
      ipBatch(this.inet, ['link set lo up', ...this.sites.map((s) => `link set wan-${s.name} up`)]),
      ...this.sites.map((s) =>
        ipBatch(s.router, ['link set lo up', `link set ${WAN_IF} up`, `link set ${LAN_IF} up`, ...s.hosts.map((h) => `link set port-${h.name} up`)]),
      ),
      ...this.sites.flatMap((s) => s.hosts.map((h) => ipBatch(h.ns, ['link set lo up', 'link set eth0 up']))),
    ]);
    await Promise.all([this.#addressInet(), ...this.sites.map((s) => this.#addressSite(s))]);
  }

  #addressInet(): Promise<string> {
    return ipBatch(this.inet, [
      ...INTERNET_SERVERS4.map((address) => `addr add ${address}/32 dev lo`),
      ...this.sites.flatMap((s) => {
        const a = siteAddresses(SITE_INDEX[s.name]);
        const v4 = [`addr add ${a.inet4}/${WAN4_PREFIX_LEN} dev wan-${s.name}`];
        if (s.spec.ipv6 === 'absent') return v4;
        return [...v4, `addr add ${a.inet6}/${IPV6_PREFIX_LEN} dev wan-${s.name} nodad`, `route add ${a.lan6Prefix} via ${a.public6}`];
      }),
    ]);
  }

  async #addressSite(s: Site): Promise<void> {
    const a = siteAddresses(SITE_INDEX[s.name]);
    const v6 = s.spec.ipv6 !== 'absent';
    await ipBatch(s.router, [
      `addr add ${a.public4}/${WAN4_PREFIX_LEN} dev ${WAN_IF}`,
      `route add default via ${a.inet4}`,
      `addr add ${a.gateway4}/${LAN4_PREFIX_LEN} dev ${LAN_IF}`,
      ...(v6
        ? [
            `addr add ${a.public6}/${IPV6_PREFIX_LEN} dev ${WAN_IF} nodad`,
            `route add default via ${a.inet6}`,
            `addr add ${a.gateway6}/${IPV6_PREFIX_LEN} dev ${LAN_IF} nodad`,
          ]
        : []),
    ]);
    await Promise.all(
      s.hosts.map((h) =>
        ipBatch(h.ns, [
          `addr add ${h.lan4}/${LAN4_PREFIX_LEN} dev eth0`,
          `route add default via ${a.gateway4}`,
          ...(h.lan6 ? [`addr add ${h.lan6}/${IPV6_PREFIX_LEN} dev eth0 nodad`, `route add default via ${a.gateway6}`] : []),
        ]),
      ),
    );
    const forward = s.spec.portForward;
    await runIn(
      s.router,
      ['nft', '-f', '-'],
      routerRuleset({
        public4: s.public4,
        nat: s.spec.nat,
        ipv6: s.spec.ipv6,
        portForward: forward === undefined ? undefined : { port: forward, to: s.hosts[0]!.lan4 },
      }),
    );
  }
}
