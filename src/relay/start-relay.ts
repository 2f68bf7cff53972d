/**
 * `autoprox relay`, wired: the Relay, its sockets, and an HTTP server for /healthz, /readyz and
 * /metrics. The relay keeps nothing on disk and shares nothing with other relays.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { systemClock, type Clock } from '../clock.js';
import { StartError } from '../errors.js';
import type { Logger } from '../log.js';
import { admissionKey } from '../protocol/relay-auth.js';
import { Relay } from './relay.js';
import type { RelayConfig } from './relay-config.js';
import { relayMetrics } from './relay-metrics.js';
import { bindRelaySockets } from './relay-sockets.js';

export interface RelayHandle {
  /** http://host:port of /healthz, /readyz, /metrics. */
  url: string;
  udp: { ipv4: number | null; ipv6: number | null };
  relay: Relay;
  close(): Promise<void>;
}

export async function startRelay(config: RelayConfig & { relaySecret: string }, deps: { log: Logger; clock?: Clock }): Promise<RelayHandle> {
  const relay = new Relay({
    admissionKey: admissionKey(config.relaySecret),
    limits: {
      maxBindings: config.maxBindings,
      maxBindingsPerSource: config.maxBindingsPerSource,
      datagramsPerS: config.bindingDatagramsPerS,
      bytesPerS: config.bindingBytesPerS,
      idleMs: config.idleMs,
    },
    unproven: { perSourcePerS: config.unprovenPerSourcePerS, totalPerS: config.unprovenTotalPerS },
    clock: deps.clock ?? systemClock,
    log: deps.log,
  });
  let sockets;
  try {
    sockets = await bindRelaySockets(relay, { port: config.udpPort, bind4: config.udpBind4, bind6: config.udpBind6, ipv6: config.ipv6 }, deps.log);
  } catch (err) {
    relay.stop();
    throw err;
  }
  const registry = relayMetrics(relay);
  let draining = false;
  const http = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: { code: 'method_not_allowed', message: 'use GET' } });
    if (path === '/healthz') return json(200, { status: 'ok' });
    if (path === '/readyz') return draining ? json(503, { status: 'draining' }) : json(200, { status: 'ready', udp: sockets.ports, bindings: relay.table.ends });
    if (path === '/metrics') {
      void registry.metrics().then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text));
      return;
    }
    json(404, { error: { code: 'not_found', message: 'the relay serves /healthz, /readyz and /metrics' } });
  });
  http.headersTimeout = 10_000;
  http.requestTimeout = 10_000;
  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', (err: NodeJS.ErrnoException) =>
        reject(new StartError(`HTTP listen on ${config.host}:${config.port} failed: ${err.code ?? err.message}${err.code === 'EADDRINUSE' ? ' (another program uses that port: give another --port, or 0 for any free port)' : ''}`, { listener: 'http', action: `HTTP listen on ${config.host}:${config.port}`, port: config.port, errno: err.code ?? 'EUNKNOWN' })),
      );
      http.listen(config.port, config.host, () => resolve());
    });
  } catch (err) {
    await sockets.close();
    relay.stop();
    throw err;
  }
  const address = http.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    udp: sockets.ports,
    relay,
    close: async () => {
      draining = true;
      relay.stop();
      await sockets.close();
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
    },
  };
}
