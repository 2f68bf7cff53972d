/**
 * What a relay holds: the ends bound to each channel, which ends approved which, and the pairs
 * it forwards between (README, "The relay protocol"). Pure: no sockets; time handed in (ms).
 *
 * An end is one (channel, source address:port): a server's socket as the relay sees it, bound
 * with a nonce (one per binding incarnation) and a PSK proof the relay keeps only to show the
 * channel's other ends. Two ends are paired once each approved the other; datagrams go only
 * between paired ends. Nothing here authenticates: the caller has checked the cookie and MAC.
 */
import { sourceGroup } from '../net/address.js';
import { TokenBucket } from '../limits/token-bucket.js';
import { CHANNEL_OFFSET } from '../protocol/packet.js';
import { MAX_CHANNEL_ENDS, type BoundEntry, type Endpoint } from '../protocol/relay-packet.js';

/** Ends one channel may have from one source group (an IPv4 address, an IPv6 /64). */
export const MAX_CHANNEL_ENDS_PER_GROUP = 2;

export interface RelayLimits {
  /** Ends bound in all. */
  maxBindings: number;
  /** Ends bound from one source group (an IPv4 address or an IPv6 /64), all channels together. */
  maxBindingsPerSource: number;
  /** Datagrams per second one end may send (0 = no limit; burst one second's worth). */
  datagramsPerS: number;
  /** Bytes per second one end may send (0 = no limit). */
  bytesPerS: number;
  /** An end that sent nothing for this long is forgotten (ms). */
  idleMs: number;
}

export interface End {
  readonly channel: Buffer;
  /** The channel id, latin1: a cheap Map key. */
  readonly channelKey: string;
  /** The channel id's two 32-bit halves (little-endian reads): the forwarding path's key, no string made. */
  readonly channelLow: number;
  readonly channelHigh: number;
  readonly source: Endpoint;
  /** `address:port` as the socket reports it. */
  readonly sourceKey: string;
  readonly group: string;
  nonce: Buffer;
  nonceHex: string;
  proof: Buffer;
  /** Nonces (hex) of the ends of this channel this end approved. */
  readonly approves: Set<string>;
  /** The ends it is paired with: both approved each other. */
  readonly peers: End[];
  lastSeen: number;
  readonly boundAt: number;
  readonly datagrams: TokenBucket | null;
  readonly bytes: TokenBucket | null;
}

export type BindRefusal = 'limit_total' | 'limit_source' | 'limit_channel';
export type ForwardDrop = 'unbound' | 'unpaired' | 'rate_limited';

/** One source's ends: by channel id, and by its low half for the forwarding path. */
interface SourceEnds {
  byChannel: Map<string, End>;
  byLow: Map<number, End[]>;
}

export class RelayTable {
  /** Ends by source, then by channel. */
  readonly #bySource = new Map<string, SourceEnds>();
  /** Ends by channel, in binding order. */
  readonly #byChannel = new Map<string, End[]>();
  readonly #perGroup = new Map<string, number>();
  #ends = 0;
  #pairs = 0;

  constructor(readonly limits: RelayLimits) {}

  get ends(): number {
    return this.#ends;
  }

  get pairs(): number {
    return this.#pairs;
  }

  /** The end of (source, channel), if bound. */
  find(sourceKey: string, channelKey: string): End | undefined {
    return this.#bySource.get(sourceKey)?.byChannel.get(channelKey);
  }

