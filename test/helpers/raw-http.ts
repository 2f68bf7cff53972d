/** Raw bytes to a server's TCP port: for requests no HTTP or WebSocket client would send. */
import { connect } from 'node:net';

/** Sends `bytes` to the server at `url` and resolves with everything it answered before closing. */
export function rawRequest(url: string, bytes: string): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let text = '';
    socket.on('data', (d) => (text += d.toString()));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
    socket.end(bytes);
  });
}
