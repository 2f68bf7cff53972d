/**
 * This server's bindings at its relays (`--relay`): one RelayBinder per (relay endpoint,
 * channel), made when a session of that channel first asks for the relay (`relay.want`) and
 * stopped when the channel's last such session is gone. The switchboard hands it the relay
 * control messages that come from a relay's endpoint (by channel id, bytes 2..10); HEARTBEAT,
 * DATA and CLOSE forwarded by a relay are routed like any other datagram: to a session, the relay
 * is just where the peer's datagrams come from.
 *
 * The binders send from the peer socket of the relay's family, so the relay pairs the very
 * socket the sessions' datagrams leave from.
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { formatEndpoint, sameEndpoint, type Endpoint, type Family } from '../../machines/endpoint.js';
import { CHANNEL_ID_BYTES, CHANNEL_OFFSET } from '../protocol/packet.js';
import { RelayBinder, type BinderState } from './relay-binder.js';

/** Where the binders' datagrams leave: the switchboard (false: no socket of that family). */
export interface RelaySender {
  send(to: Endpoint, pieces: Buffer[]): boolean;
  families(): Family[];
}

/** What RelayLinks needs of a channel: its id and its PSK's relay bind key. */
export interface RelayChannel {
  readonly id: string;
  readonly keys: { relayBindKey(): Buffer };
}

export interface RelayLinksOptions {
  /** The relays' endpoints, resolved, in order of preference. */
  relays: Endpoint[];
  /** admissionKey(--relay-secret). */
  admissionKey: Buffer;
  sender: RelaySender;
  clock: Clock;
  log: Logger;
}

/** Relay control messages seen, by what became of them (`autoprox_relay_control_total`). */
export interface RelayControlCounts {
  handled: number;
  /** For a channel no session of ours wants at that relay (late, or not ours). */
  unwanted: number;
}

/** Told the peer servers' endpoints as the relays see them (the paired ends' sources), whenever they change. */
export type RelayPeersListener = (endpoints: Endpoint[]) => void;

interface Bound {
  channel: RelayChannel;
  binders: RelayBinder[];
  members: Map<object, RelayPeersListener | null>;
}

export class RelayLinks {
  readonly #o: RelayLinksOptions;
  /** Channel id (hex) -> the channels of that id that want the relays (one, unless two keys share an id). */
  readonly #bound = new Map<string, Bound[]>();
  readonly counts: RelayControlCounts = { handled: 0, unwanted: 0 };

  constructor(options: RelayLinksOptions) {
    this.#o = options;
  }

  get relays(): readonly Endpoint[] {
    return this.#o.relays;
  }

  /** One of the configured relays (not chosen by any client: the target policy does not apply to it). */
  isRelay(endpoint: Endpoint): boolean {
    return this.#o.relays.some((r) => sameEndpoint(r, endpoint));
  }

  /**
   * `member` (a session of `channel`) wants the channel bound at the relays: bind it, once per
   * relay. `onPeers` hears the paired ends' sources (only ends whose PSK proof verified: see
   * RelayBinder) whenever they change, and at once (asynchronously) when some are paired already.
   */
  want(channel: RelayChannel, member: object, onPeers?: RelayPeersListener): void {
    const same = this.#bound.get(channel.id) ?? [];
    let bound = same.find((b) => b.channel === channel);
    if (!bound) {
      const families = this.#o.sender.families();
      const channelId = Buffer.from(channel.id, 'hex');
      const bindKey = channel.keys.relayBindKey();
      const binders = this.#o.relays
        .filter((relay) => families.includes(relay.family))
        .map(
          (relay) =>
            new RelayBinder({
              relay,
              channel: channelId,
              bindKey,
              admissionKey: this.#o.admissionKey,
              send: (bytes, to) => void this.#o.sender.send(to, [bytes]),
              clock: this.#o.clock,
              onChange: (binder) => this.#changed(channel, binder),
            }),
        );
      bound = { channel, binders, members: new Map() };
      this.#bound.set(channel.id, [...same, bound]);
      for (const binder of binders) binder.start();
    }
    if (bound.members.has(member)) return;
    bound.members.set(member, onPeers ?? null);
    const known = pairedSources(bound);
    if (onPeers && known.length > 0) {
      const joined = bound;
      queueMicrotask(() => {
        if (joined.members.get(member) === onPeers) onPeers(pairedSources(joined));
      });
    }
  }

  /** `member` is gone: the channel's binders stop with its last member. */
  leave(channel: RelayChannel, member: object): void {
    const same = this.#bound.get(channel.id);
    const bound = same?.find((b) => b.channel === channel);
    if (!same || !bound || !bound.members.delete(member) || bound.members.size > 0) return;
    for (const binder of bound.binders) binder.stop();
    const rest = same.filter((b) => b !== bound);
    if (rest.length === 0) this.#bound.delete(channel.id);
    else this.#bound.set(channel.id, rest);
  }

  /**
   * A relay control message (relayTypeOf(datagram) !== null) from `from`. True when `from` is a
   * relay (the message is taken here, whatever becomes of it); false: not from a relay, so the
   * caller treats it like any datagram.
   */
  receive(datagram: Buffer, from: Endpoint): boolean {
    if (!this.isRelay(from)) return false;
    const id = datagram.subarray(CHANNEL_OFFSET, CHANNEL_OFFSET + CHANNEL_ID_BYTES).toString('hex');
    for (const bound of this.#bound.get(id) ?? []) {
      for (const binder of bound.binders) {
        if (sameEndpoint(binder.relay, from) && binder.handle(datagram)) {
          this.counts.handled++;
          return true;
        }
      }
    }
    this.counts.unwanted++;
    return true;
  }

  /** The state of a channel's binding at each relay, for diagnostics and tests. */
  states(channel: RelayChannel): Array<{ relay: string; state: BinderState; paired: string[]; observed: string | null }> {
    const bound = this.#bound.get(channel.id)?.find((b) => b.channel === channel);
    return (bound?.binders ?? []).map((b) => ({
      relay: formatEndpoint(b.relay),
      state: b.state,
      paired: b.paired.map(formatEndpoint),
      observed: b.observed ? formatEndpoint(b.observed) : null,
    }));
  }

  /** Bindings in each state, in all (the metrics). */
  countByState(): Record<BinderState, number> {
    const out: Record<BinderState, number> = { binding: 0, bound: 0, paired: 0 };
    for (const same of this.#bound.values()) for (const b of same) for (const binder of b.binders) out[binder.state]++;
    return out;
  }

  stop(): void {
    for (const same of this.#bound.values()) for (const b of same) for (const binder of b.binders) binder.stop();
    this.#bound.clear();
  }

  #changed(channel: RelayChannel, binder: RelayBinder): void {
    this.#o.log.debug(
      { relay: formatEndpoint(binder.relay), channel: channel.id, state: binder.state, paired: binder.paired.map(formatEndpoint) },
      'relay binding changed',
    );
    const bound = this.#bound.get(channel.id)?.find((b) => b.channel === channel);
    if (!bound) return;
    const endpoints = pairedSources(bound);
    if (endpoints.length === 0) return;
    for (const listener of [...bound.members.values()]) listener?.(endpoints);
  }
}

/** The paired ends' sources at every relay of a binding, once each, in the relays' order. */
function pairedSources(bound: Bound): Endpoint[] {
  const out: Endpoint[] = [];
  for (const binder of bound.binders) for (const p of binder.paired) if (!out.some((o) => sameEndpoint(o, p))) out.push({ ...p });
  return out;
}
