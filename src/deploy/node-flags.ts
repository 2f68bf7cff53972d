/**
 * The flags node should run `autoprox serve` with, in one place: the systemd unit, the
 * container's entry point, `npm start` and the bench use these, and `serve` says in its log
 * when it runs without them.
 *
 * `--max-semi-space-size=1` (MB) keeps V8's young generation at the size a small relay has.
 * Without it V8 grows the young generation to 16 MB while the server starts (startup objects
 * survive), and keeps it: then a scavenge comes about once a second and, because every sealed or
 * opened datagram leaves a native cipher object with a weak handle behind, each one spends
 * 3-8 ms on those handles (`--trace-gc-nvp`: heap.external_weak_global_handles), which is the
 * round trip's tail. Capped, scavenges come every ~70 ms and take 0.1-0.5 ms. Measured in
 * `npm run bench` (README "Performance"): round trip p99 at 1,200 B 3.7-3.9 ms instead of
 * 4.4-7.5 ms, RSS per idle session 10-15 % lower, loss-free throughput and idle upkeep unchanged.
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];

/** The recommended flags missing from this node process (given as options or in NODE_OPTIONS). */
export function missingNodeFlags(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].filter(Boolean);
  // A flag given with another value is the operator's choice: only an absent flag is missing.
  const names = new Set(given.map((flag) => flag.split('=')[0]!.replace(/_/g, '-')));
  return SERVER_NODE_FLAGS.filter((flag) => !names.has(flag.split('=')[0]!));
}
