import { describe, expect, it } from 'vitest';
import { Refusal } from '../../src/errors.js';
import { MAX_HOSTS, parseProxyParams, type ProxyParams } from '../../src/http/proxy-params.js';

/** 32 bytes 00..1f: base64url "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8" (43 chars, ends in a canonical "8"). */
const KEY_BYTES = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const KEY = KEY_BYTES.toString('base64url');
const ZERO_KEY = 'A'.repeat(43);

function parse(query: string): ProxyParams | Refusal {
  return parseProxyParams(new URLSearchParams(query));
}

const good = (extra = ''): string => `host=203.0.113.7&port=40000&key=${KEY}${extra}`;

describe('parseProxyParams: accepted queries', () => {
  it('a good query gives hosts, port and the 32-byte key', () => {
    const result = parse(good());
    expect(result).toEqual({ hosts: ['203.0.113.7'], port: 40000, key: KEY_BYTES });
    expect(Buffer.isBuffer((result as ProxyParams).key)).toBe(true);
    expect((result as ProxyParams).key).toHaveLength(32);
  });

  it('the key fixture is what the comment says', () => {
    expect(KEY).toBe('AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8');
  });

  it.each<[string, string, Partial<ProxyParams>]>([
    ['key with "=" padding', `host=a.example&port=1&key=${KEY}=`, { key: KEY_BYTES }],
    ['key with "=" percent-encoded', `host=a.example&port=1&key=${KEY}%3D`, { key: KEY_BYTES }],
    ['all-zero key', `host=a.example&port=1&key=${ZERO_KEY}`, { key: Buffer.alloc(32) }],
    ['all-ones key (uses - and _)', `host=a.example&port=1&key=${Buffer.alloc(32, 0xff).toString('base64url')}`, { key: Buffer.alloc(32, 0xff) }],
    ['port 1', `host=a.example&port=1&key=${KEY}`, { port: 1 }],
    ['port 65535', `host=a.example&port=65535&key=${KEY}`, { port: 65535 }],
    ['port with leading zeros', `host=a.example&port=00080&key=${KEY}`, { port: 80 }],
    ['a DNS name (trailing dot dropped)', `host=peer.example.&port=1&key=${KEY}`, { hosts: ['peer.example'] }],
    ['an IPv6 literal (percent-encoded colons)', `host=2001%3Adb8%3A%3A1&port=1&key=${KEY}`, { hosts: ['2001:db8::1'] }],
    ['an IPv6 literal (raw colons)', `host=2001:db8::1&port=1&key=${KEY}`, { hosts: ['2001:db8::1'] }],
    ['a zoned link-local IPv6 literal', `host=fe80::1%25eth0&port=1&key=${KEY}`, { hosts: ['fe80::1%eth0'] }],
    ['an IPv4-mapped IPv6 literal, made IPv4', `host=::ffff:192.0.2.1&port=1&key=${KEY}`, { hosts: ['192.0.2.1'] }],
    ['loopback', `host=127.0.0.1&host=::1&port=1&key=${KEY}`, { hosts: ['127.0.0.1', '::1'] }],
    [
      'several hosts, in the client order',
      `host=b.example&host=2001:db8::2&host=10.0.0.1&port=1&key=${KEY}`,
      { hosts: ['b.example', '2001:db8::2', '10.0.0.1'] },
    ],
    ['the same host twice is kept twice', `host=a.example&host=a.example&port=1&key=${KEY}`, { hosts: ['a.example', 'a.example'] }],
    [`exactly ${MAX_HOSTS} hosts`, `${'host=a.example&'.repeat(MAX_HOSTS)}port=1&key=${KEY}`, { hosts: Array(MAX_HOSTS).fill('a.example') }],
    ['one access_token (ignored here)', `${good()}&access_token=abc`, { port: 40000 }],
    ['parameters in any order', `key=${KEY}&port=7&host=a.example`, { hosts: ['a.example'], port: 7 }],
  ])('%s', (_name, query, expected) => {
    const result = parse(query);
    expect(result).not.toBeInstanceOf(Refusal);
    expect(result).toMatchObject(expected);
  });
});

