/**
 * The shared UDP plane of one server: the bound sockets (one per family), and the routing of
 * each incoming datagram to the channel of its pre-shared key. One `message` listener per
 * socket, whatever the number of sessions.
 */
import type { Socket } from 'node:dgram';
import { timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { formatEndpoint, type Endpoint, type Family } from '../../machines/endpoint.js';
import { sourceGroup } from '../net/address.js';
import { KeySchedule } from '../protocol/crypto.js';
import { HexNames } from '../protocol/hex-names.js';
import { decodeHeader, PACKET_OVERHEAD_BYTES, PROTOCOL_VERSION, PROTOCOL_VERSION_V0 } from '../protocol/packet.js';
import { relayTypeOf } from '../protocol/relay-packet.js';
import { isStunMessage } from '../protocol/stun.js';
import { PreauthGate, type PreauthLimits } from '../limits/preauth-gate.js';
import { TokenBucket } from '../limits/token-bucket.js';
import { Channel, type ChannelDrops, type ChannelMember } from './channel.js';

/** Datagrams dropped before reaching a session, by cause. */
export interface PlaneDrops extends ChannelDrops {
  oversized: number;
  version: number;
  unknown_channel: number;
  send_failed: number;
}

/** Sources whose datagrams of another protocol version were logged, remembered at most. */
export const VERSION_LOG_SOURCES = 1024;
/** ... and at most this many such lines a minute, whatever the number of sources. */
export const VERSION_LOG_LINES_PER_MINUTE = 10;

/** Takes the STUN messages that share the peer port (stun-discovery.ts). */
export interface StunReceiver {
  receive(family: Family, datagram: Buffer, address: string, port: number): void;
}

/** Takes the relay control messages that come from a configured relay (relay-links.ts). */
export interface RelayReceiver {
  /** False when `from` is not a relay: the datagram is then routed like any other. */
  receive(datagram: Buffer, from: Endpoint): boolean;
}

export interface SwitchboardOptions {
  /** The largest application payload accepted in one datagram. */
  maxPayloadBytes: number;
  preauth: PreauthLimits;
  log: Logger;
  clock: Clock;
}

export class Switchboard<Member extends ChannelMember = ChannelMember> {
  readonly #sockets: Partial<Record<Family, Socket>> = {};
  /** Channel id -> the channels of that id (one, unless two keys share an id by chance). */
  readonly #channels = new Map<string, Array<Channel<Member>>>();
  readonly #maxDatagramBytes: number;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #versionLogged = new Set<string>();
  readonly #versionLines: TokenBucket;
  #stun: StunReceiver | null = null;
  #relay: RelayReceiver | null = null;
  readonly preauth: PreauthGate;
  /** The hex of every salt and channel id the server routes by, one string each (hex-names.ts). */
  readonly names = new HexNames();
  readonly drops: PlaneDrops = {
    oversized: 0,
    malformed: 0,
    version: 0,
    unknown_channel: 0,
    send_failed: 0,
    preauth_limited: 0,
    preauth_budget: 0,
    auth_failed: 0,
    replay: 0,
    unknown_peer: 0,
  };
  datagramsIn = 0;
  datagramsOut = 0;
  readonly #onSent = (err: Error | null) => {
    if (err) this.drops.send_failed++;
  };

  constructor(options: SwitchboardOptions) {
    this.#maxDatagramBytes = options.maxPayloadBytes + PACKET_OVERHEAD_BYTES;
    this.#log = options.log;
    this.#clock = options.clock;
    this.preauth = new PreauthGate(options.preauth, this.#clock.now());
    this.#versionLines = new TokenBucket(VERSION_LOG_LINES_PER_MINUTE / 60, VERSION_LOG_LINES_PER_MINUTE, this.#clock.now());
  }

  attach(family: Family, socket: Socket): void {
    this.#sockets[family] = socket;
  }

  detach(family: Family): void {
    delete this.#sockets[family];
  }

  /** Where STUN messages go from now on; without a receiver they are malformed datagrams like any. */
  receiveStunWith(receiver: StunReceiver | null): void {
    this.#stun = receiver;
  }

  /**
   * Where relay control messages from a relay go from now on (`--relay`); without a receiver,
   * or from anywhere else, they are malformed datagrams like any.
   */
  receiveRelayWith(receiver: RelayReceiver | null): void {
    this.#relay = receiver;
  }

  /** The bound socket of a family, for diagnostics (and for tests that break it on purpose). */
  socketOf(family: Family): Socket | undefined {
    return this.#sockets[family];
  }

  /** Families with a bound socket. */
  families(): Family[] {
    return (['ipv6', 'ipv4'] as const).filter((f) => this.#sockets[f] !== undefined);
  }

  /** The channel of a pre-shared key, made on first use. */
  channelFor(psk: Buffer): Channel<Member> {
    const id = new KeySchedule(psk).channelId().toString('hex');
    const same = this.#channels.get(id) ?? [];
    const found = same.find((c) => timingSafeEqual(c.psk, psk));
    if (found) return found;
    const channel = new Channel<Member>(id, psk, this.drops, this.preauth, this.names);
    this.#channels.set(id, [...same, channel]);
    return channel;
  }

  /** Forgets a channel once its last session left. */
  release(channel: Channel<Member>): void {
    if (channel.size > 0) return;
    const rest = (this.#channels.get(channel.id) ?? []).filter((c) => c !== channel);
    if (rest.length === 0) this.#channels.delete(channel.id);
    else this.#channels.set(channel.id, rest);
  }

  /** Called for every datagram a socket receives. Never throws, never answers. */
  deliver(family: Family, datagram: Buffer, address: string, port: number): void {
    this.datagramsIn++;
    // Before the size check (a BOUND may be larger than a small --max-payload's datagrams) and
    // the v1 header decode, which would call them malformed: a relay's CHALLENGE and BOUND.
    if (this.#relay !== null && relayTypeOf(datagram) !== null && this.#relay.receive(datagram, { family, address, port })) return;
    if (datagram.length > this.#maxDatagramBytes) {
      this.drops.oversized++;
      return;
    }
    const header = decodeHeader(datagram, this.names);
    if (typeof header === 'string') {
      // Off the hot path: only what is not autoprox is looked at as STUN (packet.ts: 0xa0-0xaf).
      if (header === 'not_autoprox' && this.#stun !== null && isStunMessage(datagram)) {
        this.#stun.receive(family, datagram, address, port);
        return;
      }
      if (header === 'version') {
        this.drops.version++;
        this.#logVersion(datagram[0]!, { family, address, port });
      } else {
        this.drops.malformed++;
      }
      return;
    }
    const channels = this.#channels.get(header.channel);
    if (!channels) {
      this.drops.unknown_channel++;
      return;
    }
    const at = this.#clock.now();
    const from: Endpoint = { family, address, port };
    for (const channel of channels) channel.receive(header, datagram, from, at);
  }

  /** Once per source (bounded), a line an operator can act on; never an answer to the sender. */
  #logVersion(version: number, from: Endpoint): void {
    const group = sourceGroup(from.family, from.address);
    if (this.#versionLogged.has(group) || !this.#versionLines.take(1, this.#clock.now())) return;
    if (this.#versionLogged.size >= VERSION_LOG_SOURCES) this.#versionLogged.delete(this.#versionLogged.values().next().value as string);
    this.#versionLogged.add(group);
    const theirs = version === PROTOCOL_VERSION_V0 ? 'protocol v0 (autoprox 0.1)' : `an unknown protocol version (0x${version.toString(16)})`;
    this.#log.warn(
      { from: formatEndpoint(from), version: `0x${version.toString(16)}`, expected: `0x${PROTOCOL_VERSION.toString(16)}` },
      `dropped a datagram of ${theirs} from ${formatEndpoint(from)}: this server speaks protocol v1; both ends must run the same protocol version (upgrade the older server)`,
    );
  }

  /** Sends one datagram given as pieces. False when there is no socket for that family. */
  send(to: Endpoint, pieces: Buffer[]): boolean {
    const socket = this.#sockets[to.family];
    if (!socket) return false;
    this.datagramsOut++;
    socket.send(pieces, to.port, to.address, this.#onSent);
    return true;
  }
}
