/**
 * The relay's datagram plane: what it does with each datagram, whatever socket it came on
 * (README, "The relay protocol"). Sockets are handed in as a send function (relay-socket.ts),
 * time as a clock, so this runs the same under test.
 *
 * - A server's own datagram (HEARTBEAT, DATA, CLOSE) from a bound end goes, unchanged, to the
 *   ends paired with it. Nothing else is forwarded; nothing is ever opened (the relay has no PSK).
 * - Control messages must carry the admission MAC (a holder of the relay secret sent them): a
 *   BIND_REQUEST then earns one CHALLENGE (smaller than the request) to its source; BIND and
 *   APPROVE must also carry a cookie for their source to bind or approve. STUN Binding requests
 *   earn one answer. All of it passes the unproven budgets first (per source and in all).
 * - Everything else is dropped and counted, unanswered.
 */
import type { Clock, Timer } from '../clock.js';
import type { Logger } from '../log.js';
import { PreauthGate } from '../limits/preauth-gate.js';
import { CHANNEL_OFFSET, PacketType, PROTOCOL_VERSION } from '../protocol/packet.js';
import { CookieJar, sign, verifyMac } from '../protocol/relay-auth.js';
import { decodeRelayMessage, encodeRelayMessage, relayTypeOf, RelayType, type Endpoint } from '../protocol/relay-packet.js';
import { encodeBindingSuccess, isStunMessage } from '../protocol/stun.js';
import { RelayTable, type End, type RelayLimits } from './relay-table.js';

/** How often idle ends are looked for (ms). */
export const EXPIRE_SWEEP_MS = 5_000;
/** The smallest datagram of a server's own (header 34 + tag 16): anything shorter is not one. */
const MIN_SERVER_DATAGRAM_BYTES = 50;

export type Family = 'ipv4' | 'ipv6';
export type Send = (family: Family, bytes: Buffer, address: string, port: number) => void;

export const RELAY_DROP_CAUSES = [
  'malformed',
  'unbound',
  'unpaired',
  'rate_limited',
  'bad_mac',
  'bad_cookie',
  'no_binding',
  'limit_total',
  'limit_source',
  'limit_channel',
  'unproven_limited',
  'unproven_budget',
  'no_socket',
] as const;
export type RelayDropCause = (typeof RELAY_DROP_CAUSES)[number];

export interface RelayCounters {
  forwardedDatagrams: number;
  forwardedBytes: number;
  stunAnswers: number;
  challenges: number;
  binds: number;
  approvals: number;
  drops: Record<RelayDropCause, number>;
}

export interface RelayOptions {
  admissionKey: Buffer;
  limits: RelayLimits;
  unproven: { perSourcePerS: number; totalPerS: number };
  clock: Clock;
  log: Logger;
}

export class Relay {
  readonly table: RelayTable;
  readonly counters: RelayCounters = {
    forwardedDatagrams: 0,
    forwardedBytes: 0,
    stunAnswers: 0,
    challenges: 0,
    binds: 0,
    approvals: 0,
    drops: Object.fromEntries(RELAY_DROP_CAUSES.map((c) => [c, 0])) as Record<RelayDropCause, number>,
  };
  readonly #key: Buffer;
  readonly #cookies: CookieJar;
  readonly #gate: PreauthGate;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #sends = new Map<Family, Send>();
  readonly #sweep: Timer;

