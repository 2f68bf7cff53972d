/**
 * The node flags `autoprox serve` should run with: one list, used by every way of starting it
 * that the project ships, and a log line when a server runs without them.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { dockerfile } from '../../src/deploy/dockerfile.js';
import { missingNodeFlags, SERVER_NODE_FLAGS } from '../../src/deploy/node-flags.js';
import { systemdUnit } from '../../src/deploy/systemd.js';
import { killAllServers, startServerProcess, TEST_SECRET } from '../helpers/server-process.js';
import { eventually } from '../helpers/waiter.js';

afterEach(async () => {
  await killAllServers();
});

describe('SERVER_NODE_FLAGS', () => {
  it('caps the young generation (the flag the bench measured)', () => {
    expect(SERVER_NODE_FLAGS).toEqual(['--max-semi-space-size=1']);
  });

  it('npm start, the systemd unit and the container entry point all pass them to node', () => {
    const flags = SERVER_NODE_FLAGS.join(' ');
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe(`node ${flags} dist/src/cli.js serve`);
    expect(systemdUnit()).toContain(`ExecStart=/usr/bin/node ${flags} /opt/autoprox/dist/src/cli.js serve --config`);
    expect(dockerfile()).toContain(`ENTRYPOINT ["node", ${SERVER_NODE_FLAGS.map((f) => JSON.stringify(f)).join(', ')}, "dist/src/cli.js"]`);
  });
});

describe('missingNodeFlags', () => {
  it('finds a flag given as a node option or in NODE_OPTIONS, in either spelling; another value is the operator\'s choice', () => {
    expect(missingNodeFlags([], undefined)).toEqual(['--max-semi-space-size=1']);
    expect(missingNodeFlags(['--max-semi-space-size=1'], undefined)).toEqual([]);
    expect(missingNodeFlags([], '--max-semi-space-size=1')).toEqual([]);
    expect(missingNodeFlags([], '  --inspect   --max_semi_space_size=1 ')).toEqual([]);
    expect(missingNodeFlags(['--max-semi-space-size=4'], '')).toEqual([]);
    expect(missingNodeFlags(['--max-old-space-size=1'], '--max-semi-space-size-x=1')).toEqual(['--max-semi-space-size=1']);
  });

  it('a server started without them says so once in its log, naming the flag; started with them it does not', async () => {
    const without = await startServerProcess([`--jwt-secret=${TEST_SECRET}`, '--udp-port', '0']);
    const hints = () => without.logs.filter((line) => line.includes('node runs without'));
    await eventually(() => hints().length > 0, 'the hint in the log', 5_000);
    expect(hints()).toHaveLength(1);
    expect(JSON.parse(hints()[0]!)).toMatchObject({ level: 'info', missing: ['--max-semi-space-size=1'] });
    const withFlags = await startServerProcess([`--jwt-secret=${TEST_SECRET}`, '--udp-port', '0'], { NODE_OPTIONS: SERVER_NODE_FLAGS.join(' ') });
    await new Promise((r) => setTimeout(r, 300)); // the hint comes right after `listening`, if at all
    expect(withFlags.logs.some((line) => line.includes('"msg":"listening"'))).toBe(true);
    expect(withFlags.logs.filter((line) => line.includes('node runs without'))).toEqual([]);
  });
});
