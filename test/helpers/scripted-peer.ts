/**
 * A scripted peer: a real UDP socket that speaks the autoprox wire protocol under test control.
 * It can answer heartbeats, stay silent, send DATA or CLOSE, replay or forge datagrams, and move
 * to a new port (NAT rebinding). It decrypts what the server sends it.
 */
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes, type KeyObject } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Endpoint, Family } from '../../machines/endpoint.js';
import { deriveChannelId, deriveDataKey, deriveHeartbeatKey, seal } from '../../src/protocol/crypto.js';
import { encodeHeartbeat, type Heartbeat } from '../../src/protocol/heartbeat.js';
import { ServerPacketOpener } from './server-packets.js';
import { Waiter } from './waiter.js';
import { encodeHeader, PacketType, SALT_BYTES, type PacketHeader } from '../../src/protocol/packet.js';

export interface Received {
  header: PacketHeader;
  datagram: Buffer;
  plaintext: Buffer | null;
  heartbeat: Heartbeat | null;
  from: Endpoint;
  at: number;
}

const WAIT_MS = 10_000;

export class ScriptedPeer {
  readonly received: Received[] = [];
  /** Every datagram this peer sent, as sent (for replays). */
  readonly sent: Buffer[] = [];
  /** When false, the peer does not answer heartbeats on its own. */
  autoReply = true;
  salt: Buffer = randomBytes(SALT_BYTES);
  /** Salts of this peer's earlier sessions (before `restart()`), newest first. */
  readonly #earlier: string[] = [];
  #counter = 0;
  #key: KeyObject;
  readonly #channel: Buffer;
  readonly #psk: Buffer;
  readonly #opener: ServerPacketOpener;
  #socket!: Socket;
  readonly #waiter = new Waiter();

  private constructor(
    readonly family: Family,
    psk: Buffer,
    /** The loopback address it binds to (127.0.0.1 or ::1 by default). */
    readonly address: string = family === 'ipv6' ? '::1' : '127.0.0.1',
  ) {
    this.#psk = psk;
    this.#opener = new ServerPacketOpener(psk, () => [this.saltHex, ...this.#earlier]);
    this.#channel = deriveChannelId(psk);
    this.#key = deriveHeartbeatKey(psk, this.salt);
  }

  static async start(family: Family, psk: Buffer, address?: string): Promise<ScriptedPeer> {
    const peer = new ScriptedPeer(family, psk, address);
    await peer.#bind();
    return peer;
  }

  get endpoint(): Endpoint {
    const a = this.#socket.address();
    return { family: this.family, address: this.address, port: a.port };
  }

  get saltHex(): string {
    return this.salt.toString('hex');
  }

  async #bind(): Promise<void> {
    const socket = createSocket({ type: this.family === 'ipv6' ? 'udp6' : 'udp4', ipv6Only: this.family === 'ipv6' });
    await new Promise<void>((resolve) => socket.bind(0, this.address, resolve));
    socket.on('message', (datagram, rinfo) => this.#onMessage(datagram, { family: this.family, address: rinfo.address, port: rinfo.port }));
    this.#socket = socket;
  }

  /** Moves to a new local port, as a NAT whose mapping was flushed would. */
  async rebind(): Promise<void> {
    this.#socket.close();
    await this.#bind();
  }

  /** Starts a new peer session (as a restarted server would): new salt, new key, counter 0. */
  restart(): void {
    this.#earlier.unshift(this.saltHex);
    this.salt = randomBytes(SALT_BYTES);
    this.#key = deriveHeartbeatKey(this.#psk, this.salt);
    this.#counter = 0;
  }

  #onMessage(datagram: Buffer, from: Endpoint): void {
    const packet = this.#opener.open(datagram);
    if (!packet) return;
    const entry: Received = {
      ...packet,
      datagram,
      from,
      at: performance.now(),
    };
    this.received.push(entry);
    if (this.autoReply && entry.heartbeat) this.heartbeat(from, entry);
    this.#waiter.notify();
  }

  /** The latest heartbeat heard from the server (any server session). */
  lastHeartbeat(): Received | undefined {
    return this.received.findLast((r) => r.heartbeat !== null);
  }

  #send(type: PacketType, to: Endpoint, plaintext: Buffer, key = this.#key): Buffer {
    const datagram = Buffer.concat(seal(key, encodeHeader(type, this.#channel, this.salt, this.#counter++), plaintext));
    this.sendRaw(to, datagram);
    return datagram;
  }

  /**
   * The data key from this peer session to a server session: the one given (hex salt), or the
   * one whose heartbeat this peer heard last. DATA and CLOSE are bound to both ends.
   */
  #dataKey(receiver?: string): KeyObject {
    const salt = receiver ?? this.lastHeartbeat()?.header.salt;
    if (!salt) throw new Error('scripted peer: no server session heard yet to send DATA or CLOSE to');
    return deriveDataKey(this.#psk, this.salt, Buffer.from(salt, 'hex'));
  }

  sendRaw(to: Endpoint, datagram: Buffer): void {
    this.sent.push(datagram);
    this.#socket.send(datagram, to.port, to.address);
  }

  /** A heartbeat; `echo` answers a received heartbeat (the proof the server needs), none by default. */
  heartbeat(to: Endpoint, echo?: Received): Buffer {
    const now = performance.now();
    return this.#send(
      PacketType.HEARTBEAT,
      to,
      encodeHeartbeat({
        sentAt: now,
        echoSalt: echo ? echo.header.salt : null,
        echoSentAt: echo?.heartbeat?.sentAt ?? 0,
        echoDelayMs: echo ? now - echo.at : 0,
      }),
    );
  }

  /** DATA for the server session `receiver` (hex salt; default: the one heard last). */
  data(to: Endpoint, payload: Buffer, receiver?: string): Buffer {
    return this.#send(PacketType.DATA, to, payload, this.#dataKey(receiver));
  }

  close(to: Endpoint, receiver?: string): Buffer {
    return this.#send(PacketType.CLOSE, to, Buffer.alloc(0), this.#dataKey(receiver));
  }

  /** Resolves once `predicate` holds, re-checked after every datagram; bounded. */
  until(predicate: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
    return this.#waiter.until(predicate, timeoutMs, () => `scripted peer: ${what}`);
  }

  /** Received DATA payloads (those that authenticated). */
  dataReceived(): Buffer[] {
    return this.received.flatMap((r) => (r.header.type === PacketType.DATA && r.plaintext ? [r.plaintext] : []));
  }

  stop(): void {
    this.#socket.close();
  }
}
