/** --config FILE (JSON or YAML) and `autoprox config print`. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { configValues, loadConfigFile } from '../../src/config-file.js';
import { resolveConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { CLI, killAllServers, startServerProcess } from '../helpers/server-process.js';

const dir = mkdtempSync(join(tmpdir(), 'autoprox-config-'));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}
afterEach(() => killAllServers());

describe('config files', () => {
  it('reads YAML and JSON keyed by flag name, lists as lists', async () => {
    const yaml = await loadConfigFile(file('a.yaml', 'udp-port: 41000\nno-ipv6: true\nallow-targets:\n  - 10.0.0.0/8\n  - "[2001:db8::/32]:40000"\nlog-level: debug\n'));
    expect(yaml.values).toEqual({ 'udp-port': '41000', 'no-ipv6': true, 'allow-targets': '10.0.0.0/8,[2001:db8::/32]:40000', 'log-level': 'debug' });
    const json = await loadConfigFile(file('a.json', JSON.stringify({ 'udp-port': 41000, 'punch-ms': 50 })));
    expect(json.values).toEqual({ 'udp-port': '41000', 'punch-ms': '50' });
  });

  it('takes flag > environment > file > default', async () => {
    const f = await loadConfigFile(file('p.yaml', 'port: 1000\nudp-port: 2000\npunch-ms: 30\n'));
    const config = resolveConfig({ port: '1001' }, { AUTOPROX_UDP_PORT: '2001' }, f);
    expect([config.port, config.udpPort, config.punchMs, config.heartbeatMs]).toEqual([1001, 2001, 30, 1000]);
  });

  it.each([
    ['an unknown key (with a suggestion)', 'udp-prot: 1\n', 'udp-prot', /unknown key "udp-prot" \(did you mean "udp-port"\?\)/],
    ['a bad value', 'punch-ms: fast\n', 'punch-ms', /key "punch-ms": expected a whole number of ms, got "fast"/],
    ['a value out of range', 'port: 70000\n', 'port', /key "port": must be from 0 to 65535, got 70000/],
    ['a boolean given as a string', 'no-ipv6: "yes"\n', 'no-ipv6', /key "no-ipv6": expected true or false/],
    ['a mapping where a value belongs', 'host: {a: 1}\n', 'host', /key "host": expected a string/],
  ])('refuses %s, naming the key', async (_, text, key, message) => {
    let caught: unknown;
    try {
      resolveConfig({}, {}, await loadConfigFile(file(`${key}.yaml`, text)));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).option).toBe(key);
    expect((caught as ConfigError).message).toMatch(message);
  });

  it('refuses a document that is not a mapping, and a file that is not YAML', async () => {
    expect(() => configValues(['a'], 'x.yaml')).toThrow(/expected a mapping/);
    await expect(loadConfigFile(file('broken.yaml', 'a: [\n'))).rejects.toThrow(/not valid YAML/);
    await expect(loadConfigFile(join(dir, 'missing.yaml'))).rejects.toThrow(/cannot read .*ENOENT/);
  });

  it('serve --config starts with the file, and a bad file stops it with exit code 2', async () => {
    const good = file('serve.yaml', 'udp-port: 0\nno-ipv6: true\njwt-secret: file-secret-file-secret-file-secret\n');
    const s = await startServerProcess(['--config', good]);
    expect(s.udp.ipv6).toBeNull();
    const bad = spawnSync(process.execPath, [CLI, 'serve', '--config', file('bad.yaml', 'nope: 1\n')], { encoding: 'utf8', timeout: 10_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('unknown key "nope"');
  });

  it('--stun is repeatable on the command line, a list in a file, comma-separated in the environment', async () => {
    const f = await loadConfigFile(file('stun.yaml', 'stun:\n  - stun.example.net:3478\n  - "[2001:db8::1]:3478"\n'));
    expect(resolveConfig({}, {}, f).stun.map((s) => s.text)).toEqual(['stun.example.net:3478', '[2001:db8::1]:3478']);
    expect(resolveConfig({}, { AUTOPROX_STUN: '192.0.2.1:3478,192.0.2.2:3478' }).stun.map((s) => s.text)).toEqual(['192.0.2.1:3478', '192.0.2.2:3478']);
    const r = spawnSync(process.execPath, [CLI, 'config', 'print', '--stun', '127.0.0.1:3478', '--stun=[::1]:3479'], { encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 10_000 });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).stun).toEqual(['127.0.0.1:3478', '[::1]:3479']);
    const bad = spawnSync(process.execPath, [CLI, 'config', 'print', '--stun', '::1:3478'], { encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 10_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--stun: "::1:3478" is not HOST:PORT (write IPv6 literals in brackets');
  });

  it('config print shows the effective configuration with secrets masked', () => {
    const f = file('print.yaml', 'udp-port: 41000\njwt-secret: a-very-secret-value-of-the-file\nredis-url: redis://user:pa55word@127.0.0.1:6379/1\n');
    const r = spawnSync(process.execPath, [CLI, 'config', 'print', '--config', f, '--punch-ms', '50'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, AUTOPROX_HEARTBEAT_MS: '2000' },
      timeout: 10_000,
    });
    expect(r.status).toBe(0);
    const printed = JSON.parse(r.stdout);
    expect(printed).toMatchObject({ 'udp-port': 41000, 'punch-ms': 50, 'heartbeat-ms': 2000, 'jwt-secret': '********', 'redis-url': 'redis://user:********@127.0.0.1:6379/1' });
    expect(r.stdout).not.toContain('a-very-secret-value-of-the-file');
    expect(r.stdout).not.toContain('pa55word');
    // What it prints is a config file again.
    expect(() => configValues(printed, 'printed')).not.toThrow();
  });
});
