/**
 * Regression (issue 10, internal review): a UDP socket that failed after it was bound was only
 * logged, while the supervisor stayed `running` and /readyz said ready: a load balancer kept
 * sending clients to a server that could no longer reach any peer on that family. Now the
 * socket is closed, the server says so in its log (error) and on /readyz (503 udp_failed), and
 * counts it. The sockets are the server's real ones: one is closed under it, the other gets an
 * error event.
 */
import { afterEach, expect, it } from 'vitest';
import { startInProcess } from '../helpers/in-process.js';
import { captureLogs } from '../helpers/logs.js';
import { httpGet, metric } from '../helpers/metrics.js';
import { eventually } from '../helpers/waiter.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('a socket closed under the server, or failing with an error: /readyz 503, an error log line, a metric', async () => {
  const { log, lines } = captureLogs();
  const server = await startInProcess({}, { log });
  cleanups.push(() => server.close());
  expect((await httpGet(`${server.url}/readyz`)).status).toBe(200);

  server.switchboard.socketOf('ipv4')!.close();
  await eventually(() => lines.some((l) => l.level === 'error' && l.family === 'ipv4'), 'the error log line');
  const ready = await httpGet(`${server.url}/readyz`);
  expect(ready).toMatchObject({ status: 503, body: '{"status":"udp_failed"}' });
  const line = lines.find((l) => l.level === 'error' && l.family === 'ipv4')!;
  expect(line.msg).toContain('the UDP ipv4 socket failed and is closed');
  expect(line.msg).toContain('restart the server');
  expect(server.switchboard.socketOf('ipv4')).toBeUndefined(); // nothing sends into a dead socket

  const v6 = server.switchboard.socketOf('ipv6');
  if (v6) {
    v6.emit('error', Object.assign(new Error('recvmsg failed'), { code: 'EIO' }));
    await eventually(() => lines.some((l) => l.level === 'error' && l.family === 'ipv6' && l.code === 'EIO'), 'the ipv6 error line');
    expect(server.switchboard.socketOf('ipv6')).toBeUndefined();
  }
  const text = (await httpGet(`${server.url}/metrics`)).body;
  expect(metric(text, 'autoprox_udp_socket_errors_total{family="ipv4"}')).toBe(1);
  if (v6) expect(metric(text, 'autoprox_udp_socket_errors_total{family="ipv6"}')).toBe(1);
  // And the server still shuts down cleanly.
  await server.close();
  cleanups.pop();
});
