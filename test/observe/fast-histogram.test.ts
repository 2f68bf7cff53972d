/**
 * The RTT histogram is ours (observe costs no label hashing): a scrape must show exactly what
 * prom-client's own Histogram would for the same observations.
 */
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { FastHistogram } from '../../src/observe/fast-histogram.js';
import { SeededRandom } from '../helpers/seeded-random.js';

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1];

describe('FastHistogram', () => {
  it('scrapes exactly like prom-client\'s Histogram, bucket by bucket, with sum and count', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const fast = new FastHistogram('x_rtt_seconds', 'Round trips', BUCKETS, [ours]);
    const reference = new Histogram({ name: 'x_rtt_seconds', help: 'Round trips', buckets: BUCKETS, registers: [theirs] });
    const seeded = new SeededRandom(7);
    const random = () => seeded.next() / 2 ** 32;
    // Values on the bounds, between them, below the first and above the last.
    const values = [...BUCKETS, 0, 2, 10, ...Array.from({ length: 1000 }, () => random() ** 3)];
    for (const v of values) {
      fast.observe(v);
      reference.observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toContain(`x_rtt_seconds_count ${values.length}`);
  });

  it('ignores what is not a number, and resets', async () => {
    const registry = new Registry();
    const fast = new FastHistogram('y_seconds', 'y', BUCKETS, [registry]);
    fast.observe(Number.NaN);
    fast.observe(Number.POSITIVE_INFINITY);
    fast.observe(0.002);
    expect(await registry.metrics()).toContain('y_seconds_count 1');
    fast.reset();
    expect(await registry.metrics()).toContain('y_seconds_count 0');
    expect(() => new FastHistogram('z', 'z', [1, 1], [])).toThrow(RangeError);
  });
});
