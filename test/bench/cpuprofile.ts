/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): self and total time per function,
 * optionally only over the last seconds of the profile (a steady-state window).
 *
 *   node --import tsx test/bench/cpuprofile.ts FILE [--from S] [--to S] [--top N]
 *
 * --from/--to: seconds since the profile started; a per-second timeline of busy time helps to
 * pick them.
 *
 * Used with `BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" npm run bench -- --phases ...`.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { from: { type: 'string' }, to: { type: 'string' }, top: { type: 'string', default: '40' } },
});
const profile = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const name = (n: ProfileNode) => {
  const url = n.callFrame.url.replace(/^file:\/\/.*?\/(node_modules|dist|src)\//, '$1/');
  return `${n.callFrame.functionName || '(anonymous)'} ${url ? `${url}:${n.callFrame.lineNumber + 1}` : ''}`.trim();
};

// Sample times: startTime + running sum of deltas (us).
const times: number[] = [];
let t = profile.startTime;
for (const d of profile.timeDeltas) times.push((t += d));
const from = profile.startTime + Number(values.from ?? 0) * 1e6;
const to = values.to ? profile.startTime + Number(values.to) * 1e6 : profile.endTime;

// Busy time per second, to find the window worth looking at.
const perSecond: number[] = [];
for (let i = 0; i < profile.samples.length; i++) {
  const second = Math.floor((times[i]! - profile.startTime) / 1e6);
  if (!name(byId.get(profile.samples[i]!)!).startsWith('(idle)')) perSecond[second] = (perSecond[second] ?? 0) + (profile.timeDeltas[i + 1] ?? 0);
}
console.log(`busy % per second: ${Array.from(perSecond, (us, s) => `${s}:${Math.round((us ?? 0) / 1e4)}`).join(' ')}`);

const self = new Map<string, number>();
const total = new Map<string, number>();
let windowUs = 0;
let busyUs = 0;
for (let i = 0; i < profile.samples.length; i++) {
  if (times[i]! < from || times[i]! > to) continue;
  const dt = profile.timeDeltas[i + 1] ?? 0;
  windowUs += dt;
  const node = byId.get(profile.samples[i]!)!;
  const own = name(node);
  if (own.startsWith('(idle)')) continue;
  busyUs += dt;
  self.set(own, (self.get(own) ?? 0) + dt);
  const seen = new Set<string>();
  for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
    const key = name(byId.get(id)!);
    if (seen.has(key)) continue;
    seen.add(key);
    total.set(key, (total.get(key) ?? 0) + dt);
  }
}

const top = Number(values.top);
const pct = (us: number) => ((us / windowUs) * 100).toFixed(1).padStart(5);
console.log(`window ${(windowUs / 1e6).toFixed(2)} s, busy ${pct(busyUs)} %`);
console.log('\nself time (% of the window)');
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v)}  ${k}`);
console.log('\ntotal time (% of the window)');
for (const [k, v] of [...total].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v)}  ${k}`);
