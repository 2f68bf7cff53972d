/**
 * The baseline: the fastest relay a person would write by hand with `ws` and `node:dgram`.
 * No XState, no auth, no limits, no punching, no replay window, no status machinery.
 *
 *   node --import tsx test/bench/bare-relay.ts --mode plain|aead [--heartbeat-ms N]
 *
 * A client opens `ws://host:port/?id=N&peer=UDP_PORT&key=K` (key: 32 bytes base64url, aead
 * only). Every binary message becomes one datagram to 127.0.0.1:peer, tagged with the session
 * id N; a datagram with id N goes to the WebSocket of session N on this relay.
 * - plain: datagram = id (4, BE) | payload
 * - aead:  datagram = id (4, BE) | counter (8, BE) | AES-256-GCM(payload) | tag (16); the 12
 *          header bytes are the nonce and the additional data, one createCipheriv per datagram.
 *
 * With --heartbeat-ms (aead only), each session also does autoprox's upkeep by hand, the way a
 * person would: a per-session setInterval seals one 40-byte heartbeat to the peer every
 * interval, and each heartbeat that arrives is opened (and dropped). A heartbeat has the top bit
 * of its id set.
 *
 * It gets the same socket and WebSocket settings as autoprox (receive buffer, literal address
 * lookup, no permessage-deflate, frame limit), so the comparison measures autoprox's own work.
 * On connection it sends one `{"type":"status","status":"UDP_ESTABLISHED"}` text frame, so the
 * bench clients treat both kinds alike. It prints a `listening` JSON line like autoprox.
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { createSocket, type SocketOptions } from 'node:dgram';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { WebSocketServer, type WebSocket } from 'ws';

/** The same socket buffer sizes as autoprox's (src/io/udp-socket.actor.ts). */
const UDP_RECV_BUFFER_BYTES = 4 * 1024 * 1024;
const UDP_SEND_BUFFER_BYTES = 1024 * 1024;
/** The same WebSocket frame limit as autoprox at --max-payload 1200 (64 KiB). */
const WS_MAX_PAYLOAD_BYTES = 64 * 1024;
const ID_BYTES = 4;
const HEADER_BYTES = ID_BYTES + 8; // id + counter = the 96-bit GCM nonce
const TAG_BYTES = 16;
const LOOPBACK = '127.0.0.1';
/** Bound like autoprox's IPv4 socket by default (`--udp-bind4 0.0.0.0`): the kernel picks the source address per send. */
const UDP_BIND_ADDRESS = '0.0.0.0';

const { values } = parseArgs({ options: { mode: { type: 'string', default: 'plain' }, 'heartbeat-ms': { type: 'string', default: '0' } } });
const aead = values.mode === 'aead';
if (values.mode !== 'plain' && values.mode !== 'aead') throw new Error('--mode must be plain or aead');
const heartbeatMs = Number(values['heartbeat-ms']);
if (!Number.isInteger(heartbeatMs) || heartbeatMs < 0 || (heartbeatMs > 0 && !aead)) throw new Error('--heartbeat-ms: a whole number of ms, aead only');
/** The id bit that marks a heartbeat, and a heartbeat's plaintext size (autoprox's). */
const HEARTBEAT_FLAG = 0x8000_0000;
const HEARTBEAT_BYTES = 40;

interface Session {
  ws: WebSocket;
  id: number;
  peerPort: number;
  key: KeyObject | null;
  counter: number;
  heartbeat: NodeJS.Timeout | null;
}

const sessions = new Map<number, Session>();
const drops = { unknownId: 0, authFailed: 0, short: 0 };
let heartbeatsIn = 0;

const udp = createSocket({
  type: 'udp4',
  lookup: ((address: string, family: number, callback: (err: null, address: string, family: number) => void) =>
    callback(null, address, family)) as SocketOptions['lookup'],
});

