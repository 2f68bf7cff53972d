/**
 * What a newcomer sees when something is off (issue 14, "the first five minutes"): one line that
 * names the flag, the variable or the remedy, never a usage screen or a stack trace.
 */
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, killAllServers } from '../helpers/server-process.js';

afterEach(async () => {
  await killAllServers();
});

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: 10_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('unknown flags', () => {
  it('serve: one line with a suggestion and where to get help, exit 2, no usage screen', () => {
    const r = run(['serve', '--port', '0', '--udpport', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('autoprox serve: unknown flag --udpport (did you mean --udp-port?); `autoprox serve --help` lists the flags\n');
  });

  it('serve: a flag missing its value is one line too', () => {
    const r = run(['serve', '--port']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^autoprox serve: .*--port.*; `autoprox serve --help` lists the flags$/)]);
  });

  it('token: the same line, and --help lists its flags', () => {
    const r = run(['token', '--sub', 'x', '--admn']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('autoprox token: unknown flag --admn (did you mean --admin?); `autoprox token --help` lists the flags\n');
    const help = run(['token', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--admin/);
  });
});