  /**
   * Binds (or refreshes) the end of `source` on `channel`. A new nonce is a new incarnation (the
   * server restarted, or lost the binding): its approvals and pairs start again. Returns the end
   * and whether the channel's other ends should hear of it, or why it was refused.
   */
  bind(channel: Buffer, source: Endpoint, sourceKey: string, nonce: Buffer, proof: Buffer, now: number): { end: End; changed: boolean } | BindRefusal {
    const channelKey = channel.toString('latin1');
    const existing = this.find(sourceKey, channelKey);
    if (existing) {
      existing.lastSeen = now;
      if (existing.nonce.equals(nonce) && existing.proof.equals(proof)) return { end: existing, changed: false };
      this.#unpairAll(existing);
      existing.nonce = Buffer.from(nonce);
      existing.nonceHex = existing.nonce.toString('hex');
      existing.proof = Buffer.from(proof);
      existing.approves.clear();
      return { end: existing, changed: true };
    }
    const group = sourceGroup(source.family, source.address);
    if (this.#ends >= this.limits.maxBindings) return 'limit_total';
    if ((this.#perGroup.get(group) ?? 0) >= this.limits.maxBindingsPerSource) return 'limit_source';
    const ends = this.#byChannel.get(channelKey) ?? [];
    if (ends.filter((e) => e.group === group).length >= MAX_CHANNEL_ENDS_PER_GROUP) return 'limit_channel';
    if (ends.length >= MAX_CHANNEL_ENDS) {
      // Full: the oldest end that is not paired makes room; paired ends are never displaced.
      const victim = ends.find((e) => e.peers.length === 0);
      if (!victim) return 'limit_channel';
      this.remove(victim);
    }
    const end: End = {
      channel: Buffer.from(channel),
      channelKey,
      channelLow: channel.readUInt32LE(0),
      channelHigh: channel.readUInt32LE(4),
      source: { ...source },
      sourceKey,
      group,
      nonce: Buffer.from(nonce),
      nonceHex: nonce.toString('hex'),
      proof: Buffer.from(proof),
      approves: new Set(),
      peers: [],
      lastSeen: now,
      boundAt: now,
      datagrams: this.limits.datagramsPerS > 0 ? new TokenBucket(this.limits.datagramsPerS, this.limits.datagramsPerS, now) : null,
      bytes: this.limits.bytesPerS > 0 ? new TokenBucket(this.limits.bytesPerS, this.limits.bytesPerS, now) : null,
    };
    let bySource = this.#bySource.get(sourceKey);
    if (!bySource) this.#bySource.set(sourceKey, (bySource = { byChannel: new Map(), byLow: new Map() }));
    bySource.byChannel.set(channelKey, end);
    const sameLow = bySource.byLow.get(end.channelLow);
    if (sameLow) sameLow.push(end);
    else bySource.byLow.set(end.channelLow, [end]);
    const channelEnds = this.#byChannel.get(channelKey);
    if (channelEnds) channelEnds.push(end);
    else this.#byChannel.set(channelKey, [end]);
    this.#perGroup.set(group, (this.#perGroup.get(group) ?? 0) + 1);
    this.#ends++;
    return { end, changed: true };
  }

  /**
   * `end` approves the channel's end with nonce `peerNonce` (it checked that end's proof).
   * Returns the peer end (null if there is none of that nonce) and whether they are now paired.
   */
  approve(end: End, peerNonce: Buffer, now: number): { peer: End; paired: boolean } | null {
    end.lastSeen = now;
    const peer = (this.#byChannel.get(end.channelKey) ?? []).find((e) => e !== end && e.nonce.equals(peerNonce));
    if (!peer) return null;
    end.approves.add(peer.nonceHex);
    const paired = peer.approves.has(end.nonceHex);
    if (paired && !end.peers.includes(peer)) {
      end.peers.push(peer);
      peer.peers.push(end);
      this.#pairs++;
    }
    return { peer, paired };
  }

  /** The channel's other ends, as a BOUND lists them for `end`. */
  othersOf(end: End): BoundEntry[] {
    return (this.#byChannel.get(end.channelKey) ?? [])
      .filter((e) => e !== end)
      .map((e) => ({ nonce: e.nonce, source: e.source, proof: e.proof, paired: end.peers.includes(e) }));
  }

  /** The other ends of `end`'s channel (to tell them of a change). */
  channelPeersOf(end: End): End[] {
    return (this.#byChannel.get(end.channelKey) ?? []).filter((e) => e !== end);
  }

  /**
   * Where `datagram` (a server's own: its channel id at CHANNEL_OFFSET) from `sourceKey` goes:
   * the ends paired with its end, or why nowhere. Counts against the end's rates. Makes no
   * string and no Buffer: this runs for every forwarded datagram.
   */
  forward(sourceKey: string, datagram: Buffer, now: number): End[] | ForwardDrop {
    const candidates = this.#bySource.get(sourceKey)?.byLow.get(datagram.readUInt32LE(CHANNEL_OFFSET));
    const high = datagram.readUInt32LE(CHANNEL_OFFSET + 4);
    let end: End | undefined;
    if (candidates) for (const e of candidates) if (e.channelHigh === high) end = e;
    if (!end) return 'unbound';
    const bytes = datagram.length;
    if (end.peers.length === 0) return 'unpaired';
    if ((end.datagrams && !end.datagrams.take(1, now)) || (end.bytes && !end.bytes.take(bytes, now))) return 'rate_limited';
    end.lastSeen = now;
    return end.peers;
  }

  /** Forgets ends idle for longer than the limit; returns how many. */
  expire(now: number): number {
    const stale: End[] = [];
    for (const ends of this.#byChannel.values()) for (const e of ends) if (now - e.lastSeen > this.limits.idleMs) stale.push(e);
    for (const e of stale) this.remove(e);
    return stale.length;
  }

  remove(end: End): void {
    const bySource = this.#bySource.get(end.sourceKey);
    if (bySource?.byChannel.get(end.channelKey) !== end) return;
    this.#unpairAll(end);
    for (const other of this.#byChannel.get(end.channelKey) ?? []) other.approves.delete(end.nonceHex);
    bySource.byChannel.delete(end.channelKey);
    const sameLow = bySource.byLow.get(end.channelLow)!;
    sameLow.splice(sameLow.indexOf(end), 1);
    if (sameLow.length === 0) bySource.byLow.delete(end.channelLow);
    if (bySource.byChannel.size === 0) this.#bySource.delete(end.sourceKey);
    const ends = this.#byChannel.get(end.channelKey)!;
    ends.splice(ends.indexOf(end), 1);
    if (ends.length === 0) this.#byChannel.delete(end.channelKey);
    const count = (this.#perGroup.get(end.group) ?? 1) - 1;
    if (count === 0) this.#perGroup.delete(end.group);
    else this.#perGroup.set(end.group, count);
    this.#ends--;
  }

  #unpairAll(end: End): void {
    for (const peer of end.peers) {
      peer.peers.splice(peer.peers.indexOf(end), 1);
      peer.approves.delete(end.nonceHex);
      this.#pairs--;
    }
    end.peers.length = 0;
  }
}
