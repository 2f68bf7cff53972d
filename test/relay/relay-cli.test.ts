/**
 * `autoprox relay` as a process (the built CLI): one JSON "listening" line with url and udp
 * ports, /healthz, /readyz and /metrics, every flag as AUTOPROX_<NAME>, a generated secret on
 * stderr, a taken port named with the flag to change, SIGTERM -> exit 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { httpGet } from '../helpers/metrics.js';
import { CLI, assertBuilt } from '../helpers/server-process.js';
import { eventually } from '../helpers/waiter.js';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

function relay(args: string[], env: NodeJS.ProcessEnv = {}) {
  assertBuilt();
  const proc = spawn(process.execPath, [CLI, 'relay', ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  const stdout: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: proc.stderr! }).on('line', (l) => stderr.push(l));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const listening = new Promise<{ url: string; udp: { ipv4: number; ipv6: number | null } }>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      stdout.push(line);
      const entry = JSON.parse(line) as { msg: string; url: string; udp: { ipv4: number; ipv6: number | null } };
      if (entry.msg === 'listening') resolve(entry);
    });
    void exited.then((code) => reject(new Error(`relay exited with ${code}: ${stderr.join('\n')}`)));
  });
  listening.catch(() => {}); // a test that expects an exit does not wait for it

  return { proc, stdout, stderr, exited, listening };
}

describe('autoprox relay', () => {
  it('listens, serves /healthz, /readyz and /metrics, prints a generated secret, and exits 0 on SIGTERM', async () => {
    const r = relay(['--udp-port', '0', '--port', '0']);
    const at = await r.listening;
    expect(at.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(at.udp.ipv4).toBeGreaterThan(0);
    await eventually(() => r.stderr.some((l) => l.includes('--relay-secret=')), 'the generated secret on stderr');
    expect(r.stderr.join('\n')).toMatch(/no --relay-secret given/);
    expect(r.stderr.join('\n')).toMatch(/--relay-secret=[A-Za-z0-9_-]{43}/);
    expect(await httpGet(`${at.url}/healthz`)).toMatchObject({ status: 200 });
    expect(JSON.parse((await httpGet(`${at.url}/readyz`)).body)).toMatchObject({ status: 'ready', bindings: 0 });
    // Garbage at the port is counted, never answered.
    const probe = createSocket('udp4');
    const answers: Buffer[] = [];
    probe.on('message', (m) => answers.push(m));
    for (let i = 0; i < 5; i++) probe.send(Buffer.from('not autoprox'), at.udp.ipv4, '127.0.0.1');
    let metrics = '';
    for (let i = 0; i < 50 && !/autoprox_relay_drops_total\{cause="malformed"\} 5/.test(metrics); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      metrics = (await httpGet(`${at.url}/metrics`)).body;
    }
    expect(metrics).toMatch(/autoprox_relay_drops_total\{cause="malformed"\} 5/);
    expect(metrics).toMatch(/autoprox_relay_bindings 0/);
    expect(metrics).toMatch(/autoprox_relay_forwarded_datagrams_total 0/);
    expect(answers).toEqual([]);
    probe.close();
    r.proc.kill('SIGTERM');
    expect(await r.exited).toBe(0);
  });

  it('takes every flag from AUTOPROX_<NAME> too, and then prints no generated secret', async () => {
    const r = relay([], { AUTOPROX_UDP_PORT: '0', AUTOPROX_PORT: '0', AUTOPROX_RELAY_SECRET: 'from-the-environment', AUTOPROX_NO_IPV6: 'true' });
    const at = await r.listening;
    expect(at.udp.ipv6).toBeNull();
    expect(r.stderr.join('\n')).not.toMatch(/relay-secret/);
  });

  it('a taken UDP port: one line naming --udp-port, exit 1', async () => {
    const first = relay(['--udp-port', '0', '--port', '0', '--no-ipv6']);
    const at = await first.listening;
    const second = relay(['--udp-port', String(at.udp.ipv4), '--port', '0', '--no-ipv6']);
    expect(await second.exited).toBe(1);
    expect(second.stderr.join('\n')).toMatch(/--udp-port/);
  });

  it('warns once of an AUTOPROX_* variable it does not read, with the name it is closest to', async () => {
    const r = relay(['--udp-port', '0', '--port', '0'], { AUTOPROX_IDLEMS: '1000' });
    await r.listening;
    await eventually(() => r.stdout.some((l) => l.includes('AUTOPROX_IDLEMS')), 'the warning');
    const warnings = r.stdout.filter((l) => l.includes('AUTOPROX_IDLEMS'));
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 'warn', msg: expect.stringMatching(/did you mean AUTOPROX_IDLE_MS\?/) });
  });

  it('a bad value names the flag, exit 2', async () => {
    const r = relay(['--idle-ms', 'soon']);
    expect(await r.exited).toBe(2);
    expect(r.stderr.join('\n')).toMatch(/--idle-ms/);
  });
});
