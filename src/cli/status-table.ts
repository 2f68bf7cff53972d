/**
 * `autoprox status` as text: the live sessions of `GET /v0/sessions` as a table, one row each,
 * like `tailscale status`. Pure: the JSON in, lines out.
 */

/** What the table reads of one session of `GET /v0/sessions` (src/observe/registry.ts, SessionJson). */
export interface ListedSession {
  id: string;
  state: string;
  family: string | null;
  peer: string | null;
  rttMs: number | null;
  bytesIn: number;
  bytesOut: number;
  ageMs: number;
  /** `direct` or `relay` on servers that report it; otherwise derived from the state. */
  path?: string | null;
}

export interface SessionList {
  total: number;
  sessions: ListedSession[];
}

/** Shown where a session has no value yet (no peer, no RTT, no path). */
export const NONE = '-';
/** Spaces between columns. */
const GAP = '  ';
const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;
const BYTES_PER_UNIT = 1024;
const MS_PER_S = 1000;
const S_PER_MIN = 60;
const S_PER_H = 3600;
const S_PER_DAY = 86_400;

/** 512 B, 1.5 KiB, 23 MiB: one decimal below 10 of a unit, none above. */
export function humanBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= BYTES_PER_UNIT && unit < BYTE_UNITS.length - 1) {
    value /= BYTES_PER_UNIT;
    unit++;
  }
  const text = unit === 0 || value >= 10 ? String(Math.round(value)) : value.toFixed(1);
  return `${text} ${BYTE_UNITS[unit]}`;
}

/** 42s, 3m07s, 2h05m, 3d04h: the two largest units. */
export function humanAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / MS_PER_S));
  const two = (n: number) => String(n).padStart(2, '0');
  if (s < S_PER_MIN) return `${s}s`;
  if (s < S_PER_H) return `${Math.floor(s / S_PER_MIN)}m${two(s % S_PER_MIN)}s`;
  if (s < S_PER_DAY) return `${Math.floor(s / S_PER_H)}h${two(Math.floor((s % S_PER_H) / S_PER_MIN))}m`;
  return `${Math.floor(s / S_PER_DAY)}d${two(Math.floor((s % S_PER_DAY) / S_PER_H))}h`;
}

/** 0.62 ms, 12.3 ms, 180 ms: three significant digits at most. */
export function humanRtt(ms: number | null): string {
  if (ms === null) return NONE;
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${Math.round(ms)} ms`;
}

/** The path of a session: what the server says, else `direct` once established (autoprox sends peer to peer), else none. */
export function pathOf(session: ListedSession): string {
  if (typeof session.path === 'string' && session.path.length > 0) return session.path;
  return session.state.startsWith('udp_established') ? 'direct' : NONE;
}

const HEADER = ['ID', 'STATE', 'PATH', 'FAMILY', 'PEER', 'RTT', 'IN', 'OUT', 'AGE'] as const;
/** Columns of numbers, aligned to the right. */
const RIGHT = new Set(['RTT', 'IN', 'OUT', 'AGE']);

function row(session: ListedSession): string[] {
  return [
    session.id,
    session.state,
    pathOf(session),
    session.family ?? NONE,
    session.peer ?? NONE,
    humanRtt(session.rttMs),
    humanBytes(session.bytesIn),
    humanBytes(session.bytesOut),
    humanAge(session.ageMs),
  ];
}

/** The table, one line per session under a header; "no live sessions" when there are none. */
export function statusTable(list: SessionList): string[] {
  if (list.sessions.length === 0) return ['no live sessions'];
  const rows = [[...HEADER], ...list.sessions.map(row)];
  const widths = HEADER.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) =>
    r
      .map((cell, i) => (RIGHT.has(HEADER[i]!) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join(GAP)
      .trimEnd(),
  );
  if (list.total > list.sessions.length) lines.push(`(${list.sessions.length} of ${list.total} sessions listed)`);
  return lines;
}
