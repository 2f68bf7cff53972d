import { describe, expect, it } from 'vitest';
import { findUnknownFlag, unknownFlagMessage } from '../../src/cli/unknown-flag.js';

const known = ['port', 'udp-port', 'host', 'jwt-secret', 'no-ipv6', 'help'];

describe('unknownFlagMessage', () => {
  it.each([
    ['a near miss gets a suggestion', '--udpport', 'autoprox serve: unknown flag --udpport (did you mean --udp-port?); `autoprox serve --help` lists the flags'],
    ['the flag may come without dashes', 'udpport', 'autoprox serve: unknown flag --udpport (did you mean --udp-port?); `autoprox serve --help` lists the flags'],
    ['a transposition', '--hsot', 'autoprox serve: unknown flag --hsot (did you mean --host?); `autoprox serve --help` lists the flags'],
    ['nothing close: no suggestion', '--frobnicate', 'autoprox serve: unknown flag --frobnicate; `autoprox serve --help` lists the flags'],
    ['a one-letter flag keeps one dash', '-x', 'autoprox serve: unknown flag -x; `autoprox serve --help` lists the flags'],
  ])('%s', (_name, flag, line) => {
    expect(unknownFlagMessage('serve', flag, known)).toBe(line);
  });

  it('is one line, names the command, and accepts known flags written with dashes', () => {
    const line = unknownFlagMessage('connect', '--tokn', ['--token', '--key']);
    expect(line).toBe('autoprox connect: unknown flag --tokn (did you mean --token?); `autoprox connect --help` lists the flags');
    expect(line).not.toContain('\n');
  });
});

describe('findUnknownFlag', () => {
  const options = { port: { type: 'string' }, 'no-ipv6': { type: 'boolean' }, help: { type: 'boolean' } } as const;

  it.each([
    [['--port', '1', '--no-ipv6'], null],
    [['--port=1'], null],
    [['--udpport', '40000'], '--udpport'],
    [['--port', '1', '--udpport=40000'], '--udpport'],
    [['-x'], '-x'],
    [['--port', '--weird-value'], null], // a string flag's value, as parseArgs reads it
    [['--', '--not-a-flag'], null],
  ] as const)('%j -> %s', (args, unknown) => {
    expect(findUnknownFlag(args, options)).toBe(unknown);
  });
});
