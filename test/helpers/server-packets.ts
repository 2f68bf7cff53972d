/**
 * What a peer does with the datagrams a server sends it: decode the header, derive the sender's
 * keys (once per server session), open, and decode heartbeats. HEARTBEATs open under the
 * sender's heartbeat key; DATA and CLOSE under the data key from the server session to one of
 * the peer's own sessions (`receivers`: the peer's salts). Shared by the test peers.
 */
import type { KeyObject } from 'node:crypto';
import { deriveDataKey, deriveHeartbeatKey, open } from '../../src/protocol/crypto.js';
import { decodeHeartbeat, type Heartbeat } from '../../src/protocol/heartbeat.js';
import { decodeHeader, PacketType, type PacketHeader } from '../../src/protocol/packet.js';

export interface OpenedPacket {
  header: PacketHeader;
  /** null when it did not authenticate. */
  plaintext: Buffer | null;
  heartbeat: Heartbeat | null;
  /** For DATA and CLOSE that opened: which of the peer's salts (hex) it was sealed for. */
  receiver: string | null;
}

export class ServerPacketOpener {
  readonly #keys = new Map<string, KeyObject>();

  /** @param receivers the peer's own session salts (hex), newest first */
  constructor(
    private readonly psk: Buffer,
    private readonly receivers: () => string[],
  ) {}

  #key(id: string, derive: () => KeyObject): KeyObject {
    let key = this.#keys.get(id);
    if (!key) {
      key = derive();
      this.#keys.set(id, key);
    }
    return key;
  }

  /** The packet, or null when the datagram is not one of the protocol. */
  open(datagram: Buffer): OpenedPacket | null {
    const header = decodeHeader(datagram);
    if (typeof header === 'string') return null;
    const sender = Buffer.from(header.salt, 'hex');
    if (header.type === PacketType.HEARTBEAT) {
      const plaintext = open(this.#key(header.salt, () => deriveHeartbeatKey(this.psk, sender)), datagram);
      const decoded = plaintext ? decodeHeartbeat(plaintext) : null;
      return { header, plaintext, heartbeat: decoded && typeof decoded !== 'string' ? decoded : null, receiver: null };
    }
    for (const receiver of this.receivers()) {
      const key = this.#key(`${header.salt}>${receiver}`, () => deriveDataKey(this.psk, sender, Buffer.from(receiver, 'hex')));
      const plaintext = open(key, datagram);
      if (plaintext) return { header, plaintext, heartbeat: null, receiver };
    }
    return { header, plaintext: null, heartbeat: null, receiver: null };
  }
}
