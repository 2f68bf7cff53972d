import { describe, expect, it } from 'vitest';
import { MemorySessionCounter } from '../../src/limits/session-counter.js';

describe('MemorySessionCounter', () => {
  it('holds at most the limit per subject; a release frees one place; subjects are separate', async () => {
    const c = new MemorySessionCounter();
    expect(await c.acquire('alice', 'a1', 2)).toBe(true);
    expect(await c.acquire('alice', 'a2', 2)).toBe(true);
    expect(await c.acquire('alice', 'a3', 2)).toBe(false);
    expect(await c.acquire('bob', 'b1', 2)).toBe(true);
    c.release('alice', 'a1');
    c.release('alice', 'a1'); // twice: no place made out of nothing
    expect(await c.acquire('alice', 'a3', 2)).toBe(true);
    expect(await c.acquire('alice', 'a4', 2)).toBe(false);
  });
});
