/** Upgrade attempts through a real `ws` client that report a refusal instead of throwing. */
import WebSocket from 'ws';

export interface Refused {
  status: number;
  body: { error: { code: string; message: string } };
  headers: Record<string, string | string[] | undefined>;
}

/** Resolves with the refusal, or with 'open' (the socket is closed again) when the upgrade succeeded. */
export function attempt(url: string, headers: Record<string, string> = {}, localAddress?: string): Promise<Refused | 'open'> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, ...(localAddress ? { localAddress } : {}) });
    ws.on('open', () => {
      ws.close();
      resolve('open');
    });
    ws.on('error', (err) => reject(err));
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => {
        ws.removeAllListeners('error');
        ws.on('error', () => {});
        resolve({ status: res.statusCode!, body: JSON.parse(text), headers: res.headers });
      });
    });
  });
}

/** A refusal, or a failed test when the upgrade succeeded. */
export async function refusal(url: string, headers: Record<string, string> = {}, localAddress?: string): Promise<Refused> {
  const r = await attempt(url, headers, localAddress);
  if (r === 'open') throw new Error(`expected a refusal, the upgrade of ${url} succeeded`);
  return r;
}

export function proxyQuery(params: Record<string, string | string[]>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const one of [v].flat()) search.append(k, one);
  return `/v0/ws/proxy?${search}`;
}

export const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
