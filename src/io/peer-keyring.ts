/**
 * The keys and replay windows of the peer sessions one session has heard from: derived on
 * first contact (an HKDF), kept for the most recent few, never evicting the one in use.
 */
import type { KeyObject } from 'node:crypto';
import { derivePacketKey, open } from '../protocol/crypto.js';
import type { PacketHeader } from '../protocol/packet.js';
import { ReplayWindow } from '../protocol/replay-window.js';

/** Peer sessions whose keys and replay windows are kept per session. */
export const MAX_PEER_KEYS = 8;

export interface PeerKeys {
  key: KeyObject;
  window: ReplayWindow;
}

export type OpenFailure = 'replay' | 'auth_failed';

export class PeerKeyring {
  readonly #peers = new Map<string, PeerKeys>();

  constructor(private readonly psk: Buffer) {}

  /** Keys of a peer session already heard from. */
  get(salt: string): PeerKeys | undefined {
    return this.#peers.get(salt);
  }

  get size(): number {
    return this.#peers.size;
  }

  has(salt: string): boolean {
    return this.#peers.has(salt);
  }

  /**
   * Keys for a peer session: the known ones, or freshly derived ones that are not kept until
   * `remember` says a packet authenticated under them (forgeries never take a place).
   */
  lookup(salt: string): PeerKeys {
    return this.#peers.get(salt) ?? { key: derivePacketKey(this.psk, Buffer.from(salt, 'latin1')), window: new ReplayWindow() };
  }

  /** Keeps (or refreshes) a peer session's keys; the least recent other than `keep` is evicted. */
  remember(salt: string, keys: PeerKeys, keep: string | null): void {
    this.#peers.delete(salt);
    this.#peers.set(salt, keys);
    if (this.#peers.size > MAX_PEER_KEYS) {
      for (const old of this.#peers.keys()) {
        if (old !== keep) {
          this.#peers.delete(old);
          break;
        }
      }
    }
  }
}

/** Replay check, authentication, then the window moves: in that order (RFC 6479). */
export function openChecked(peer: PeerKeys, header: PacketHeader, datagram: Buffer): Buffer | OpenFailure {
  if (!peer.window.check(header.counter)) return 'replay';
  const plaintext = open(peer.key, datagram);
  if (!plaintext) return 'auth_failed';
  peer.window.accept(header.counter);
  return plaintext;
}
