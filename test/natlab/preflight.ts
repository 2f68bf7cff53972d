/**
 * Whether this machine can run the lab: root, a working `ip netns`, nftables and conntrack.
 * Answers with the reason to skip, or null.
 */
import { run } from './run.js';
import { namespacePrefix } from './namespaces.js';

const INSTALL_HINT = 'apt-get install -y iproute2 nftables conntrack';

export async function labSkipReason(): Promise<string | null> {
  if (process.platform !== 'linux') return `the NAT lab needs Linux network namespaces (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'the NAT lab needs root (network namespaces, nftables): run it as root, as CI does';
  for (const [tool, argv] of [
    ['ip', ['ip', '-V']],
    ['nft', ['nft', '--version']],
    ['conntrack', ['conntrack', '--version']],
  ] as const) {
    try {
      await run([...argv]);
    } catch {
      return `the NAT lab needs \`${tool}\`, which is missing or does not run: ${INSTALL_HINT}`;
    }
  }
  const probe = `${namespacePrefix()}probe`;
  try {
    await run(['ip', 'netns', 'add', probe]);
    await run(['ip', 'netns', 'exec', probe, 'ip', 'link', 'set', 'lo', 'up']);
    await run(['ip', '-n', probe, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1']);
    await run(['ip', 'netns', 'exec', probe, 'nft', 'list', 'ruleset']);
  } catch (err) {
    return `\`ip netns\` is not usable here (${(err as Error).message})`;
  } finally {
    await run(['ip', 'netns', 'del', probe]).catch(() => {});
  }
  return null;
}
