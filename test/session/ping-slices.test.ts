/** The keepalive sweep's slices: every item once per period, a bounded share per tick. */
import { describe, expect, it } from 'vitest';
import { PING_SLICE_MAX_MS, PingSlices, sliceSchedule } from '../../src/session/ping-slices.js';

describe('sliceSchedule', () => {
  it('cuts a period into ticks at most PING_SLICE_MAX_MS apart that add up to the period', () => {
    expect(sliceSchedule(30_000)).toEqual({ count: 30, tickMs: 1_000 });
    expect(sliceSchedule(500)).toEqual({ count: 1, tickMs: 500 });
    expect(sliceSchedule(1_500)).toEqual({ count: 2, tickMs: 750 });
    for (const period of [100, 999, 1_000, 1_001, 12_345, 3_600_000]) {
      const { count, tickMs } = sliceSchedule(period);
      expect(tickMs).toBeLessThanOrEqual(PING_SLICE_MAX_MS);
      expect(count * tickMs).toBeCloseTo(period, 6);
    }
  });
});

describe('PingSlices', () => {
  it('visits every item exactly once per round of `count` ticks, spread evenly', () => {
    const slices = new PingSlices<number>(4);
    for (let i = 0; i < 1_000; i++) slices.add(i);
    slices.add(7); // twice is once
    const seen = new Map<number, number>();
    const perTick: number[] = [];
    for (let tick = 0; tick < 8; tick++) {
      let n = 0;
      slices.visitNext((item) => {
        seen.set(item, (seen.get(item) ?? 0) + 1);
        n++;
      });
      perTick.push(n);
    }
    expect(perTick).toEqual([250, 250, 250, 250, 250, 250, 250, 250]);
    expect(seen.size).toBe(1_000);
    expect([...seen.values()].every((times) => times === 2)).toBe(true);
  });

  it('forgets removed items, also while a slice is being visited', () => {
    const slices = new PingSlices<string>(1);
    for (const id of ['a', 'b', 'c']) slices.add(id);
    const visited: string[] = [];
    slices.visitNext((item) => {
      visited.push(item);
      if (item === 'a') slices.remove('b');
    });
    expect(visited).toEqual(['a', 'c']);
    expect(slices.size).toBe(2);
    slices.remove('zzz'); // unknown: nothing happens
    expect(slices.size).toBe(2);
  });

  it('refuses a slice count that is not a positive integer', () => {
    expect(() => new PingSlices(0)).toThrow(/positive integer/);
    expect(() => new PingSlices(1.5)).toThrow(/positive integer/);
  });
});
