/**
 * A server's side of one channel at one relay (README, "The relay protocol"): asks a cookie,
 * binds with a PSK proof for the source the relay saw, checks the proofs of the channel's other
 * ends and approves the right ones, and keeps the binding fresh. IO handed in (a send function
 * and a clock), so it runs the same under test.
 *
 * Bound and paired, the relay forwards this socket's datagrams of the channel to the paired
 * ends, and theirs here. Nothing here seals or opens: the sessions' packets are end to end.
 */
import { randomBytes } from 'node:crypto';
import type { Clock, Timer } from '../clock.js';
import { checkBindProof, bindProof, sign, verifyMac } from '../protocol/relay-auth.js';
import { decodeRelayMessage, encodeRelayMessage, END_NONCE_BYTES, RelayType, type Endpoint, type RelayMessage } from '../protocol/relay-packet.js';

/** A BIND_REQUEST or BIND with no answer is sent again after this long, doubling (ms). */
export const BIND_RETRY_MS = 250;
export const BIND_RETRY_MAX_MS = 4_000;
/** A bound binding asks a fresh cookie and binds again this often (ms): it keeps the relay's end alive and learns of new ends. */
export const BIND_REFRESH_MS = 10_000;

export type BinderState = 'binding' | 'bound' | 'paired';

export interface RelayBinderOptions {
  relay: Endpoint;
  channel: Buffer;
  /** KeySchedule.relayBindKey() of the channel's PSK. */
  bindKey: Buffer;
  /** admissionKey(relay secret). */
  admissionKey: Buffer;
  send(bytes: Buffer, to: Endpoint): void;
  clock: Clock;
  /** Told whenever the state or the paired ends change. */
  onChange?(binder: RelayBinder): void;
  random?(bytes: number): Buffer;
}

export class RelayBinder {
  readonly relay: Endpoint;
  readonly #o: RelayBinderOptions;
  readonly #nonce: Buffer;
  #state: BinderState = 'binding';
  #cookie: Buffer | null = null;
  /** This socket as the relay sees it (a public endpoint, like STUN's answer). */
  #observed: Endpoint | null = null;
  #paired: Endpoint[] = [];
  #retryMs = BIND_RETRY_MS;
  #timer: Timer | null = null;
  #stopped = false;
  #rejected = 0;

  constructor(options: RelayBinderOptions) {
    this.#o = options;
    this.relay = options.relay;
    this.#nonce = (options.random ?? randomBytes)(END_NONCE_BYTES);
  }

  /** Answers of this channel that did not verify under the relay secret (a relay with another one). */
  get rejected(): number {
    return this.#rejected;
  }

  get state(): BinderState {
    return this.#state;
  }

  get observed(): Endpoint | null {
    return this.#observed;
  }

  /** The channel's other ends the relay forwards between this one and (their sources). */
  get paired(): readonly Endpoint[] {
    return this.#paired;
  }

  start(): void {
    this.#request();
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = null;
  }

  /** A relay control message from the relay's endpoint. Returns false when it is not for this binder. */
  handle(datagram: Buffer): boolean {
    if (this.#stopped) return false;
    const message = decodeRelayMessage(datagram);
    if (!message || !message.channel.equals(this.#o.channel)) return false;
    if (!verifyMac(this.#o.admissionKey, datagram)) {
      // A relay with another secret (or a forgery): counted, so the server can say which.
      this.#rejected++;
      return true;
    }
    if (message.type === RelayType.CHALLENGE) this.#onChallenge(message);
    else if (message.type === RelayType.BOUND) this.#onBound(message);
    else return false;
    return true;
  }

  #request(): void {
    if (this.#stopped) return;
    this.#o.send(sign(this.#o.admissionKey, encodeRelayMessage({ type: RelayType.BIND_REQUEST, channel: this.#o.channel })), this.relay);
    this.#arm(this.#retryMs, () => this.#request());
    this.#retryMs = Math.min(BIND_RETRY_MAX_MS, this.#retryMs * 2);
  }

  #onChallenge(message: Extract<RelayMessage, { type: 17 }>): void {
    this.#cookie = Buffer.from(message.cookie);
    this.#observed = { ...message.observed };
    const proof = bindProof(this.#o.bindKey, this.#o.channel, message.observed, this.#nonce);
    this.#o.send(sign(this.#o.admissionKey, encodeRelayMessage({ type: RelayType.BIND, channel: this.#o.channel, cookie: this.#cookie, nonce: this.#nonce, proof })), this.relay);
  }

  #onBound(message: Extract<RelayMessage, { type: 19 }>): void {
    if (!message.nonce.equals(this.#nonce) || !this.#cookie) return;
    const paired: Endpoint[] = [];
    for (const end of message.ends) {
      if (!checkBindProof(this.#o.bindKey, this.#o.channel, end.source, end.nonce, end.proof)) continue; // not a holder of the PSK, or a proof from elsewhere
      if (end.paired) paired.push({ ...end.source });
      else this.#o.send(sign(this.#o.admissionKey, encodeRelayMessage({ type: RelayType.APPROVE, channel: this.#o.channel, cookie: this.#cookie, nonce: this.#nonce, peer: end.nonce })), this.relay);
    }
    const state: BinderState = paired.length > 0 ? 'paired' : 'bound';
    const changed = state !== this.#state || paired.length !== this.#paired.length || paired.some((p, i) => p.address !== this.#paired[i]!.address || p.port !== this.#paired[i]!.port);
    this.#state = state;
    this.#paired = paired;
    this.#retryMs = BIND_RETRY_MS;
    this.#arm(BIND_REFRESH_MS, () => this.#request());
    if (changed) this.#o.onChange?.(this);
  }

  #arm(ms: number, fn: () => void): void {
    this.#timer?.cancel();
    this.#timer = this.#o.clock.after(ms, fn);
  }
}
