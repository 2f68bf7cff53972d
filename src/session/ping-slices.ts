/**
 * The WebSocket keepalive sweep, spread over its period: each session belongs to one of
 * `count` slices (round robin at open), and each tick visits the next slice, so that with
 * 10,000 sessions and --ws-ping-ms 30000 a tick pings about 333 of them every second instead of
 * all of them in one turn every 30 s (10,000 frames written in one turn: 2 % of an idle
 * server's profile, all at once). Every session is still visited once per period.
 */

/** The longest gap between two ticks of the sweep (ms). */
export const PING_SLICE_MAX_MS = 1_000;

/** How a period is cut: `count` slices, one tick every `tickMs` (count * tickMs = periodMs). */
export function sliceSchedule(periodMs: number): { count: number; tickMs: number } {
  const count = Math.max(1, Math.ceil(periodMs / PING_SLICE_MAX_MS));
  return { count, tickMs: periodMs / count };
}

export class PingSlices<T> {
  readonly #slices: Array<Set<T>>;
  readonly #sliceOf = new Map<T, Set<T>>();
  #nextAdd = 0;
  #nextVisit = 0;

  constructor(count: number) {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`slice count must be a positive integer, got ${count}`);
    this.#slices = Array.from({ length: count }, () => new Set<T>());
  }

  add(item: T): void {
    if (this.#sliceOf.has(item)) return;
    const slice = this.#slices[this.#nextAdd]!;
    this.#nextAdd = (this.#nextAdd + 1) % this.#slices.length;
    slice.add(item);
    this.#sliceOf.set(item, slice);
  }

  remove(item: T): void {
    this.#sliceOf.get(item)?.delete(item);
    this.#sliceOf.delete(item);
  }

  get size(): number {
    return this.#sliceOf.size;
  }

  /** Calls `visit` for each item of the next slice in turn (items may be removed meanwhile). */
  visitNext(visit: (item: T) => void): void {
    const slice = this.#slices[this.#nextVisit]!;
    this.#nextVisit = (this.#nextVisit + 1) % this.#slices.length;
    for (const item of slice) visit(item);
  }
}
