/**
 * What one session knows of the peer sessions it has heard: per peer salt, the heartbeat key
 * and window (HEARTBEATs are sealed by the sender alone) and the data key and window of
 * DATA/CLOSE sealed for this session's current salt.
 *
 * An entry is *bound* once a packet bound to our current salt authenticated under it, or it is
 * our path: a bound entry is never evicted while our salt lives, so a recording of its packets
 * can never be opened twice. When our salt changes (the session lost its path; see
 * peer-link.ts) every data key and data window belongs to the old salt: they go, and nothing
 * sealed for the old salt can be opened again.
 */
import type { KeyObject } from 'node:crypto';
import { open, type KeySchedule } from '../protocol/crypto.js';
import type { PacketHeader } from '../protocol/packet.js';
import { HEARTBEAT_WINDOW_WORDS, ReplayWindow } from '../protocol/replay-window.js';

/** Peer sessions whose keys and windows one session keeps, at most (the path may add one). */
export const MAX_PEER_KEYS = 8;

export interface PeerEntry {
  salt: string;
  saltBytes: Buffer;
  heartbeatKey: KeyObject;
  heartbeatWindow: ReplayWindow;
  /** Opens DATA and CLOSE from this peer to our current salt; derived on first need. */
  dataKey: KeyObject | null;
  /** Made with the first DATA or CLOSE that authenticates (none seen yet: every counter is new). */
  dataWindow: ReplayWindow | null;
  bound: boolean;
}

export type OpenResult = Buffer | 'replay' | 'auth_failed';

export class PeerKeyring {
  readonly #peers = new Map<string, PeerEntry>();

  constructor(private readonly keys: KeySchedule) {}

  get(salt: string): PeerEntry | undefined {
    return this.#peers.get(salt);
  }

  has(salt: string): boolean {
    return this.#peers.has(salt);
  }

  get size(): number {
    return this.#peers.size;
  }

  /**
   * The entry of a peer whose heartbeat authenticated, made if new. The least recent unbound
   * entry makes room; when every entry is bound the new peer is not kept (null), unless `force`
   * (the path's peer always has an entry).
   */
  remember(salt: string, heartbeatKey: KeyObject, force = false): PeerEntry | null {
    const known = this.#peers.get(salt);
    if (known) {
      this.#peers.delete(salt);
      this.#peers.set(salt, known);
      return known;
    }
    if (this.#peers.size >= MAX_PEER_KEYS && !this.#evictOne() && !force) return null;
    const entry: PeerEntry = {
      salt,
      saltBytes: Buffer.from(salt, 'hex'),
      heartbeatKey,
      heartbeatWindow: new ReplayWindow(HEARTBEAT_WINDOW_WORDS),
      dataKey: null,
      dataWindow: null,
      bound: false,
    };
    this.#peers.set(salt, entry);
    return entry;
  }

  #evictOne(): boolean {
    for (const [salt, entry] of this.#peers) {
      if (!entry.bound) {
        this.#peers.delete(salt);
        return true;
      }
    }
    return false;
  }

  /** Replay check, then authentication under the data key for `ownSalt`, then the window moves. */
  openData(entry: PeerEntry, ownSalt: Buffer, header: PacketHeader, datagram: Buffer): OpenResult {
    if (entry.dataWindow !== null && !entry.dataWindow.check(header.counter)) return 'replay';
    entry.dataKey ??= this.keys.dataKey(entry.saltBytes, ownSalt);
    const plaintext = open(entry.dataKey, datagram);
    if (!plaintext) return 'auth_failed';
    (entry.dataWindow ??= new ReplayWindow()).mark(header.counter);
    entry.bound = true;
    return plaintext;
  }

  /** Our salt changed: keys and windows of data sealed for the old one are of no more use. */
  forgetData(): void {
    for (const entry of this.#peers.values()) {
      entry.dataKey = null;
      entry.dataWindow = null;
      entry.bound = false;
    }
  }
}
