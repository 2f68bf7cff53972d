/**
 * `autoprox netcheck` as a user runs it (the built CLI, a child process) against STUN servers on
 * loopback: the in-test responder at two addresses, a per-destination mapping, a relay, nobody
 * answering, and coturn.
 */
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { coturnAvailable, coturnRequired, startCoturn, type Coturn } from '../helpers/coturn.js';
import { assertBuilt, CLI } from '../helpers/server-process.js';
import { startStunResponder, type StunResponder } from '../helpers/stun-responder.js';

const responders: StunResponder[] = [];
let coturn: Coturn | null = null;
afterEach(async () => {
  await Promise.all(responders.splice(0).map((r) => r.close()));
  await coturn?.stop();
  coturn = null;
});

async function responder(address: string): Promise<StunResponder> {
  const r = await startStunResponder(address);
  responders.push(r);
  return r;
}

/** Runs the CLI without blocking this process (the responders answer from here). */
function netcheck(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string; ms: number }> {
  assertBuilt();
  const started = Date.now();
  const proc = spawn(process.execPath, [CLI, 'netcheck', ...args], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => proc.once('close', (status) => resolve({ status, stdout, stderr, ms: Date.now() - started })));
}

interface Report {
  ipv4: string | null;
  ipv6: string | null;
  nat: string;
  relay: string | null;
  servers: Array<{ server: string; kind: string; family: string; address: string | null; mapped: string | null; rttMs: number | null; error: string | null }>;
}

describe('autoprox netcheck', () => {
  it('two servers at different addresses seeing one endpoint: its endpoint per family, endpoint-independent, RTT per server; exit 0', async () => {
    const a = await responder('127.0.0.1');
    const b = await responder('127.0.0.2');
    const six = await responder('::1');
    const text = await netcheck('--stun', a.text, '--stun', b.text, '--stun', six.text);
    expect(text.status).toBe(0);
    expect(text.stderr).toBe('');
    expect(text.stdout).toMatch(/^autoprox netcheck: 3 of 3 server\(s\) answered/);
    expect(text.stdout).toMatch(/IPv4 endpoint: {2}127\.0\.0\.1:\d+\n/);
    expect(text.stdout).toMatch(/IPv6 endpoint: {2}\[::1\]:\d+\n/);
    expect(text.stdout).toContain('NAT mapping:    endpoint-independent');
    expect(text.stdout).toMatch(new RegExp(`${a.text.replace(/\./g, '\\.')} +stun +ipv4 +127\\.0\\.0\\.1:\\d+ +\\d+\\.\\d ms`));

    const json = await netcheck('--json', '--stun', a.text, '--stun', b.text);
    expect(json.status).toBe(0);
    const report = JSON.parse(json.stdout) as Report;
    expect(report).toMatchObject({ nat: 'endpoint-independent', relay: null });
    expect(report.ipv4).toMatch(/^127\.0\.0\.1:\d+$/);
    const v4 = report.servers.filter((s) => s.family === 'ipv4');
    expect(v4.map((s) => [s.server, s.kind, s.mapped, s.error])).toEqual([
      [a.text, 'stun', report.ipv4, null],
      [b.text, 'stun', report.ipv4, null],
    ]);
    for (const s of v4) expect(s.rttMs).toBeGreaterThanOrEqual(0);
  });

  it('a mapping per destination: endpoint-dependent', async () => {
    const a = await responder('127.0.0.1');
    const b = await responder('127.0.0.2');
    b.mapAs = (source) => ({ ...source, port: source.port === 65535 ? 1 : source.port + 1 });
    const r = await netcheck('--json', '--stun', a.text, '--stun', b.text);
    expect(r.status).toBe(0);
    expect((JSON.parse(r.stdout) as Report).nat).toBe('endpoint-dependent');
  });

  it('--relay servers are asked STUN too, and named as relays', async () => {
    const relay = await responder('127.0.0.1');
    const r = await netcheck('--json', '--relay', relay.text);
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.relay).toBe(relay.text);
    expect(report.servers.find((s) => s.family === 'ipv4')).toMatchObject({ server: relay.text, kind: 'relay', error: null });
    const text = await netcheck('--relay', relay.text);
    expect(text.stdout).toMatch(/relay: {10}127\.0\.0\.1:\d+ answers/);
  });

  it('nobody answering: the report, one line on stderr and exit 1, within the 3 s timeout', async () => {
    const a = await responder('127.0.0.1');
    a.silent = true;
    const r = await netcheck('--stun', a.text, '--stun', '[::1]:9');
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`autoprox netcheck: no server answered within 3 s (${a.text}, [::1]:9): check the addresses, and that this network lets UDP out to them\n`);
    expect(r.stdout).toContain('0 of 2 server(s) answered');
    expect(r.stdout).toMatch(/timeout/);
    expect(a.requests).toBe(4); // 0, 250, 750, 1750 ms
    expect(r.ms).toBeLessThan(4500);
    const json = await netcheck('--json', '--stun', a.text);
    expect(json.status).toBe(1);
    expect((JSON.parse(json.stdout) as Report).servers[0]).toMatchObject({ mapped: null, error: 'timeout' });
  });

  it('a bad command line: exit 2 with one line (no servers, a bad server, a mistyped flag); --help: exit 0', async () => {
    const none = await netcheck();
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('autoprox netcheck: give at least one server to ask: --stun HOST:PORT or --relay HOST:PORT');
    const bad = await netcheck('--stun', '::1:3478');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--stun: "::1:3478" is not HOST:PORT (write IPv6 literals in brackets');
    const typo = await netcheck('--stunn', '127.0.0.1:3478');
    expect(typo.status).toBe(2);
    expect(typo.stderr).toContain('--stun');
    const help = await netcheck('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('usage: autoprox netcheck');
  });
});

describe.runIf(coturnAvailable || coturnRequired)('autoprox netcheck against coturn', () => {
  it('coturn answers on both families', async () => {
    coturn = await startCoturn();
    const r = await netcheck('--json', '--stun', `127.0.0.1:${coturn.port}`, '--stun', `[::1]:${coturn.port}`);
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.ipv4).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(report.ipv6).toMatch(/^\[::1\]:\d+$/);
    expect(report.nat).toBe('unknown');
  });
});