describe('parseProxyParams: refusals (400 bad_parameter, message starts with the parameter)', () => {
  const hostMsg = (value: string, why: string): string => `host: ${value} is ${why}, which can never be a peer`;
  const keyFormat = 'key: must be 32 bytes in base64url (43 characters of A-Z a-z 0-9 - _, optional "=" padding)';
  const keyCanonical = 'key: is not a canonical base64url encoding of 32 bytes';
  const portRange = 'port: must be an integer from 1 to 65535';
  const cases: Array<[string, string, string]> = [
    // unknown parameters come first
    ['an unknown parameter', `${good()}&hosts=x`, 'hosts: unknown parameter (expected host, port, key, access_token)'],
    ['an unknown parameter before the others', `psk=${KEY}&${good()}`, 'psk: unknown parameter (expected host, port, key, access_token)'],
    ['a parameter named in upper case', `HOST=a.example&port=1&key=${KEY}`, 'HOST: unknown parameter (expected host, port, key, access_token)'],
    // host
    ['no host', `port=1&key=${KEY}`, 'host: is required: the peer server address or DNS name'],
    ['an empty query', '', 'host: is required: the peer server address or DNS name'],
    [`more than ${MAX_HOSTS} hosts`, `${'host=a.example&'.repeat(MAX_HOSTS + 1)}port=1&key=${KEY}`, `host: at most ${MAX_HOSTS} candidates`],
    ['an empty host', `host=&port=1&key=${KEY}`, 'host: is empty'],
    ['a bracketed IPv6 host', `host=[::1]&port=1&key=${KEY}`, 'host: must be given without brackets (e.g. host=2001:db8::1)'],
    ['a host with a port', `host=a.example:1&port=1&key=${KEY}`, 'host: "a.example:1" is not a valid IPv6 address'],
    ['a host with an underscore', `host=a_b.example&port=1&key=${KEY}`, 'host: "a_b.example" is neither an IP address nor a valid DNS name'],
    ['a numeric non-IP host', `host=1.2.3&port=1&key=${KEY}`, 'host: "1.2.3" is neither an IP address nor a valid DNS name'],
    ['a host over 253 characters', `host=${'a'.repeat(254)}&port=1&key=${KEY}`, 'host: is longer than 253 characters'],
    ['one bad host among good ones', `host=a.example&host=bad_host&port=1&key=${KEY}`, 'host: "bad_host" is neither an IP address nor a valid DNS name'],
    ['0.0.0.0', `host=0.0.0.0&port=1&key=${KEY}`, hostMsg('0.0.0.0', 'an unspecified address')],
    ['::', `host=::&port=1&key=${KEY}`, hostMsg('::', 'an unspecified address')],
    ['a multicast IPv4 host', `host=239.1.2.3&port=1&key=${KEY}`, hostMsg('239.1.2.3', 'a multicast address')],
    ['a multicast IPv6 host', `host=ff02::1&port=1&key=${KEY}`, hostMsg('ff02::1', 'a multicast address')],
    ['a mapped multicast host (named as given)', `host=::ffff:224.0.0.1&port=1&key=${KEY}`, hostMsg('::ffff:224.0.0.1', 'a multicast address')],
    ['the broadcast address', `host=255.255.255.255&port=1&key=${KEY}`, hostMsg('255.255.255.255', 'the broadcast address')],
    // port
    ['no port', `host=a.example&key=${KEY}`, 'port: is required: the peer server UDP port (1-65535)'],
    ['two ports', `host=a.example&port=1&port=2&key=${KEY}`, 'port: given more than once'],
    ['port 0', `host=a.example&port=0&key=${KEY}`, portRange],
    ['port 65536', `host=a.example&port=65536&key=${KEY}`, portRange],
    ['port 99999', `host=a.example&port=99999&key=${KEY}`, portRange],
    ['port of 6 digits', `host=a.example&port=000080&key=${KEY}`, portRange],
    ['an empty port', `host=a.example&port=&key=${KEY}`, portRange],
    ['a negative port', `host=a.example&port=-1&key=${KEY}`, portRange],
    ['a port with a plus sign', `host=a.example&port=%2B80&key=${KEY}`, portRange],
    ['a fractional port', `host=a.example&port=80.5&key=${KEY}`, portRange],
    ['a port in exponent notation', `host=a.example&port=1e3&key=${KEY}`, portRange],
    ['a hex port', `host=a.example&port=0x50&key=${KEY}`, portRange],
    ['a port with spaces', `host=a.example&port=%2080&key=${KEY}`, portRange],
    ['a named port', `host=a.example&port=http&key=${KEY}`, portRange],
    // key
    ['no key', 'host=a.example&port=1', 'key: is required: 32 random bytes, base64url'],
    ['two keys', `host=a.example&port=1&key=${KEY}&key=${KEY}`, 'key: given more than once'],
    ['an empty key', 'host=a.example&port=1&key=', keyFormat],
    ['a 42-character key', `host=a.example&port=1&key=${KEY.slice(1)}`, keyFormat],
    ['a 44-character key without padding', `host=a.example&port=1&key=${KEY}A`, keyFormat],
    ['a key with "==" padding', `host=a.example&port=1&key=${KEY}==`, keyFormat],
    ['a standard-base64 key (+ and /)', `host=a.example&port=1&key=${encodeURIComponent(Buffer.alloc(32, 0xfb).toString('base64'))}`, keyFormat],
    ['a key with a "+" (decoded as a space)', `host=a.example&port=1&key=+${KEY.slice(1)}`, keyFormat],
    ['a hex key (64 characters)', `host=a.example&port=1&key=${KEY_BYTES.toString('hex')}`, keyFormat],
    ['a 16-byte key', `host=a.example&port=1&key=${Buffer.alloc(16).toString('base64url')}`, keyFormat],
    ['a non-canonical last character ("B" instead of "A")', `host=a.example&port=1&key=${'A'.repeat(42)}B`, keyCanonical],
    ['a non-canonical last character ("9" instead of "8")', `host=a.example&port=1&key=${KEY.slice(0, 42)}9`, keyCanonical],
    ['a non-canonical last character, padded', `host=a.example&port=1&key=${'A'.repeat(42)}D=`, keyCanonical],
    // access_token
    ['two access tokens', `${good()}&access_token=a&access_token=b`, 'access_token: given more than once'],
    // order: host is checked before port, port before key
    ['bad host and bad port: host is named', `host=&port=0&key=x`, 'host: is empty'],
    ['bad port and bad key: port is named', `host=a.example&port=0&key=x`, portRange],
  ];

  it.each(cases)('%s', (_name, query, message) => {
    const result = parse(query);
    expect(result).toBeInstanceOf(Refusal);
    const refusal = result as Refusal;
    expect({ status: refusal.status, code: refusal.code, message: refusal.message }).toEqual({
      status: 400,
      code: 'bad_parameter',
      message,
    });
    expect(refusal.headers).toEqual({});
    expect(JSON.parse(refusal.body())).toEqual({ error: { code: 'bad_parameter', message } });
  });

  it('every refusal message starts with "<param>:" for a parameter the client sent or must send', () => {
    for (const [, query, message] of cases) {
      const param = message.slice(0, message.indexOf(':'));
      expect(['host', 'port', 'key', 'access_token'].includes(param) || new URLSearchParams(query).has(param)).toBe(true);
    }
  });

  it('has at least 25 refusal cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(25);
  });
});