  constructor(options: RelayOptions) {
    this.#key = options.admissionKey;
    this.#clock = options.clock;
    this.#log = options.log;
    this.table = new RelayTable(options.limits);
    this.#cookies = new CookieJar(this.#clock.now());
    this.#gate = new PreauthGate(options.unproven, this.#clock.now());
    this.#sweep = this.#clock.every(EXPIRE_SWEEP_MS, () => {
      const gone = this.table.expire(this.#clock.now());
      if (gone > 0) this.#log.debug({ ends: gone }, 'relay ends expired');
    });
  }

  attach(family: Family, send: Send): void {
    this.#sends.set(family, send);
  }

  detach(family: Family): void {
    this.#sends.delete(family);
  }

  stop(): void {
    this.#sweep.cancel();
  }

  /** One datagram from `address`:`port` on the socket of `family`. */
  deliver(family: Family, datagram: Buffer, address: string, port: number): void {
    const type = datagram.length >= 2 && datagram[0] === PROTOCOL_VERSION ? datagram[1]! : -1;
    if (type === PacketType.HEARTBEAT || type === PacketType.DATA || type === PacketType.CLOSE) {
      this.#forward(datagram, `${address}:${port}`);
      return;
    }
    if (relayTypeOf(datagram) !== null) {
      this.#control(family, datagram, { family, address, port });
      return;
    }
    if (isStunMessage(datagram)) {
      this.#stun(family, datagram, { family, address, port });
      return;
    }
    this.counters.drops.malformed++;
  }

  #forward(datagram: Buffer, sourceKey: string): void {
    if (datagram.length < MIN_SERVER_DATAGRAM_BYTES) {
      this.counters.drops.malformed++;
      return;
    }
    const targets = this.table.forward(sourceKey, datagram, this.#clock.now());
    if (typeof targets === 'string') {
      this.counters.drops[targets]++;
      return;
    }
    for (const target of targets) {
      const send = this.#sends.get(target.source.family);
      if (!send) {
        this.counters.drops.no_socket++;
        continue;
      }
      send(target.source.family, datagram, target.source.address, target.source.port);
      this.counters.forwardedDatagrams++;
      this.counters.forwardedBytes += datagram.length;
    }
  }

  #admit(source: Endpoint): boolean {
    const verdict = this.#gate.admit(source.family, source.address, this.#clock.now());
    if (verdict === 'ok') return true;
    this.counters.drops[verdict === 'preauth_limited' ? 'unproven_limited' : 'unproven_budget']++;
    return false;
  }

  #stun(family: Family, datagram: Buffer, source: Endpoint): void {
    const answer = encodeBindingSuccess(datagram, source);
    if (!answer) {
      this.counters.drops.malformed++;
      return;
    }
    if (!this.#admit(source)) return;
    this.#reply(family, answer, source);
    this.counters.stunAnswers++;
  }

  #control(family: Family, datagram: Buffer, source: Endpoint): void {
    const message = decodeRelayMessage(datagram);
    if (!message || message.type === RelayType.CHALLENGE || message.type === RelayType.BOUND) {
      // Malformed, or a relay's own message sent to a relay: nothing to answer.
      this.counters.drops.malformed++;
      return;
    }
    if (!this.#admit(source)) return;
    // Nothing is answered that a holder of the relay secret did not send.
    if (!verifyMac(this.#key, datagram)) {
      this.counters.drops.bad_mac++;
      return;
    }
    const now = this.#clock.now();
    if (message.type === RelayType.BIND_REQUEST) {
      const cookie = this.#cookies.cookie(message.channel, source, now);
      this.#reply(family, sign(this.#key, encodeRelayMessage({ type: RelayType.CHALLENGE, channel: message.channel, cookie, observed: source })), source);
      this.counters.challenges++;
      return;
    }
    if (!this.#cookies.check(message.cookie, message.channel, source, now)) {
      this.counters.drops.bad_cookie++;
      return;
    }
    const sourceKey = `${source.address}:${source.port}`;
    if (message.type === RelayType.BIND) {
      const bound = this.table.bind(message.channel, source, sourceKey, message.nonce, message.proof, now);
      if (typeof bound === 'string') {
        this.counters.drops[bound]++;
        this.#log.debug({ source: sourceKey, cause: bound }, 'relay bind refused');
        return;
      }
      this.counters.binds++;
      this.#sendBound(bound.end);
      // The channel's other ends hear of a new or changed end at once, to check and approve it.
      if (bound.changed) for (const other of this.table.channelPeersOf(bound.end)) this.#sendBound(other);
      return;
    }
    // APPROVE
    const end = this.table.find(sourceKey, message.channel.toString('latin1'));
    if (!end || !end.nonce.equals(message.nonce)) {
      this.counters.drops.no_binding++;
      return;
    }
    const approved = this.table.approve(end, message.peer, now);
    if (!approved) {
      this.counters.drops.no_binding++;
      return;
    }
    this.counters.approvals++;
    this.#sendBound(end);
    if (approved.paired) this.#sendBound(approved.peer);
  }

  #sendBound(end: End): void {
    const bound = encodeRelayMessage({ type: RelayType.BOUND, channel: end.channel, nonce: end.nonce, ends: this.table.othersOf(end) });
    this.#reply(end.source.family, sign(this.#key, bound), end.source);
  }

  #reply(family: Family, bytes: Buffer, to: Endpoint): void {
    const send = this.#sends.get(family);
    if (!send) {
      this.counters.drops.no_socket++;
      return;
    }
    send(family, bytes, to.address, to.port);
  }
}
