import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DATA_WINDOW_WORDS, HEARTBEAT_WINDOW_WORDS, REPLAY_WINDOW_PACKETS, ReplayWindow } from '../../src/protocol/replay-window.js';

const W = REPLAY_WINDOW_PACKETS;

function acceptAll(window: ReplayWindow, counters: Iterable<number>): boolean[] {
  return Array.from(counters, (c) => window.accept(c));
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** The obviously-correct model: every counter ever accepted, and the window rule. */
class ReferenceWindow {
  readonly seen = new Set<number>();
  highest = -1;
  constructor(readonly span = W) {}
  check(counter: number): boolean {
    if (this.seen.has(counter)) return false;
    return counter > this.highest || this.highest - counter < this.span;
  }
  accept(counter: number): boolean {
    if (!this.check(counter)) return false;
    this.seen.add(counter);
    this.highest = Math.max(this.highest, counter);
    return true;
  }
}

describe('ReplayWindow', () => {
  it('is 63 words of 32 bits: 2016 packets', () => {
    expect(W).toBe(2016);
  });

  it('starts empty: highest is -1 and counter 0 is new', () => {
    const window = new ReplayWindow();
    expect(window.highest).toBe(-1);
    expect(window.check(0)).toBe(true);
  });

  it('accepts counters in order and tracks the highest', () => {
    const window = new ReplayWindow();
    for (let c = 0; c < 5000; c++) {
      expect(window.accept(c)).toBe(true);
      expect(window.highest).toBe(c);
    }
  });

  it('refuses duplicates, right away and later (while inside the window)', () => {
    const window = new ReplayWindow();
    expect(window.accept(0)).toBe(true);
    expect(window.accept(0)).toBe(false);
    expect(acceptAll(window, range(1, 100))).toEqual(Array(100).fill(true));
    expect(acceptAll(window, range(0, 100))).toEqual(Array(101).fill(false));
    expect(window.highest).toBe(100);
  });

  it('accepts a first counter that is not 0, and the gaps below it once', () => {
    const window = new ReplayWindow();
    expect(window.accept(10)).toBe(true);
    expect(acceptAll(window, range(0, 9))).toEqual(Array(10).fill(true));
    expect(acceptAll(window, range(0, 10))).toEqual(Array(11).fill(false));
    expect(window.highest).toBe(10);
  });

  it('accepts out-of-order counters inside the window exactly once', () => {
    const window = new ReplayWindow();
    const order = [5, 3, 9, 0, 1, 8, 2, 7, 4, 6];
    expect(acceptAll(window, order)).toEqual(Array(10).fill(true));
    expect(acceptAll(window, order)).toEqual(Array(10).fill(false));
    expect(window.highest).toBe(9);
  });

  it('a lower counter does not move highest', () => {
    const window = new ReplayWindow();
    window.accept(50);
    window.accept(20);
    expect(window.highest).toBe(50);
  });

  it.each([
    ['the newest allowed: highest - (W - 1)', 5000 - (W - 1), true],
    ['exactly W behind', 5000 - W, false],
    ['W + 1 behind', 5000 - W - 1, false],
    ['far behind', 0, false],
    ['one behind', 4999, true],
  ])('with highest 5000 and nothing else seen: %s (counter %i) accepted=%s', (_name, counter, accepted) => {
    const window = new ReplayWindow();
    window.accept(5000);
    expect(window.check(counter)).toBe(accepted);
    expect(window.accept(counter)).toBe(accepted);
    expect(window.highest).toBe(5000);
  });

  it('refuses too-old counters even when they were never seen, at every offset in a word', () => {
    for (let top = 3000; top < 3000 + 64; top++) {
      const window = new ReplayWindow();
      window.accept(top);
      expect(window.accept(top - W)).toBe(false);
      expect(window.accept(top - W + 1)).toBe(true);
      expect(window.accept(top - W + 1)).toBe(false);
    }
  });

  it('a large jump clears old bits: accept 0..100, jump to 100000, then 99990 is new and 100 too old', () => {
    const window = new ReplayWindow();
    expect(acceptAll(window, range(0, 100)).every(Boolean)).toBe(true);
    expect(window.accept(100_000)).toBe(true);
    expect(window.highest).toBe(100_000);
    expect(window.accept(99_990)).toBe(true);
    expect(window.accept(99_990)).toBe(false);
    expect(window.accept(100)).toBe(false);
    expect(window.accept(100_000 - W + 1)).toBe(true);
    expect(window.accept(100_000 - W)).toBe(false);
  });

  it('a jump whose target aliases a used word (same index mod 64 words) does not inherit its bits', () => {
    const window = new ReplayWindow();
    expect(acceptAll(window, range(0, 63)).every(Boolean)).toBe(true); // words 0 and 1 full
    // 2048 + 32 lives in word 65, which shares storage with word 1.
    expect(window.accept(2048 + 40)).toBe(true);
    for (const c of range(2048 + 32, 2048 + 63)) {
      if (c !== 2048 + 40) expect(window.check(c)).toBe(true);
    }
    expect(acceptAll(window, range(2048 + 32, 2048 + 39))).toEqual(Array(8).fill(true));
  });

  it('sliding by single words keeps every bit that is still inside the window', () => {
    const window = new ReplayWindow();
    // Accept every even counter up to 10000; odd ones stay open while inside the window.
    for (let c = 0; c <= 10_000; c += 2) expect(window.accept(c)).toBe(true);
    for (let c = 10_000 - W + 1; c <= 10_000; c++) {
      expect(window.check(c)).toBe(c % 2 === 1);
    }
    for (let c = 0; c <= 10_000 - W; c++) expect(window.check(c)).toBe(false);
  });

  it('handles bit 31 of a word (the sign bit of a 32-bit int) like any other', () => {
    const window = new ReplayWindow();
    for (const c of [31, 63, 95, 127]) {
      expect(window.accept(c)).toBe(true);
      expect(window.accept(c)).toBe(false);
      expect(window.check(c)).toBe(false);
    }
    expect(window.check(30)).toBe(true);
    expect(window.check(32)).toBe(true);
  });

  it('works up to MAX_SAFE_INTEGER', () => {
    const window = new ReplayWindow();
    const top = Number.MAX_SAFE_INTEGER;
    expect(acceptAll(window, range(top - 100, top - 50))).toEqual(Array(51).fill(true));
    expect(window.accept(top)).toBe(true);
    expect(window.highest).toBe(top);
    expect(window.accept(top)).toBe(false);
    expect(window.accept(top - 75)).toBe(false);
    expect(window.accept(top - 10)).toBe(true);
    expect(window.accept(top - W)).toBe(false);
    expect(window.accept(top - W + 1)).toBe(true);
  });

  it('check() never changes anything: not highest, not the seen bits', () => {
    const window = new ReplayWindow();
    for (const c of [0, 1, 2, 5000, 1_000_000]) {
      expect(window.check(c)).toBe(true);
      expect(window.check(c)).toBe(true);
    }
    expect(window.highest).toBe(-1);
    window.accept(100);
    for (const c of [0, 99, 101, 5000, 100_000]) window.check(c);
    expect(window.highest).toBe(100);
    // A checked-but-not-accepted counter is still new, and old counters are still inside the window.
    expect(window.accept(99)).toBe(true);
    expect(window.accept(101)).toBe(true);
    expect(window.accept(0)).toBe(true);
  });

  it('a refused accept changes nothing', () => {
    const window = new ReplayWindow();
    window.accept(5000);
    expect(window.accept(5000 - W)).toBe(false);
    expect(window.accept(5000)).toBe(false);
    expect(window.highest).toBe(5000);
    expect(window.accept(4999)).toBe(true);
  });

  it.each([DATA_WINDOW_WORDS, HEARTBEAT_WINDOW_WORDS, 3])('property: a window of %i words agrees with a naive Set-based model on random counter sequences', (words) => {
    const W = (words - 1) * 32;
    // Each step is a move relative to the current highest (near it, or near the far edge of the
    // window, where bugs live), a jump ahead by a few words or far beyond the window, or an
    // absolute small counter.
    const step = fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: -W - 40, max: 40 }).map((d) => ({ kind: 'near' as const, d })) },
      { weight: 2, arbitrary: fc.integer({ min: -40, max: 40 }).map((d) => ({ kind: 'edge' as const, d })) },
      { weight: 2, arbitrary: fc.integer({ min: 33, max: W + 400 }).map((d) => ({ kind: 'jump' as const, d })) },
      { weight: 1, arbitrary: fc.integer({ min: W + 400, max: 200_000 }).map((d) => ({ kind: 'jump' as const, d })) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 5000 }).map((d) => ({ kind: 'absolute' as const, d })) },
    );
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 250 }), (steps) => {
        const window = new ReplayWindow(words);
        const model = new ReferenceWindow(W);
        for (const { kind, d } of steps) {
          const base = Math.max(model.highest, 0);
          const counter = Math.max(
            0,
            kind === 'near' ? base + d : kind === 'edge' ? base - W + d : kind === 'jump' ? base + d : d,
          );
          const expected = model.check(counter);
          const highestBefore = window.highest;
          const first = window.check(counter);
          const second = window.check(counter); // checking twice must give the same answer
          const highestAfterCheck = window.highest;
          const accepted = window.accept(counter);
          const modelAccepted = model.accept(counter);
          const got = { counter, first, second, highestAfterCheck, accepted, highest: window.highest };
          const want = { counter, first: expected, second: expected, highestAfterCheck: highestBefore, accepted: modelAccepted, highest: model.highest };
          // Compare cheaply; build the readable diff only on a mismatch.
          if (JSON.stringify(got) !== JSON.stringify(want)) expect(got).toEqual(want);
        }
        // Finally, counters around the top and around the window's edge agree with the model.
        const top = Math.max(model.highest, 0);
        for (const from of [top - 40, top - W - 40]) {
          for (let c = Math.max(0, from); c <= from + 80; c++) {
            if (window.check(c) !== model.check(c)) expect({ counter: c, check: window.check(c) }).toEqual({ counter: c, check: model.check(c) });
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it('a heartbeat window: 32 counters behind its highest, the same rules', () => {
    const window = new ReplayWindow(HEARTBEAT_WINDOW_WORDS);
    expect(window.span).toBe(32);
    expect(window.accept(1000)).toBe(true);
    expect(window.accept(1000 - 31)).toBe(true);
    expect(window.accept(1000 - 31)).toBe(false);
    expect(window.accept(1000 - 32)).toBe(false);
    expect(window.accept(1000)).toBe(false);
    expect(window.accept(5000)).toBe(true);
    expect(window.accept(1001)).toBe(false); // far behind now, though never seen
  });

  it('refuses a size that cannot hold a window', () => {
    for (const words of [0, 1, 1.5, Number.NaN]) expect(() => new ReplayWindow(words)).toThrow(RangeError);
    expect(new ReplayWindow().span).toBe(REPLAY_WINDOW_PACKETS);
  });
});
