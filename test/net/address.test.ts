import { describe, expect, it } from 'vitest';
import { endpoint, MAX_HOST_LENGTH, neverPeerReason, normalizeAddress, parseHost, type ParsedHost } from '../../src/net/address.js';
import { formatEndpoint, sameEndpoint, type Endpoint, type Family } from '../../machines/endpoint.js';

const label63 = 'a'.repeat(63);
/** A 253-character name (the longest allowed): 3 × 63 + 61 characters and 3 dots. */
const name253 = `${label63}.${label63}.${label63}.${'b'.repeat(61)}`;

describe('parseHost: IP literals', () => {
  it.each<[string, ParsedHost]>([
    ['203.0.113.7', { kind: 'ip', family: 'ipv4', address: '203.0.113.7' }],
    ['0.0.0.0', { kind: 'ip', family: 'ipv4', address: '0.0.0.0' }],
    ['255.255.255.255', { kind: 'ip', family: 'ipv4', address: '255.255.255.255' }],
    ['127.0.0.1', { kind: 'ip', family: 'ipv4', address: '127.0.0.1' }],
    ['2001:db8::1', { kind: 'ip', family: 'ipv6', address: '2001:db8::1' }],
    ['::1', { kind: 'ip', family: 'ipv6', address: '::1' }],
    ['::', { kind: 'ip', family: 'ipv6', address: '::' }],
    // IPv6 comes back in RFC 5952 form, as the kernel reports datagram sources.
    ['2001:db8:0:0:0:0:0:7', { kind: 'ip', family: 'ipv6', address: '2001:db8::7' }],
    ['2001:DB8::A', { kind: 'ip', family: 'ipv6', address: '2001:db8::a' }],
    ['2001:db8:0:1:0:0:0:1', { kind: 'ip', family: 'ipv6', address: '2001:db8:0:1::1' }],
    ['1:0:1:0:1:0:1:0', { kind: 'ip', family: 'ipv6', address: '1:0:1:0:1:0:1:0' }],
    ['2001:0:0:1:0:0:0:0', { kind: 'ip', family: 'ipv6', address: '2001:0:0:1::' }],
    ['0:0:0:0:0:0:0:1', { kind: 'ip', family: 'ipv6', address: '::1' }],
    ['64:ff9b::192.0.2.33', { kind: 'ip', family: 'ipv6', address: '64:ff9b::c000:221' }],
    ['fe80::1%eth0', { kind: 'ip', family: 'ipv6', address: 'fe80::1%eth0' }],
    ['fe80::abcd%en0', { kind: 'ip', family: 'ipv6', address: 'fe80::abcd%en0' }],
    ['::ffff:192.0.2.1', { kind: 'ip', family: 'ipv4', address: '192.0.2.1' }],
    ['::FFFF:10.0.0.1', { kind: 'ip', family: 'ipv4', address: '10.0.0.1' }],
    ['::ffff:127.0.0.1', { kind: 'ip', family: 'ipv4', address: '127.0.0.1' }],
    ['::ffff:224.0.0.1', { kind: 'ip', family: 'ipv4', address: '224.0.0.1' }],
  ])('%s', (value, expected) => {
    expect(parseHost(value)).toEqual(expected);
  });
});