function sealAndSend(session: Session, payload: Buffer, flag = 0): void {
  if (!aead) {
    const header = Buffer.allocUnsafe(ID_BYTES);
    header.writeUInt32BE(session.id, 0);
    udp.send([header, payload], session.peerPort, LOOPBACK);
    return;
  }
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32BE((session.id | flag) >>> 0, 0);
  const counter = session.counter++;
  header.writeUInt32BE(Math.floor(counter / 0x1_0000_0000), 4);
  header.writeUInt32BE(counter >>> 0, 8);
  const cipher = createCipheriv('aes-256-gcm', session.key!, header);
  cipher.setAAD(header);
  const body = cipher.update(payload);
  cipher.final();
  udp.send([header, body, cipher.getAuthTag()], session.peerPort, LOOPBACK);
}

udp.on('message', (datagram) => {
  if (datagram.length < (aead ? HEADER_BYTES + TAG_BYTES : ID_BYTES)) {
    drops.short++;
    return;
  }
  const word = datagram.readUInt32BE(0);
  const heartbeat = (word & HEARTBEAT_FLAG) !== 0;
  const session = sessions.get(heartbeat ? (word & ~HEARTBEAT_FLAG) >>> 0 : word);
  if (!session) {
    drops.unknownId++;
    return;
  }
  if (!aead) {
    session.ws.send(datagram.subarray(ID_BYTES));
    return;
  }
  const header = datagram.subarray(0, HEADER_BYTES);
  const tagStart = datagram.length - TAG_BYTES;
  const decipher = createDecipheriv('aes-256-gcm', session.key!, header);
  decipher.setAAD(header);
  decipher.setAuthTag(datagram.subarray(tagStart));
  const payload = decipher.update(datagram.subarray(HEADER_BYTES, tagStart));
  try {
    decipher.final();
  } catch {
    drops.authFailed++;
    return;
  }
  if (heartbeat) {
    heartbeatsIn++;
    return;
  }
  session.ws.send(payload);
});

const wss = new WebSocketServer({ noServer: true, maxPayload: WS_MAX_PAYLOAD_BYTES, perMessageDeflate: false });
const http = createServer((_req, res) => res.writeHead(404).end());
http.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url ?? '/', 'http://relay');
  const id = Number(url.searchParams.get('id'));
  const peerPort = Number(url.searchParams.get('peer'));
  const key = url.searchParams.get('key');
  if (!Number.isInteger(id) || !Number.isInteger(peerPort) || (aead && !key)) {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    const session: Session = { ws, id, peerPort, key: aead ? createSecretKey(Buffer.from(key!, 'base64url')) : null, counter: 0, heartbeat: null };
    sessions.set(id, session);
    if (heartbeatMs > 0) {
      const plaintext = Buffer.alloc(HEARTBEAT_BYTES);
      session.heartbeat = setInterval(() => sealAndSend(session, plaintext, HEARTBEAT_FLAG), heartbeatMs);
    }
    ws.send(JSON.stringify({ type: 'status', status: 'UDP_ESTABLISHED', session: String(id) }));
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) sealAndSend(session, data);
    });
    ws.on('close', () => {
      if (session.heartbeat) clearInterval(session.heartbeat);
      if (sessions.get(id) === session) sessions.delete(id);
    });
    ws.on('error', () => {});
  });
});

udp.bind(0, UDP_BIND_ADDRESS, () => {
  udp.setRecvBufferSize(UDP_RECV_BUFFER_BYTES);
  udp.setSendBufferSize(UDP_SEND_BUFFER_BYTES);
  http.listen(0, LOOPBACK, () => {
    const { port } = http.address() as AddressInfo;
    process.stdout.write(`${JSON.stringify({ msg: 'listening', url: `http://${LOOPBACK}:${port}`, udp: { ipv4: udp.address().port } })}\n`);
  });
});

process.on('SIGTERM', () => {
  process.stdout.write(`${JSON.stringify({ msg: 'drops', drops, heartbeatsIn })}\n`);
  process.exit(0);
});
