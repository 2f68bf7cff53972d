/**
 * The shared UDP plane of one server: the bound sockets (one per family), and the routing of
 * each incoming datagram to the session links of its channel. One `message` listener per
 * socket, whatever the number of sessions.
 */
import type { Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import type { Endpoint, Family } from '../net/endpoint.js';
import { decodeHeader, PACKET_OVERHEAD_BYTES, type PacketHeader } from '../protocol/packet.js';

/** What a session link must offer the switchboard. */
export interface RoutedLink {
  readonly id: string;
  /** The channel id as a latin1 string. */
  readonly channel: string;
  receive(header: PacketHeader, datagram: Buffer, from: Endpoint, at: number): void;
}

/** Datagrams dropped before reaching a session, by cause. */
export interface PlaneDrops {
  oversized: number;
  malformed: number;
  unknown_channel: number;
  send_failed: number;
}

export class Switchboard<Link extends RoutedLink = RoutedLink> {
  readonly #sockets: Partial<Record<Family, Socket>> = {};
  readonly #channels = new Map<string, Link[]>();
  readonly #pending = new Map<string, Link>();
  readonly #maxDatagramBytes: number;
  readonly drops: PlaneDrops = { oversized: 0, malformed: 0, unknown_channel: 0, send_failed: 0 };
  datagramsIn = 0;
  datagramsOut = 0;
  readonly #onSent = (err: Error | null) => {
    if (err) this.drops.send_failed++;
  };

  /** @param maxPayloadBytes the largest application payload accepted in one datagram */
  constructor(maxPayloadBytes: number) {
    this.#maxDatagramBytes = maxPayloadBytes + PACKET_OVERHEAD_BYTES;
  }

  attach(family: Family, socket: Socket): void {
    this.#sockets[family] = socket;
  }

  detach(family: Family): void {
    delete this.#sockets[family];
  }

  /** Families with a bound socket. */
  families(): Family[] {
    return (['ipv6', 'ipv4'] as const).filter((f) => this.#sockets[f] !== undefined);
  }

  /** A link waiting for its session actor to claim it. */
  admit(link: Link): void {
    this.#pending.set(link.id, link);
  }

  /** Hands a pending link to its session and starts routing its channel to it. */
  claim(id: string): Link | undefined {
    const link = this.#pending.get(id);
    if (!link) return undefined;
    this.#pending.delete(id);
    const links = this.#channels.get(link.channel);
    if (links) links.push(link);
    else this.#channels.set(link.channel, [link]);
    return link;
  }

  /** Stops routing to a link (pending or claimed). */
  release(link: Link): void {
    this.#pending.delete(link.id);
    const links = this.#channels.get(link.channel);
    if (!links) return;
    const rest = links.filter((l) => l !== link);
    if (rest.length === 0) this.#channels.delete(link.channel);
    else this.#channels.set(link.channel, rest);
  }

  isPending(id: string): boolean {
    return this.#pending.has(id);
  }

  /** Called for every datagram a socket receives. Never throws, never answers. */
  deliver(family: Family, datagram: Buffer, address: string, port: number): void {
    this.datagramsIn++;
    if (datagram.length > this.#maxDatagramBytes) {
      this.drops.oversized++;
      return;
    }
    const header = decodeHeader(datagram);
    if (typeof header === 'string') {
      this.drops.malformed++;
      return;
    }
    const links = this.#channels.get(header.channel);
    if (!links) {
      this.drops.unknown_channel++;
      return;
    }
    const at = performance.now();
    const from: Endpoint = { family, address, port };
    for (const link of links) link.receive(header, datagram, from, at);
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
