/**
 * A clock for unit tests: time moves only when the test says so, and every timer due on the
 * way fires at its own due time, in order (periodic ones every period).
 */
import type { Clock, Timer } from '../../src/clock.js';

interface Pending {
  due: number;
  fn: () => void;
  period: number | null;
  seq: number;
  cancelled: boolean;
}

const MAX_FIRINGS = 1_000_000;

export class FakeClock implements Clock {
  #now = 1_000;
  #wallOffset = 1_800_000_000_000;
  #seq = 0;
  readonly #pending: Pending[] = [];

  now(): number {
    return this.#now;
  }

  wallMs(): number {
    return this.#now + this.#wallOffset;
  }

  after(ms: number, fn: () => void): Timer {
    return this.#add(Math.max(0, ms), fn, null);
  }

  every(ms: number, fn: () => void): Timer {
    return this.#add(ms, fn, ms);
  }

  /** Timers not yet fired or cancelled. */
  get pendingTimers(): number {
    return this.#pending.filter((p) => !p.cancelled).length;
  }

  #add(ms: number, fn: () => void, period: number | null): Timer {
    const entry: Pending = { due: this.#now + ms, fn, period, seq: this.#seq++, cancelled: false };
    this.#pending.push(entry);
    return {
      cancel: () => {
        entry.cancelled = true;
      },
    };
  }

  /** Moves time on by `ms`, firing what falls due. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (let i = 0; i < MAX_FIRINGS; i++) {
      const live = this.#pending.filter((p) => !p.cancelled);
      this.#pending.splice(0, this.#pending.length, ...live);
      const next = live.filter((p) => p.due <= target).sort((a, b) => a.due - b.due || a.seq - b.seq)[0];
      if (!next) break;
      this.#now = Math.max(this.#now, next.due);
      if (next.period === null) next.cancelled = true;
      else next.due += next.period;
      next.fn();
    }
    this.#now = target;
  }
}
