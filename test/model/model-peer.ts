/**
 * The peer side of a model path: a real autoprox wire-protocol speaker on loopback UDP that can
 * play several peer sessions (salts) from several endpoints at once, each under test control.
 *
 * Like test/helpers/scripted-peer.ts, but the model needs what one ScriptedPeer cannot do: the
 * same peer session on both families and on a rebound port (as one autoprox server sends from
 * its IPv6 and IPv4 sockets under one salt), and an older session still talking after a newer
 * one started. Every datagram the server sends is recorded with the endpoint it arrived on.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import type { Endpoint, Family } from '../../machines/endpoint.js';
import { deriveChannelId, deriveDataKey, deriveHeartbeatKey, KeySchedule, seal } from '../../src/protocol/crypto.js';
import { admissionKey, bindProof, sign, verifyMac } from '../../src/protocol/relay-auth.js';
import { COOKIE_BYTES, decodeRelayMessage, END_NONCE_BYTES, encodeRelayMessage, relayTypeOf, RelayType, type BoundEntry } from '../../src/protocol/relay-packet.js';
import { encodeHeartbeat, type Heartbeat } from '../../src/protocol/heartbeat.js';
import { encodeHeader, PacketType, SALT_BYTES } from '../../src/protocol/packet.js';
import { ServerPacketOpener } from '../helpers/server-packets.js';
import { Waiter } from '../helpers/waiter.js';
import { MODEL_ENDPOINTS, RELAY, RELAY_SECRET, type EndpointName } from './session-model.js';

/** A datagram from the server, as the peer saw it. */
export interface FromServer {
  type: PacketType;
  /** The server session's salt, hex. */
  salt: string;
  /** Authenticated plaintext, or null when it did not open. */
  plaintext: Buffer | null;
  heartbeat: Heartbeat | null;
  /** The model endpoint (peer socket) it arrived on. */
  on: EndpointName;
  at: number;
}

interface PeerSession {
  salt: Buffer;
  key: KeyObject;
  counter: number;
}

const BIND_ATTEMPTS = 20;

/**
 * The relay socket's side of the relay protocol, as far as the model needs it: it answers the
 * server's binding (a CHALLENGE for each BIND_REQUEST, a BOUND for each BIND) and, when told,
 * shows the server's end other ends of the channel, paired, with right PSK proofs: the peer
 * servers' sources as a relay would see them (`relayPeers`).
 */
interface ModelRelay {
  readonly admissionKey: Buffer;
  readonly bindKey: Buffer;
  readonly cookie: Buffer;
  /** The server's end: its nonce and source, once it sent a BIND. */
  server: { nonce: Buffer; from: Endpoint } | null;
  /** The ends shown paired to the server's, with their nonces. */
  ends: BoundEntry[];
}

