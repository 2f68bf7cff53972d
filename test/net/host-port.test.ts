import { describe, expect, it } from 'vitest';
import { parseHostPort, parseHostPortList } from '../../src/net/host-port.js';

describe('parseHostPort', () => {
  it.each([
    ['192.0.2.1:3478', { host: '192.0.2.1', port: 3478, text: '192.0.2.1:3478' }],
    ['[2001:DB8::1]:3478', { host: '2001:db8::1', port: 3478, text: '[2001:db8::1]:3478' }],
    ['[::1]:19302', { host: '::1', port: 19302, text: '[::1]:19302' }],
    ['Stun.Example.NET:3478', { host: 'stun.example.net', port: 3478, text: 'stun.example.net:3478' }],
    [' localhost:1 ', { host: 'localhost', port: 1, text: 'localhost:1' }],
  ])('%s', (value, want) => {
    expect(parseHostPort(value)).toEqual(want);
  });

  it.each([
    ['192.0.2.1', 'is not HOST:PORT'],
    ['2001:db8::1:3478', 'write IPv6 literals in brackets'],
    ['[192.0.2.1]:3478', 'is not an IPv6 address'],
    ['[fe80::1%eth0]:3478', 'is not an IPv6 address'],
    ['host:0', 'the port must be from 1 to 65535'],
    ['host:65536', 'the port must be from 1 to 65535'],
    ['bad_name!:3478', 'the host'],
    [':3478', 'is not HOST:PORT'],
  ])('%s: refused (%s)', (value, message) => {
    const parsed = parseHostPort(value);
    expect('error' in parsed && parsed.error).toContain(message);
  });

  it('a list: comma-separated, duplicates once, the first error names its item', () => {
    expect(parseHostPortList('a.test:1, [::1]:2,a.test:1,')).toEqual([
      { host: 'a.test', port: 1, text: 'a.test:1' },
      { host: '::1', port: 2, text: '[::1]:2' },
    ]);
    expect(parseHostPortList('')).toEqual([]);
    expect(parseHostPortList('a.test:1,b.test')).toEqual({ error: '"b.test" is not HOST:PORT' });
  });
});
