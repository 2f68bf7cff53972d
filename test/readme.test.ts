/** The README is part of the contract: keep its configuration table in step with the code. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { envName, SERVE_OPTIONS } from '../src/config.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it.each(SERVE_OPTIONS.map((o) => [o.flag, o] as const))('documents --%s with its env var and default', (flag, option) => {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`--${flag}\` |`));
    expect(row, `a config table row for --${flag}`).toBeDefined();
    expect(row).toContain(`\`${envName(flag)}\``);
    if (option.default !== null && option.kind !== 'bool') expect(row).toContain(`\`${option.default}\``);
  });

  it("quick start: its two commands are the ones package.json defines and .ci/run runs", () => {
    const section = readme.slice(readme.indexOf('## Quick start'));
    const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
    expect(block, 'a sh block in the Quick start section').toBeDefined();
    const lines = block!.split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter(Boolean);
    expect(lines).toHaveLength(2); // one runs the server, one runs the tests
    const commands = lines.map((l) => l.split('&&').map((c) => c.trim()));
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
    const ci = readFileSync(new URL('../.ci/run', import.meta.url), 'utf8').split('\n').map((l) => l.trim());
    // Every npm command names a script that exists (npm ci installs from the lock file).
    for (const command of commands.flat()) {
      const m = /^npm (ci|start|test|run ([\w:-]+))$/.exec(command);
      expect(m, `"${command}" is an npm command of this package`).not.toBeNull();
      if (m![1] === 'start' || m![1] === 'test') expect(pkg.scripts[m![1]], `script ${m![1]}`).toBeDefined();
      if (m![2]) expect(pkg.scripts[m![2]], `script ${m![2]}`).toBeDefined();
    }
    // The first line installs and runs the server; the second is what CI runs as the test suite.
    expect(commands[0]).toEqual(['npm ci', 'npm start']);
    expect(pkg.scripts.start).toMatch(/cli\.js serve$/);
    expect(commands[1]).toEqual(['npm test']);
    expect(ci).toContain('npm test');
    expect(ci.some((l) => l.startsWith('npm ci'))).toBe(true);
    expect(pkg.scripts.pretest).toBe('npm run build'); // so `npm test` on a fresh clone builds first
  });
});

describe('README deployment templates', () => {
  it.each([
    ['nginx', () => import('../src/deploy/nginx.js').then((m) => m.nginxConfig())],
    ['systemd', () => import('../src/deploy/systemd.js').then((m) => m.systemdUnit())],
    ['systemd --relay', () => import('../src/deploy/systemd.js').then((m) => m.systemdUnit({ role: 'relay' }))],
    ['dockerfile', () => import('../src/deploy/dockerfile.js').then((m) => m.dockerfile())],
  ])('shows exactly what `autoprox %s` prints', async (_, render) => {
    expect(readme).toContain(await render());
  });

  it.each(['serve', 'relay'] as const)('the systemd unit (%s) is hardened and stops with SIGTERM', async (role) => {
    const { systemdUnit } = await import('../src/deploy/systemd.js');
    const unit = systemdUnit({ role });
    expect(unit).toContain(`dist/src/cli.js ${role}`);
    for (const option of ['DynamicUser=yes', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes', 'CapabilityBoundingSet=', 'KillSignal=SIGTERM']) {
      expect(unit).toContain(option);
    }
  });
});
