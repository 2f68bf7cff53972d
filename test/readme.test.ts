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

  it('shows the test command that CI runs', () => {
    expect(readme).toContain('npm test');
    expect(readFileSync(new URL('../.ci/run', import.meta.url), 'utf8')).toContain('npm test');
  });
});

describe('README deployment templates', () => {
  it.each([
    ['nginx', () => import('../src/deploy/nginx.js').then((m) => m.nginxConfig())],
    ['systemd', () => import('../src/deploy/systemd.js').then((m) => m.systemdUnit())],
    ['dockerfile', () => import('../src/deploy/dockerfile.js').then((m) => m.dockerfile())],
  ])('shows exactly what `autoprox %s` prints', async (_, render) => {
    expect(readme).toContain(await render());
  });

  it('the systemd unit is hardened and stops with SIGTERM', async () => {
    const { systemdUnit } = await import('../src/deploy/systemd.js');
    const unit = systemdUnit();
    for (const option of ['DynamicUser=yes', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes', 'CapabilityBoundingSet=', 'KillSignal=SIGTERM']) {
      expect(unit).toContain(option);
    }
  });
});