function bindSocket(family: Family, port: number): Promise<Socket> {
  const socket = createSocket({ type: family === 'ipv6' ? 'udp6' : 'udp4', ipv6Only: family === 'ipv6' });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, family === 'ipv6' ? '::1' : '127.0.0.1', () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

export class ModelPeer {
  readonly received: FromServer[] = [];
  readonly #psk: Buffer;
  readonly #channel: Buffer;
  readonly #sockets = new Map<EndpointName, Socket>();
  readonly #sessions = new Map<string, PeerSession>();
  readonly #opener: ServerPacketOpener;
  readonly #waiter = new Waiter();
  readonly #relay: ModelRelay;

  private constructor(psk: Buffer) {
    this.#psk = psk;
    this.#opener = new ServerPacketOpener(psk, () => [...this.#sessions.values()].map((s) => s.salt.toString('hex')));
    this.#channel = deriveChannelId(psk);
    this.#relay = {
      admissionKey: admissionKey(RELAY_SECRET),
      bindKey: new KeySchedule(psk).relayBindKey(),
      cookie: randomBytes(COOKIE_BYTES),
      server: null,
      ends: [],
    };
  }

  /** Binds the home sockets: one port number on IPv4 and IPv6 (the client names it once). */
  static async start(psk: Buffer): Promise<ModelPeer> {
    const peer = new ModelPeer(psk);
    for (let attempt = 0; ; attempt++) {
      const v4 = await bindSocket('ipv4', 0);
      try {
        const v6 = await bindSocket('ipv6', v4.address().port);
        peer.#listen('home4', v4);
        peer.#listen('home6', v6);
        return peer;
      } catch (err) {
        v4.close();
        if (attempt >= BIND_ATTEMPTS) throw err;
      }
    }
  }

  /** The pre-shared key (the client gives it to the server). */
  get psk(): Buffer {
    return this.#psk;
  }

  /** The model name of a peer session from its real salt (hex), or null. */
  sessionName(hex: string): string | null {
    for (const [name, s] of this.#sessions) if (s.salt.toString('hex') === hex) return name;
    return null;
  }

  /** The port the client names: home on both families. */
  get port(): number {
    return this.#sockets.get('home4')!.address().port;
  }

  /** The real endpoint of a model endpoint (bound on first use for the rebinding ports). */
  async endpoint(name: EndpointName): Promise<Endpoint> {
    const socket = this.#sockets.get(name) ?? this.#listen(name, await bindSocket(MODEL_ENDPOINTS[name].family, 0));
    const family = MODEL_ENDPOINTS[name].family;
    return { family, address: family === 'ipv6' ? '::1' : '127.0.0.1', port: socket.address().port };
  }

  /** The real endpoint of a model endpoint that is already bound, or null. */
  boundEndpoint(name: EndpointName): Endpoint | null {
    const socket = this.#sockets.get(name);
    if (!socket) return null;
    const family = MODEL_ENDPOINTS[name].family;
    return { family, address: family === 'ipv6' ? '::1' : '127.0.0.1', port: socket.address().port };
  }

  #listen(name: EndpointName, socket: Socket): Socket {
    socket.on('message', (datagram, rinfo) => {
      if (name === RELAY && relayTypeOf(datagram) !== null) {
        const family: Family = rinfo.family === 'IPv6' ? 'ipv6' : 'ipv4';
        this.#onRelayControl(datagram, { family, address: rinfo.address, port: rinfo.port });
      } else this.#onMessage(name, datagram);
    });
    this.#sockets.set(name, socket);
    return socket;
  }

  #session(name: string): PeerSession {
    let session = this.#sessions.get(name);
    if (!session) {
      const salt = randomBytes(SALT_BYTES);
      session = { salt, key: deriveHeartbeatKey(this.#psk, salt), counter: 0 };
      this.#sessions.set(name, session);
    }
    return session;
  }

  /** The real salt (hex) of a model peer session; the session starts on first use. */
  saltHex(name: string): string {
    return this.#session(name).salt.toString('hex');
  }


  #onRelayControl(datagram: Buffer, from: Endpoint): void {
    const r = this.#relay;
    const message = decodeRelayMessage(datagram);
    if (!message || !message.channel.equals(this.#channel) || !verifyMac(r.admissionKey, datagram)) return;
    if (message.type === RelayType.BIND_REQUEST) {
      this.#relaySend({ type: RelayType.CHALLENGE, channel: this.#channel, cookie: r.cookie, observed: from }, from);
    } else if (message.type === RelayType.BIND && message.cookie.equals(r.cookie)) {
      r.server = { nonce: Buffer.from(message.nonce), from };
      this.#relaySend({ type: RelayType.BOUND, channel: this.#channel, nonce: r.server.nonce, ends: r.ends }, from);
      this.#waiter.notify();
    }
  }

  #relaySend(message: Parameters<typeof encodeRelayMessage>[0], to: Endpoint): void {
    this.#sockets.get(RELAY)!.send(sign(this.#relay.admissionKey, encodeRelayMessage(message)), to.port, to.address);
  }

  /** The server's channel end is bound at the model relay (it sent a BIND). */
  get relayBound(): boolean {
    return this.#relay.server !== null;
  }

  /**
   * Shows the server's end at the relay `sources` as the ends paired with it (a BOUND, as the
   * relay sends on each refresh), each with a right PSK proof for its source. When the server
   * already has exactly these, it is first shown none (which tells its sessions nothing), so
   * that it sees a change.
   */
  relayPeers(sources: Endpoint[]): void {
    const r = this.#relay;
    if (!r.server) throw new Error('model relay: no BIND from the server yet');
    const same = r.ends.length === sources.length && r.ends.every((e, i) => e.source.port === sources[i]!.port && e.source.address === sources[i]!.address);
    if (same) this.#relaySend({ type: RelayType.BOUND, channel: this.#channel, nonce: r.server.nonce, ends: [] }, r.server.from);
    r.ends = sources.map((source) => {
      const nonce = randomBytes(END_NONCE_BYTES);
      return { nonce, source: { ...source }, proof: bindProof(r.bindKey, this.#channel, source, nonce), paired: true };
    });
    this.#relaySend({ type: RelayType.BOUND, channel: this.#channel, nonce: r.server.nonce, ends: r.ends }, r.server.from);
  }

  #onMessage(on: EndpointName, datagram: Buffer): void {
    const packet = this.#opener.open(datagram);
    if (!packet) return;
    this.received.push({
      type: packet.header.type,
      salt: packet.header.salt,
      plaintext: packet.plaintext,
      heartbeat: packet.heartbeat,
      on,
      at: performance.now(),
    });
    this.#waiter.notify();
  }

  #send(session: string, type: PacketType, from: EndpointName, to: Endpoint, plaintext: Buffer, key?: KeyObject): void {
    const s = this.#session(session);
    const socket = this.#sockets.get(from);
    if (!socket) throw new Error(`model peer: endpoint ${from} is not bound`);
    const datagram = Buffer.concat(seal(key ?? s.key, encodeHeader(type, this.#channel, s.salt, s.counter++), plaintext));
    socket.send(datagram, to.port, to.address);
  }

  /**
   * A heartbeat of peer session `session` from `from`, answering `echo` (a heartbeat received
   * from the server) or nobody. Returns its sentAt, which the server reports back to the machine.
   */
  heartbeat(session: string, from: EndpointName, to: Endpoint, echo: FromServer | null): number {
    const now = performance.now();
    this.#send(
      session,
      PacketType.HEARTBEAT,
      from,
      to,
      encodeHeartbeat({
        sentAt: now,
        echoSalt: echo ? echo.salt : null,
        echoSentAt: echo?.heartbeat?.sentAt ?? 0,
        echoDelayMs: echo ? Math.max(0, now - echo.at) : 0,
      }),
    );
    return now;
  }

  /** A CLOSE of peer session `session`, sealed for the server session heard last (CLOSE is bound to both ends). */
  close(session: string, from: EndpointName, to: Endpoint): void {
    const server = this.heartbeats().at(-1);
    if (!server) throw new Error('model peer: CLOSE before any server heartbeat (nobody to say it to)');
    const key = deriveDataKey(this.#psk, this.#session(session).salt, Buffer.from(server.salt, 'hex'));
    this.#send(session, PacketType.CLOSE, from, to, Buffer.alloc(0), key);
  }

  heartbeats(): FromServer[] {
    return this.received.filter((r) => r.heartbeat !== null);
  }

  /** Resolves once `predicate` holds, re-checked after every datagram; bounded. */
  until(predicate: () => boolean, what: string, timeoutMs: number): Promise<void> {
    return this.#waiter.until(predicate, timeoutMs, () => `model peer: ${what}`);
  }

  stop(): void {
    for (const socket of this.#sockets.values()) socket.close();
    this.#sockets.clear();
  }
}
