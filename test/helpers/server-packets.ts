/**
 * What a peer does with the datagrams a server sends it: decode the header, derive the sender's
 * key (once per server session), open, and decode heartbeats. Shared by the test peers.
 */
import type { KeyObject } from 'node:crypto';
import { derivePacketKey, open } from '../../src/protocol/crypto.js';
import { decodeHeartbeat, type Heartbeat } from '../../src/protocol/heartbeat.js';
import { decodeHeader, PacketType, type PacketHeader } from '../../src/protocol/packet.js';

export interface OpenedPacket {
  header: PacketHeader;
  /** null when it did not authenticate. */
  plaintext: Buffer | null;
  heartbeat: Heartbeat | null;
}

export class ServerPacketOpener {
  readonly #keys = new Map<string, KeyObject>();

  constructor(private readonly psk: Buffer) {}

  /** The packet, or null when the datagram is not one of the protocol. */
  open(datagram: Buffer): OpenedPacket | null {
    const header = decodeHeader(datagram);
    if (typeof header === 'string') return null;
    let key = this.#keys.get(header.salt);
    if (!key) {
      key = derivePacketKey(this.psk, Buffer.from(header.salt, 'latin1'));
      this.#keys.set(header.salt, key);
    }
    const plaintext = open(key, datagram);
    const decoded = plaintext && header.type === PacketType.HEARTBEAT ? decodeHeartbeat(plaintext) : null;
    return { header, plaintext, heartbeat: decoded && typeof decoded !== 'string' ? decoded : null };
  }
}