describe('parseHost: DNS names', () => {
  it.each<[string, string]>([
    ['localhost', 'localhost'],
    ['example.com', 'example.com'],
    ['example.com.', 'example.com'],
    ['Peer-1.Example.ORG', 'Peer-1.Example.ORG'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['a', 'a'],
    ['1.2.3.example', '1.2.3.example'],
    ['1.2.3.4a', '1.2.3.4a'],
    ['123abc', '123abc'],
    [`${label63}.example`, `${label63}.example`],
    [name253, name253],
  ])('%s is the name %s', (value, name) => {
    expect(parseHost(value)).toEqual({ kind: 'name', name });
  });

  it('the 253-character fixture is 253 characters', () => {
    expect(name253).toHaveLength(MAX_HOST_LENGTH);
    expect(MAX_HOST_LENGTH).toBe(253);
  });
});

describe('parseHost: refusals', () => {
  const notName = (value: string): string => `"${value}" is neither an IP address nor a valid DNS name`;
  const notV6 = (value: string): string => `"${value}" is not a valid IPv6 address`;
  it.each<[string, string, string]>([
    ['empty', '', 'is empty'],
    ['254 characters', `${name253}c`, 'is longer than 253 characters'],
    ['a long IPv6-looking value over 253 characters', '1:'.repeat(127), 'is longer than 253 characters'],
    ['bracketed IPv6', '[2001:db8::1]', 'must be given without brackets (e.g. host=2001:db8::1)'],
    ['bracketed IPv6 with port', '[::1]:40000', 'must be given without brackets (e.g. host=2001:db8::1)'],
    ['an opening bracket only', '[example.com', 'must be given without brackets (e.g. host=2001:db8::1)'],
    ['name with port', 'example.com:40000', notV6('example.com:40000')],
    ['IPv4 with port', '203.0.113.7:40000', notV6('203.0.113.7:40000')],
    ['too many IPv6 groups', '1:2:3:4:5:6:7:8:9', notV6('1:2:3:4:5:6:7:8:9')],
    ['two "::"', '2001::db8::1', notV6('2001::db8::1')],
    ['bad hex group', '2001:db8::g', notV6('2001:db8::g')],
    ['mapped IPv4 out of range', '::ffff:999.1.1.1', notV6('::ffff:999.1.1.1')],
    ['empty zone id', '::1%', notV6('::1%')],
    ['underscore', 'my_host.example', notName('my_host.example')],
    ['leading hyphen', '-peer.example', notName('-peer.example')],
    ['trailing hyphen', 'peer-.example', notName('peer-.example')],
    ['trailing hyphen in the last label', 'peer.example-', notName('peer.example-')],
    ['64-character label', `${'a'.repeat(64)}.example`, notName(`${'a'.repeat(64)}.example`)],
    ['all-numeric last label: 1.2.3', '1.2.3', notName('1.2.3')],
    ['all-numeric last label: 1.2.3.4.5', '1.2.3.4.5', notName('1.2.3.4.5')],
    ['a bare number', '12345', notName('12345')],
    ['IPv4 with a leading zero', '01.2.3.4', notName('01.2.3.4')],
    ['IPv4 octet out of range', '256.1.1.1', notName('256.1.1.1')],
    ['numeric with trailing dot', '1.2.3.4.', notName('1.2.3.4.')],
    ['empty label', 'a..example', notName('a..example')],
    ['leading dot', '.example', notName('.example')],
    ['only a dot', '.', notName('.')],
    ['two trailing dots', 'example.com..', notName('example.com..')],
    ['space', 'exa mple.com', notName('exa mple.com')],
    ['non-ASCII', 'bücher.example', notName('bücher.example')],
    ['slash', 'example.com/path', notName('example.com/path')],
    ['at sign', 'user@example.com', notName('user@example.com')],
    ['percent outside IPv6', 'example%eth0', notName('example%eth0')],
  ])('%s (%j)', (_name, value, error) => {
    expect(parseHost(value)).toEqual({ error });
  });
});

describe('normalizeAddress', () => {
  it.each<[string, { family: Family; address: string } | null]>([
    ['192.0.2.1', { family: 'ipv4', address: '192.0.2.1' }],
    ['2001:db8::1', { family: 'ipv6', address: '2001:db8::1' }],
    ['::ffff:192.0.2.1', { family: 'ipv4', address: '192.0.2.1' }],
    ['fe80::1%eth0', { family: 'ipv6', address: 'fe80::1%eth0' }],
    ['example.com', null],
    ['', null],
    ['[::1]', null],
  ])('%s', (value, expected) => {
    expect(normalizeAddress(value)).toEqual(expected);
  });

  // The doc comment promises "canonical address (IPv4-mapped IPv6 becomes IPv4)", but only the
  // compressed dotted form "::ffff:a.b.c.d" is recognised. See the report.
  it.each<[string, { family: Family; address: string }]>([
    ['0:0:0:0:0:ffff:192.0.2.1', { family: 'ipv4', address: '192.0.2.1' }],
    ['::ffff:c000:201', { family: 'ipv4', address: '192.0.2.1' }],
  ])('IPv4-mapped %s (not the "::ffff:a.b.c.d" spelling) becomes IPv4 too', (value, expected) => {
    expect(normalizeAddress(value)).toEqual(expected);
  });
});

describe('neverPeerReason', () => {
  const unspecified = 'an unspecified address';
  const multicast = 'a multicast address';
  const broadcast = 'the broadcast address';
  it.each<[Family, string, string | null]>([
    ['ipv4', '0.0.0.0', unspecified],
    ['ipv4', '0.1.2.3', unspecified],
    ['ipv4', '0.255.255.255', unspecified],
    ['ipv6', '::', unspecified],
    ['ipv6', '0:0:0:0:0:0:0:0', unspecified],
    ['ipv4', '224.0.0.1', multicast],
    ['ipv4', '224.0.0.0', multicast],
    ['ipv4', '239.255.255.250', multicast],
    ['ipv6', 'ff02::1', multicast],
    ['ipv6', 'ff00::', multicast],
    ['ipv6', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', multicast],
    ['ipv6', 'ff02::1%eth0', multicast],
    ['ipv4', '255.255.255.255', broadcast],
    ['ipv4', '127.0.0.1', null],
    ['ipv4', '1.0.0.0', null],
    ['ipv4', '10.1.2.3', null],
    ['ipv4', '172.16.0.1', null],
    ['ipv4', '192.168.1.1', null],
    ['ipv4', '203.0.113.7', null],
    ['ipv4', '223.255.255.255', null],
    ['ipv4', '240.0.0.1', null],
    ['ipv4', '255.255.255.254', null],
    ['ipv6', '::1', null],
    ['ipv6', '::2', null],
    ['ipv6', '2001:db8::1', null],
    ['ipv6', 'fe80::1', null],
    ['ipv6', 'fe80::1%eth0', null],
    ['ipv6', 'fc00::1', null],
    ['ipv6', 'feff:ffff::1', null],
  ])('%s %s → %s', (family, address, reason) => {
    expect(neverPeerReason(family, address)).toBe(reason);
  });

  it('classifies the addresses parseHost produces (mapped IPv4 is checked as IPv4)', () => {
    for (const [value, reason] of [
      ['::ffff:0.0.0.0', unspecified],
      ['::ffff:224.0.0.1', multicast],
      ['::ffff:255.255.255.255', broadcast],
      ['::ffff:10.0.0.1', null],
    ] as const) {
      const parsed = parseHost(value);
      expect(parsed).toMatchObject({ kind: 'ip', family: 'ipv4' });
      if ('kind' in parsed && parsed.kind === 'ip') expect(neverPeerReason(parsed.family, parsed.address)).toBe(reason);
    }
  });
});

describe('endpoints', () => {
  it.each<[Endpoint, string]>([
    [{ family: 'ipv4', address: '203.0.113.7', port: 40000 }, '203.0.113.7:40000'],
    [{ family: 'ipv4', address: '127.0.0.1', port: 1 }, '127.0.0.1:1'],
    [{ family: 'ipv6', address: '2001:db8::7', port: 40000 }, '[2001:db8::7]:40000'],
    [{ family: 'ipv6', address: '::1', port: 65535 }, '[::1]:65535'],
    [{ family: 'ipv6', address: 'fe80::1%eth0', port: 5 }, '[fe80::1%eth0]:5'],
  ])('formatEndpoint(%j) is %s', (value, text) => {
    expect(formatEndpoint(value)).toBe(text);
  });

  it('endpoint() builds the value type', () => {
    expect(endpoint('ipv6', '::1', 9)).toEqual({ family: 'ipv6', address: '::1', port: 9 });
  });

  it('sameEndpoint compares family, address and port', () => {
    const a = endpoint('ipv4', '203.0.113.7', 40000);
    expect(sameEndpoint(a, { ...a })).toBe(true);
    expect(sameEndpoint(a, { ...a, port: 40001 })).toBe(false);
    expect(sameEndpoint(a, { ...a, address: '203.0.113.8' })).toBe(false);
    expect(sameEndpoint(a, { ...a, family: 'ipv6' })).toBe(false);
  });
});
