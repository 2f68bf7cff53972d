/**
 * Regression (found by review): "host ... at most 16" bounds the *hosts*, but a DNS name expands to every A/AAAA
 * record with no cap, and every candidate gets a heartbeat every --punch-ms. A token holder whose
 * zone lists many addresses (its own zone: no peer, no key needed) makes one session send far
 * more than the README's "one heartbeat per punch interval per candidate" with "at most 16"
 * candidates suggests: up to --udp-out-per-s (60,000/s) per session, at addresses of its choice.
 * The only fake here is DNS (an attacker-controlled zone answering 500 A records).
 */
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/token.js';
import { resolveTargets } from '../../src/io/resolve-targets.js';
import { hs256Verifier } from '../../src/auth/verifier.js';
import { resolveConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startServer } from '../../src/server.js';
import { TEST_SECRET } from '../helpers/server-process.js';
import { sleep, TestClient } from '../helpers/ws-client.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('one host name with 500 records is punched as 16 candidates at most', async () => {
  const zone = Array.from({ length: 500 }, (_, i) => ({ address: `127.1.${i >> 8}.${(i & 0xff) + 1}`, family: 4 }));
  const config = resolveConfig({ port: '0', 'udp-port': '0', 'log-level': 'silent', 'jwt-secret': TEST_SECRET, 'punch-ms': '200' });
  const handle = await startServer(config, {
    log: createLogger('silent'),
    verifier: hs256Verifier(TEST_SECRET),
    // the real resolver, with an attacker's zone as DNS
    resolveTargets: (input) => resolveTargets(input, async () => zone),
  });
  const server = { ...handle, wsUrl: `${handle.url.replace(/^http/, 'ws')}/v0/ws/proxy` };
  cleanups.push(() => server.close());
  const victim = createSocket('udp4');
  cleanups.push(() => victim.close());
  await new Promise<void>((r) => victim.bind(0, '0.0.0.0', r));
  let received = 0;
  victim.on('message', () => received++);
  const token = await mintToken(TEST_SECRET, 'dns', 600);
  const c = new TestClient(server.wsUrl, { hosts: ['flood.attacker.example'], port: victim.address().port, key: randomBytes(32).toString('base64url'), token });
  cleanups.push(() => c.close());
  await c.waitForStatus('UDP_WAITING');
  await sleep(1000);
  // 16 candidates × 5 punches/s would be 80/s at most.
  expect(received).toBeLessThanOrEqual(16 * 6);
  // ... and the punches did go out: the session holds the 16 it may, and each got at least one.
  expect(server.sessions.get(c.statuses[0]!.session)!.candidates).toHaveLength(16);
  expect(received).toBeGreaterThanOrEqual(16);
});
