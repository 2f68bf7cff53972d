/**
 * The timer policy of an established path, in one place (as wireguard-go keeps a peer's in
 * timers.go): a heartbeat every heartbeat interval keeps the NAT mapping open and lets the peer
 * prove the path; a watchdog says the peer went silent when no heartbeat of it echoed us freshly
 * for the peer timeout. The path calls `proven` when one does; the server's one HeartbeatWheel
 * calls `due` when a timer is due. No timer of its own, no statechart step per heartbeat.
 */
import type { WheelMember } from './heartbeat-wheel.js';

export interface PathTiming {
  /** Heartbeat interval while established (ms). */
  heartbeatMs: number;
  /** Silence after which the peer counts as gone (ms). */
  peerTimeoutMs: number;
}

export interface PathHooks {
  /** Send a heartbeat to the path's peer now. */
  beat(): void;
  /** The peer has not proven the path for the peer timeout. */
  silent(): void;
}

export class PathTimers implements WheelMember {
  #nextBeat: number;
  #silentAt: number;

  /** @param now when the path came up (its first heartbeat went then, and it was just proven) */
  constructor(
    private readonly timing: PathTiming,
    private readonly hooks: PathHooks,
    now: number,
  ) {
    this.#nextBeat = now + timing.heartbeatMs;
    this.#silentAt = now + timing.peerTimeoutMs;
  }

  /** A heartbeat of the peer echoed us freshly: the path still works both ways. */
  proven(now: number): void {
    this.#silentAt = now + this.timing.peerTimeoutMs;
  }

  /** When the wheel should call next. */
  get nextDue(): number {
    return Math.min(this.#nextBeat, this.#silentAt);
  }

  due(now: number): number | null {
    if (now >= this.#silentAt) {
      this.hooks.silent();
      return null;
    }
    if (now >= this.#nextBeat) {
      this.hooks.beat();
      // After a stall the heartbeats do not come in a burst: one now, the next an interval on.
      const next = this.#nextBeat + this.timing.heartbeatMs;
      this.#nextBeat = next <= now ? now + this.timing.heartbeatMs : next;
    }
    return this.nextDue;
  }
}
