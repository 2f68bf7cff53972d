/**
 * The pacer of client input: client messages wait once the event loop has gone BUSY_MAX_MS
 * without a timer, and are worked off in later timer turns, round robin. On real WebSockets: a
 * flood no longer holds the loop, and every message still arrives, in order.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock, type Clock, type Timer } from '../../src/clock.js';
import { ClientLink, type ToPeer } from '../../src/io/client-link.js';
import { BUSY_MAX_MS, InputPacer } from '../../src/io/input-pacer.js';
import { newLinkStats } from '../../src/io/peer-link.js';
import { createLogger } from '../../src/log.js';
import { eventually } from '../helpers/waiter.js';
import { wsPair, type WsPair } from '../helpers/ws-pair.js';

const pairs: WsPair[] = [];
const pacers: InputPacer[] = [];
afterEach(async () => {
  for (const p of pacers.splice(0)) p.close();
  for (const p of pairs.splice(0)) await p.close();
});

/** A clock whose time moves without its timers firing (a busy event loop), and timers fired by hand. */
class BusyClock implements Clock {
  time = 0;
  readonly due: Array<{ fn: () => void; cancelled: boolean; every: boolean }> = [];
  now = () => this.time;
  wallMs = () => this.time;
  after(_ms: number, fn: () => void): Timer {
    const t = { fn, cancelled: false, every: false };
    this.due.push(t);
    return { cancel: () => void (t.cancelled = true) };
  }
  every(_ms: number, fn: () => void): Timer {
    const t = { fn, cancelled: false, every: true };
    this.due.push(t);
    return { cancel: () => void (t.cancelled = true) };
  }
  /** Runs the timers: the loop yields. One-shot timers leave. */
  yieldLoop(): void {
    for (const t of [...this.due]) {
      if (t.cancelled) continue;
      if (!t.every) this.due.splice(this.due.indexOf(t), 1);
      t.fn();
    }
  }
}

describe('InputPacer', () => {
  it('says fresh until the loop has gone BUSY_MAX_MS without a timer, and fresh again once a timer ran', () => {
    const clock = new BusyClock();
    const pacer = new InputPacer(clock);
    expect(pacer.fresh()).toBe(true);
    clock.time += BUSY_MAX_MS;
    expect(pacer.fresh()).toBe(true);
    clock.time += 1;
    expect(pacer.fresh()).toBe(false);
    clock.yieldLoop(); // the ticker ran
    expect(pacer.fresh()).toBe(true);
  });

  it('works inboxes off in timer turns, first come first served; one that runs out of time goes to the back', () => {
    const clock = new BusyClock();
    const pacer = new InputPacer(clock, 10);
    const ran: string[] = [];
    // 'a' needs three turns of 10 ms; 'b' and 'c' one short go each.
    let aLeft = 3;
    pacer.later(() => {
      ran.push('a');
      clock.time += 11; // uses up the turn
      return --aLeft === 0;
    });
    pacer.later(() => (ran.push('b'), true));
    pacer.later(() => (ran.push('c'), true));
    expect(pacer.waiting).toBe(3);
    clock.yieldLoop();
    expect(ran).toEqual(['a']); // 'a' ran out of time: the turn ends, 'a' to the back
    clock.yieldLoop();
    expect(ran).toEqual(['a', 'b', 'c', 'a']);
    clock.yieldLoop();
    expect(ran).toEqual(['a', 'b', 'c', 'a', 'a']);
    expect(pacer.waiting).toBe(0);
    clock.yieldLoop();
    expect(ran).toHaveLength(5); // nothing waits, nothing runs
  });

  it('refuses a busy limit that is not above 0, and stops its timers when closed', () => {
    expect(() => new InputPacer(new BusyClock(), 0)).toThrow(/above 0/);
    const clock = new BusyClock();
    const pacer = new InputPacer(clock);
    pacer.later(() => true);
    pacer.close();
    expect(clock.due.every((t) => t.cancelled)).toBe(true);
    expect(pacer.waiting).toBe(0);
  });
});

/** A client that floods `count` messages at once into a link whose every message costs `workUs` of CPU. */
async function flood(pacer: InputPacer | null, count: number, workUs: number) {
  const pair = await wsPair();
  pairs.push(pair);
  const got: number[] = [];
  const toPeer: ToPeer = {
    established: true,
    sendData: (payload) => {
      const until = performance.now() + workUs / 1000;
      while (performance.now() < until); // the seal and send a real path would do
      got.push(payload.readUInt32BE(0));
      return 'sent';
    },
    pathFamily: 'ipv4',
  };
  new ClientLink({ id: 'f', ws: pair.ws, socket: pair.socket, maxPayload: 1200, limits: { clientMsgsPerS: 0, clientBytesPerS: 0, udpOutPerS: 0 }, log: createLogger('silent'), clock: systemClock, stats: newLinkStats(), toPeer, onClosed: () => {}, ...(pacer ? { pacer } : {}) });
  const started = performance.now();
  const socket = (pair.client as unknown as { _socket: { cork(): void; uncork(): void } })._socket;
  socket.cork();
  for (let i = 0; i < count; i++) {
    const message = Buffer.alloc(64);
    message.writeUInt32BE(i, 0);
    pair.client.send(message);
  }
  socket.uncork();
  // The longest the event loop went without running a timer while the flood was handled (from
  // here: the client's own send loop above, in this same process, is not the server's doing).
  let last = performance.now();
  let longestGapMs = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    longestGapMs = Math.max(longestGapMs, now - last);
    last = now;
  }, 2);
  await eventually(() => got.length === count, `${count} messages handled`, 20_000).finally(() => clearInterval(ticker));
  return { got, longestGapMs, tookMs: performance.now() - started };
}

describe('ClientLink with the pacer', () => {
  it('a client flooding faster than the server works does not hold the event loop: timers run every few ms, and every message arrives in order', async () => {
    const count = 20_000;
    // A busy limit well under the unpaced gap of this one-socket flood (~170 ms), so the two differ clearly.
    const busyMaxMs = 20;
    const pacer = new InputPacer(systemClock, busyMaxMs);
    pacers.push(pacer);
    const paced = await flood(pacer, count, 50);
    expect(paced.got).toEqual(Array.from({ length: count }, (_, i) => i)); // nothing lost, nothing reordered
    expect(paced.tookMs).toBeGreaterThan(800); // the flood was real: about 1 s of work
    expect(paced.longestGapMs).toBeLessThan(4 * busyMaxMs);
    // The same flood without the pacer holds the loop far longer.
    const unpaced = await flood(null, count, 50);
    expect(unpaced.got).toHaveLength(count);
    expect(unpaced.longestGapMs).toBeGreaterThan(2 * paced.longestGapMs);
    expect(pacer.waiting).toBe(0);
  });
});
