import { describe, expect, it } from 'vitest';
import { bucketOrNull, TokenBucket } from '../../src/limits/token-bucket.js';

describe('TokenBucket (time handed in, ms)', () => {
  it('starts full, refills at its rate up to its burst, and takes all or nothing', () => {
    const b = new TokenBucket(10, 20, 0);
    expect(b.take(20, 0)).toBe(true);
    expect(b.take(1, 0)).toBe(false);
    expect(b.take(1, 100)).toBe(true); // 100 ms at 10/s: one
    expect(b.take(2, 200)).toBe(false); // one more only: nothing taken
    expect(b.take(1, 200)).toBe(true);
    expect(b.take(20, 10_000)).toBe(true); // capped at the burst
    expect(b.take(1, 10_000)).toBe(false);
  });

  it('ignores a clock that goes back', () => {
    const b = new TokenBucket(1, 1, 1000);
    expect(b.take(1, 1000)).toBe(true);
    expect(b.take(1, 500)).toBe(false);
  });

  it('rate 0 is no bucket at all', () => {
    expect(bucketOrNull(0, 0)).toBeNull();
    expect(bucketOrNull(5, 0, 7)!.burst).toBe(7);
  });
});
