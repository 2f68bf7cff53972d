/**
 * An on-path attacker between two servers on loopback: two UDP sockets, one facing each server,
 * forwarding every datagram to the other side, recording what it forwards, able to cut the path
 * and to replay recordings. Clients of server A name `towardB` as their peer (A sees its peer
 * there), clients of server B name `towardA`.
 */
import { createSocket, type Socket } from 'node:dgram';

export interface TapEnd {
  address: string;
  port: number;
}

async function bind(): Promise<Socket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return socket;
}

export class UdpTap {
  /** Datagrams server B sent toward server A, as they crossed the tap. */
  readonly fromB: Buffer[] = [];
  readonly fromA: Buffer[] = [];
  /** While true, nothing crosses (both directions are dropped, still recorded). */
  cut = false;

  private constructor(
    private readonly faceA: Socket,
    private readonly faceB: Socket,
    private readonly a: TapEnd,
    private readonly b: TapEnd,
  ) {
    faceA.on('message', (datagram) => {
      this.fromA.push(datagram);
      if (!this.cut) faceB.send(datagram, b.port, b.address);
    });
    faceB.on('message', (datagram) => {
      this.fromB.push(datagram);
      if (!this.cut) faceA.send(datagram, a.port, a.address);
    });
  }

  /** @param a server A's UDP endpoint @param b server B's */
  static async start(a: TapEnd, b: TapEnd): Promise<UdpTap> {
    return new UdpTap(await bind(), await bind(), a, b);
  }

  /** What server A's clients name as their peer (the port A talks to). */
  get towardB(): number {
    return this.faceA.address().port;
  }

  /** What server B's clients name as their peer. */
  get towardA(): number {
    return this.faceB.address().port;
  }

  /** Sends recorded datagrams to server A again, byte for byte, from where B's packets come from. */
  replayToA(datagrams: Buffer[]): void {
    for (const d of datagrams) this.faceA.send(d, this.a.port, this.a.address);
  }

  stop(): void {
    this.faceA.close();
    this.faceB.close();
  }
}
