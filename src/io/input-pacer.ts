/**
 * Keeps client input from holding the event loop: once the loop has gone `busyMaxMs` without a
 * timer running, client messages wait (in order, in their session's inbox, the socket paused)
 * and are handled in later timer turns, a slice at a time, round robin over the sessions.
 *
 * Why: libuv reads a busy TCP socket up to 32 times (64 KiB each) per poll and `ws` emits every
 * message of a chunk at once, so clients that send faster than the server can seal and send held
 * one turn for seconds (measured with 100 flooding sessions). Nothing else ran meanwhile: the
 * timing wheel's heartbeats left seconds late, the peer's were read seconds late, and the paths'
 * watchdogs declared busy sessions lost. With the pacer, a turn of client input ends after about
 * `busyMaxMs`: the UDP socket and the timers get theirs, then the inboxes go on.
 *
 * Whether the loop yielded is told by timers: a tick every PACER_TICK_MS (started by the first
 * client message, so a server no client has used runs no timer for it), and each drain turn.
 */
import type { Clock, Timer } from '../clock.js';

/**
 * How long client input may hold the event loop before it waits for the next timer turn (ms).
 * Well under the heartbeat interval (1 s) and the peer timeout (5 s), which is what it protects;
 * well over what a loaded machine's scheduler alone costs (the pacer measures wall time, so a
 * process preempted for tens of ms looks busy): held messages are split from the ones before
 * them, and one held while the path moves (relay to direct) can overtake one sent just before.
 * At 20 ms that happened in the NAT lab under CI load (case 14 saw two messages swapped).
 */
export const BUSY_MAX_MS = 250;
/** How often the pacer notes that timers run (ms). */
export const PACER_TICK_MS = 10;

/** An inbox to work through: handles what it can while `fresh`, returns true once it is empty. */
export type Drain = () => boolean;

export class InputPacer {
  readonly #clock: Clock;
  readonly #busyMaxMs: number;
  #lastYield = 0;
  #ticker: Timer | null = null;
  /** Inboxes waiting, first come first served; one that runs out of time goes to the back. */
  #waiting: Drain[] = [];
  #turn: Timer | null = null;

  constructor(clock: Clock, busyMaxMs: number = BUSY_MAX_MS) {
    if (!(busyMaxMs > 0)) throw new RangeError(`busyMaxMs must be above 0, not ${busyMaxMs}`);
    this.#clock = clock;
    this.#busyMaxMs = busyMaxMs;
  }

  /** True while client input may go on in this turn (the loop ran a timer within busyMaxMs of `now`). */
  fresh(now: number = this.#clock.now()): boolean {
    if (this.#ticker === null) {
      const clock = this.#clock;
      this.#lastYield = now;
      this.#ticker = clock.every(PACER_TICK_MS, () => {
        this.#lastYield = clock.now();
      });
    }
    return now - this.#lastYield <= this.#busyMaxMs;
  }

  /** Inboxes waiting for a turn. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Works `drain` off in later timer turns, until it returns true. */
  later(drain: Drain): void {
    this.#waiting.push(drain);
    this.#turn ??= this.#clock.after(0, this.#run);
  }

  close(): void {
    this.#ticker?.cancel();
    this.#ticker = null;
    this.#turn?.cancel();
    this.#turn = null;
    this.#waiting = [];
  }

  readonly #run = (): void => {
    this.#turn = null;
    this.#lastYield = this.#clock.now(); // a timer runs: the loop yielded
    const waiting = this.#waiting;
    while (waiting.length > 0 && this.fresh()) {
      const drain = waiting.shift()!;
      if (!drain()) {
        waiting.push(drain); // out of time: to the back, the others first next turn
        break;
      }
    }
    if (waiting.length > 0) this.#turn = this.#clock.after(0, this.#run);
  };
}
