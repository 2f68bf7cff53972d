import { describe, expect, it } from 'vitest';
import { envName, LOG_LEVELS, resolveConfig, SERVE_OPTIONS, type RawFlags, type ServeConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';

function configError(flags: RawFlags, env: NodeJS.ProcessEnv = {}): ConfigError {
  try {
    resolveConfig(flags, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`resolveConfig(${JSON.stringify(flags)}, ${JSON.stringify(env)}) did not throw`);
}

const DEFAULTS: ServeConfig = {
  host: '127.0.0.1',
  port: 8080,
  udpPort: 40000,
  udpBind4: '0.0.0.0',
  udpBind6: '::',
  ipv6: true,
  ipv6Required: false,
  jwtSecret: null,
  punchMs: 200,
  heartbeatMs: 1000,
  peerTimeoutMs: 5000,
  fallbackMs: 3000,
  punchTimeoutMs: 60000,
  maxPayload: 1200,
  logLevel: 'info',
  shutdownGraceMs: 5000,
  drainDelayMs: 0,
  jwtPublicKey: null,
  jwksUrl: null,
  jwtIssuer: null,
  jwtAudience: null,
  jwtClockToleranceS: 5,
  sessionOutlivesToken: false,
  maxSessions: 20_000,
  maxSessionsPerSubject: 0,
  upgradesPerIpPerS: 20,
  limitLoopback: false,
  authFailuresPerIp: 10,
  authFailureWindowS: 60,
  authBlockS: 300,
  clientMsgsPerS: 50_000,
  clientBytesPerS: 64 * 1024 * 1024,
  udpOutPerS: 60_000,
  udpPreauthPerS: 10_000,
  udpPreauthTotalPerS: 5_000,
  redisUrl: null,
  allowTargets: null,
  denyTargets: [],
  allowSelfTarget: false,
  inspect: false,
  inspectPort: 4242,
  tlsCert: null,
  tlsKey: null,
  trustProxy: [],
  wsPingMs: 30_000,
  stun: [],
  relay: [],
  relaySecret: null,
  relayAfterMs: 2000,
};

describe('resolveConfig: defaults', () => {
  it('no flags and no environment give the documented defaults', () => {
    expect(resolveConfig({}, {})).toEqual(DEFAULTS);
  });

  it('the environment defaults to empty (process.env is not read implicitly)', () => {
    expect(resolveConfig({})).toEqual(DEFAULTS);
  });

  it('unrelated environment variables are ignored', () => {
    expect(resolveConfig({}, { PORT: '1', AUTOPROX: 'x', AUTOPROX_UNKNOWN: 'y', autoprox_port: '2' })).toEqual(DEFAULTS);
  });

  it('flags explicitly undefined count as not given', () => {
    expect(resolveConfig({ port: undefined, 'no-ipv6': undefined }, {})).toEqual(DEFAULTS);
  });
});

describe('envName', () => {
  it.each([
    ['port', 'AUTOPROX_PORT'],
    ['udp-port', 'AUTOPROX_UDP_PORT'],
    ['no-ipv6', 'AUTOPROX_NO_IPV6'],
    ['peer-timeout-ms', 'AUTOPROX_PEER_TIMEOUT_MS'],
    ['jwt-secret', 'AUTOPROX_JWT_SECRET'],
  ])('%s → %s', (flag, name) => {
    expect(envName(flag)).toBe(name);
  });
});

describe('resolveConfig: every option from flag and from environment', () => {
  const cases: Array<[string, string, Partial<ServeConfig>]> = [
    ['host', '0.0.0.0', { host: '0.0.0.0' }],
    ['port', '0', { port: 0 }],
    ['port', '65535', { port: 65535 }],
    ['udp-port', '40001', { udpPort: 40001 }],
    ['udp-bind4', '192.0.2.1', { udpBind4: '192.0.2.1' }],
    ['udp-bind6', '2001:db8::1', { udpBind6: '2001:db8::1', ipv6Required: true }],
    ['jwt-secret', 's3cret', { jwtSecret: 's3cret' }],
    ['punch-ms', '10', { punchMs: 10 }],
    ['heartbeat-ms', '2000', { heartbeatMs: 2000 }],
    ['peer-timeout-ms', '9000', { peerTimeoutMs: 9000 }],
    ['fallback-ms', '0', { fallbackMs: 0 }],
    ['punch-timeout-ms', '2147483647', { punchTimeoutMs: 2_147_483_647 }],
    ['max-payload', '65457', { maxPayload: 65457 }],
    ['log-level', 'debug', { logLevel: 'debug' }],
    ['shutdown-grace-ms', '0', { shutdownGraceMs: 0 }],
    ['drain-delay-ms', '1500', { drainDelayMs: 1500 }],
    ['jwt-public-key', '/etc/autoprox/key.pem', { jwtPublicKey: '/etc/autoprox/key.pem' }],
    ['jwks-url', 'https://auth.example/.well-known/jwks.json', { jwksUrl: 'https://auth.example/.well-known/jwks.json' }],
    ['jwt-issuer', 'https://auth.example/', { jwtIssuer: 'https://auth.example/' }],
    ['jwt-audience', 'autoprox', { jwtAudience: 'autoprox' }],
    ['jwt-clock-tolerance-s', '0', { jwtClockToleranceS: 0 }],
    ['session-outlives-token', 'true', { sessionOutlivesToken: true }],
    ['max-sessions', '5', { maxSessions: 5 }],
    ['max-sessions-per-subject', '3', { maxSessionsPerSubject: 3 }],
    ['limit-loopback', 'true', { limitLoopback: true }],
    ['upgrades-per-ip-per-s', '0', { upgradesPerIpPerS: 0 }],
    ['auth-failures-per-ip', '3', { authFailuresPerIp: 3 }],
    ['auth-failure-window-s', '10', { authFailureWindowS: 10 }],
    ['auth-block-s', '1', { authBlockS: 1 }],
    ['client-msgs-per-s', '0', { clientMsgsPerS: 0 }],
    ['client-bytes-per-s', '1000', { clientBytesPerS: 1000 }],
    ['udp-out-per-s', '50', { udpOutPerS: 50 }],
    ['udp-preauth-per-s', '0', { udpPreauthPerS: 0 }],
    ['udp-preauth-total-per-s', '500', { udpPreauthTotalPerS: 500 }],
    ['redis-url', 'redis://127.0.0.1:6379/0', { redisUrl: 'redis://127.0.0.1:6379/0' }],
    ['allow-self-target', 'true', { allowSelfTarget: true }],
    ['inspect', '1', { inspect: true }],
    ['inspect-port', '0', { inspectPort: 0 }],
    ['ws-ping-ms', '500', { wsPingMs: 500 }],
    ['stun', 'stun.example.net:3478,[2001:db8::1]:3478', { stun: [{ host: 'stun.example.net', port: 3478, text: 'stun.example.net:3478' }, { host: '2001:db8::1', port: 3478, text: '[2001:db8::1]:3478' }] }],
    ['relay-secret', 's3cret', { relaySecret: 's3cret' }],
    ['relay-after-ms', '0', { relayAfterMs: 0 }],
  ];

  it.each(cases)('--%s %s', (flag, value, expected) => {
    expect(resolveConfig({ [flag]: value }, {})).toEqual({ ...DEFAULTS, ...expected });
  });

  it.each(cases)('%s from %s in the environment', (flag, value, expected) => {
    expect(resolveConfig({}, { [envName(flag)]: value })).toEqual({ ...DEFAULTS, ...expected });
  });

  it('target lists parse into rules, in order', () => {
    const config = resolveConfig({ 'allow-targets': '10.0.0.0/8, [2001:db8::/32]:40000-40100', 'deny-targets': '192.0.2.7/32:9' }, {});
    expect(config.allowTargets!.map((r) => [r.text, r.family, r.ports])).toEqual([
      ['10.0.0.0/8', 'ipv4', null],
      ['[2001:db8::/32]:40000-40100', 'ipv6', [40000, 40100]],
    ]);
    expect(config.denyTargets.map((r) => [r.text, r.ports])).toEqual([['192.0.2.7/32:9', [9, 9]]]);
  });

  it.each([
    ['allow-targets', '10.0.0.0/33', '--allow-targets: "10.0.0.0/33": the prefix must be 0-32'],
    ['deny-targets', 'nowhere', '--deny-targets: "nowhere": "nowhere" is not an IP address'],
    ['deny-targets', '10.0.0.1:70000', '--deny-targets: "10.0.0.1:70000": the port must be 1-65535 or a range like 40000-40100'],
    ['jwks-url', 'ftp://x/keys', '--jwks-url: expected a http:// or https:// URL, got "ftp://x/keys"'],
    ['redis-url', 'http://localhost', '--redis-url: expected a redis:// or rediss:// URL, got "http://localhost"'],
  ])('refuses --%s %s', (flag, value, message) => {
    const err = configError({ [flag]: value });
    expect(err.option).toBe(flag);
    expect(err.message).toBe(message);
  });

  it.each([
    ['192.0.2.1', '--stun: "192.0.2.1" is not HOST:PORT'],
    ['2001:db8::1:3478', '--stun: "2001:db8::1:3478" is not HOST:PORT (write IPv6 literals in brackets: [2001:db8::1]:3478)'],
    ['a.test:0', '--stun: "a.test:0": the port must be from 1 to 65535'],
    [Array.from({ length: 17 }, (_, i) => `s${i}.test:3478`).join(','), '--stun: at most 16 servers, got 17'],
  ])('refuses --stun %s', (value, message) => {
    const err = configError({ stun: value });
    expect(err.option).toBe('stun');
    expect(err.message).toBe(message);
  });

  it('takes --relay (repeatable, [v6]:port) with --relay-secret, and refuses it without', () => {
    expect(resolveConfig({ relay: 'relay.example.net:3478,[2001:db8::9]:3478', 'relay-secret': 'x' }, {})).toEqual({
      ...DEFAULTS,
      relay: [{ host: 'relay.example.net', port: 3478, text: 'relay.example.net:3478' }, { host: '2001:db8::9', port: 3478, text: '[2001:db8::9]:3478' }],
      relaySecret: 'x',
    });
    expect(resolveConfig({}, { AUTOPROX_RELAY: '192.0.2.9:3478', AUTOPROX_RELAY_SECRET: 'x' }).relay.map((r) => r.text)).toEqual(['192.0.2.9:3478']);
    const err = configError({ relay: '192.0.2.9:3478' });
    expect(err.option).toBe('relay-secret');
    expect(err.message).toBe("--relay needs --relay-secret (the relays' admission secret, their own --relay-secret)");
    expect(configError({ relay: '2001:db8::9:3478', 'relay-secret': 'x' }).message).toBe(
      '--relay: "2001:db8::9:3478" is not HOST:PORT (write IPv6 literals in brackets: [2001:db8::1]:3478)',
    );
    expect(configError({ 'relay-after-ms': '-1' }).option).toBe('relay-after-ms');
  });

  it('takes TLS files together only', () => {
    expect(resolveConfig({ 'tls-cert': '/c.pem', 'tls-key': '/k.pem' }, {})).toMatchObject({ tlsCert: '/c.pem', tlsKey: '/k.pem' });
    const err = configError({ 'tls-cert': '/c.pem' });
    expect(err.option).toBe('tls-key');
    expect(err.message).toBe('--tls-cert and --tls-key go together: --tls-key is missing');
  });

  it('parses --trust-proxy into rules', () => {
    expect(resolveConfig({ 'trust-proxy': '127.0.0.1/32,::1' }, {}).trustProxy.map((r) => r.text)).toEqual(['127.0.0.1/32', '::1']);
  });

  it('refuses two ways of verifying tokens at once', () => {
    const err = configError({ 'jwt-secret': 's', 'jwks-url': 'https://a/b' });
    expect(err.option).toBe('jwks-url');
    expect(err.message).toMatch(/only one way to verify tokens/);
  });

  it('every option in SERVE_OPTIONS is covered above (except no-ipv6 and the target lists)', () => {
    const covered = new Set(cases.map(([flag]) => flag));
    expect(SERVE_OPTIONS.map((o) => o.flag).filter((f) => !covered.has(f))).toEqual(['no-ipv6', 'allow-targets', 'deny-targets', 'tls-cert', 'tls-key', 'trust-proxy', 'relay']);
  });

  it('whole numbers may carry surrounding spaces and leading zeros', () => {
    expect(resolveConfig({ port: ' 0080 ' }, {}).port).toBe(80);
  });

  it.each(LOG_LEVELS)('log level %s is accepted', (level) => {
    expect(resolveConfig({ 'log-level': level }, {}).logLevel).toBe(level);
  });
});

describe('resolveConfig: precedence flag > environment > default', () => {
  it('a flag beats the environment', () => {
    const config = resolveConfig({ 'udp-port': '1111', 'log-level': 'warn' }, { AUTOPROX_UDP_PORT: '2222', AUTOPROX_LOG_LEVEL: 'trace' });
    expect(config.udpPort).toBe(1111);
    expect(config.logLevel).toBe('warn');
  });

  it('the environment beats the default', () => {
    expect(resolveConfig({}, { AUTOPROX_UDP_PORT: '2222' }).udpPort).toBe(2222);
  });

  it('a good flag hides a bad environment value (the environment is not even parsed)', () => {
    expect(resolveConfig({ 'udp-port': '1111' }, { AUTOPROX_UDP_PORT: 'nonsense' }).udpPort).toBe(1111);
  });

  it('options mix sources independently', () => {
    const config = resolveConfig({ port: '1' }, { AUTOPROX_UDP_PORT: '2', AUTOPROX_JWT_SECRET: 'env-secret' });
    expect(config).toEqual({ ...DEFAULTS, port: 1, udpPort: 2, jwtSecret: 'env-secret' });
  });
});

describe('resolveConfig: IPv6 switches', () => {
  it.each<[string, RawFlags, NodeJS.ProcessEnv, boolean]>([
    ['default', {}, {}, true],
    ['--no-ipv6 (parseArgs boolean true)', { 'no-ipv6': true }, {}, false],
    ['--no-ipv6 false', { 'no-ipv6': false }, {}, true],
    ['AUTOPROX_NO_IPV6=1', {}, { AUTOPROX_NO_IPV6: '1' }, false],
    ['AUTOPROX_NO_IPV6=true', {}, { AUTOPROX_NO_IPV6: 'true' }, false],
    ['AUTOPROX_NO_IPV6=YES', {}, { AUTOPROX_NO_IPV6: 'YES' }, false],
    ['AUTOPROX_NO_IPV6=" True "', {}, { AUTOPROX_NO_IPV6: ' True ' }, false],
    ['AUTOPROX_NO_IPV6=0', {}, { AUTOPROX_NO_IPV6: '0' }, true],
    ['AUTOPROX_NO_IPV6=false', {}, { AUTOPROX_NO_IPV6: 'false' }, true],
    ['AUTOPROX_NO_IPV6=no', {}, { AUTOPROX_NO_IPV6: 'no' }, true],
    ['AUTOPROX_NO_IPV6 empty', {}, { AUTOPROX_NO_IPV6: '' }, true],
    ['--no-ipv6 beats AUTOPROX_NO_IPV6=0', { 'no-ipv6': true }, { AUTOPROX_NO_IPV6: '0' }, false],
  ])('%s → ipv6 %s', (_name, flags, env, ipv6) => {
    expect(resolveConfig(flags, env).ipv6).toBe(ipv6);
  });

  it.each<[string, RawFlags, NodeJS.ProcessEnv, boolean]>([
    ['default', {}, {}, false],
    ['--udp-bind6 given', { 'udp-bind6': '::' }, {}, true],
    ['--udp-bind6 given with a zone', { 'udp-bind6': 'fe80::1%eth0' }, {}, true],
    ['AUTOPROX_UDP_BIND6 given', {}, { AUTOPROX_UDP_BIND6: '::1' }, true],
    ['--udp-bind4 given', { 'udp-bind4': '0.0.0.0' }, {}, false],
    ['--udp-bind6 with --no-ipv6', { 'udp-bind6': '::1', 'no-ipv6': true }, {}, false],
  ])('%s → ipv6Required %s', (_name, flags, env, required) => {
    expect(resolveConfig(flags, env).ipv6Required).toBe(required);
  });
});

describe('resolveConfig: jwt secret', () => {
  it.each(['-', '--x', '-secret with spaces ', '--no-ipv6', ' padded '])('keeps %j verbatim', (secret) => {
    expect(resolveConfig({ 'jwt-secret': secret }, {}).jwtSecret).toBe(secret);
    expect(resolveConfig({}, { AUTOPROX_JWT_SECRET: secret }).jwtSecret).toBe(secret);
  });
});

describe('resolveConfig: bad values throw ConfigError naming the option', () => {
  const wholeNumber = (name: string, raw: string, unit = ' of ms'): string => `${name}: expected a whole number${unit}, got "${raw}"`;
  const range = (name: string, min: number, max: number, value: number, unit = ' ms'): string =>
    `${name}: must be from ${min} to ${max}${unit}, got ${value}`;

  const cases: Array<[string, string, string]> = [
    // [flag, raw value, message after the "--flag" / "AUTOPROX_FLAG" prefix has been substituted for NAME]
    ['port', 'abc', wholeNumber('NAME', 'abc', '')],
    ['port', '-1', wholeNumber('NAME', '-1', '')],
    ['port', '80.5', wholeNumber('NAME', '80.5', '')],
    ['port', '', wholeNumber('NAME', '', '')],
    ['port', 'NaN', wholeNumber('NAME', 'NaN', '')],
    ['port', '1e3', wholeNumber('NAME', '1e3', '')],
    ['port', '0x50', wholeNumber('NAME', '0x50', '')],
    ['port', '65536', range('NAME', 0, 65535, 65536, '')],
    ['udp-port', '70000', range('NAME', 0, 65535, 70000, '')],
    ['udp-port', 'Infinity', wholeNumber('NAME', 'Infinity', '')],
    ['punch-ms', '9', range('NAME', 10, 60000, 9)],
    ['punch-ms', '60001', range('NAME', 10, 60000, 60001)],
    ['punch-ms', 'fast', wholeNumber('NAME', 'fast')],
    ['heartbeat-ms', '0', range('NAME', 10, 600000, 0)],
    ['heartbeat-ms', '-5', wholeNumber('NAME', '-5')],
    ['peer-timeout-ms', '19', range('NAME', 20, 3600000, 19)],
    ['fallback-ms', '3600001', range('NAME', 0, 3600000, 3600001)],
    ['punch-timeout-ms', '2147483648', range('NAME', 0, 2147483647, 2147483648)],
    ['punch-timeout-ms', '99999999999999999999', range('NAME', 0, 2147483647, 1e20)],
    ['max-payload', '0', range('NAME', 1, 65457, 0, ' bytes')],
    ['max-payload', '65458', range('NAME', 1, 65457, 65458, ' bytes')],
    ['max-payload', '1k', wholeNumber('NAME', '1k', ' of bytes')],
    ['shutdown-grace-ms', '600001', range('NAME', 0, 600000, 600001)],
    ['udp-bind4', '::', 'NAME: expected an IPv4 address, got "::"'],
    ['udp-bind4', '256.0.0.1', 'NAME: expected an IPv4 address, got "256.0.0.1"'],
    ['udp-bind4', 'localhost', 'NAME: expected an IPv4 address, got "localhost"'],
    ['udp-bind4', '', 'NAME: expected an IPv4 address, got ""'],
    ['udp-bind6', '0.0.0.0', 'NAME: expected an IPv6 address, got "0.0.0.0"'],
    ['udp-bind6', '[::1]', 'NAME: expected an IPv6 address, got "[::1]"'],
    ['udp-bind6', '2001:db8::g', 'NAME: expected an IPv6 address, got "2001:db8::g"'],
    ['jwt-secret', '', 'NAME: must not be empty'],
    ['host', '', 'NAME: expected an IP address or a host name, got ""'],
    ['host', '   ', 'NAME: expected an IP address or a host name, got "   "'],
    ['host', 'not a host!', 'NAME: expected an IP address or a host name, got "not a host!"'],
    ['log-level', 'verbose', 'NAME: expected one of fatal, error, warn, info, debug, trace, silent, got "verbose"'],
    ['log-level', 'INFO', 'NAME: expected one of fatal, error, warn, info, debug, trace, silent, got "INFO"'],
    ['log-level', '', 'NAME: expected one of fatal, error, warn, info, debug, trace, silent, got ""'],
    ['no-ipv6', 'maybe', 'NAME: expected true or false, got "maybe"'],
    ['no-ipv6', '2', 'NAME: expected true or false, got "2"'],
  ];

  it.each(cases)('--%s %j', (flag, raw, message) => {
    const err = configError({ [flag]: raw });
    expect(err.option).toBe(flag);
    expect(err.code).toBe('bad_config');
    expect(err.name).toBe('ConfigError');
    expect(err.message).toBe(message.replace('NAME', `--${flag}`));
  });

  it.each(cases)('%s from the environment: %j', (flag, raw, message) => {
    const err = configError({}, { [envName(flag)]: raw });
    expect(err.option).toBe(flag);
    expect(err.message).toBe(message.replace('NAME', envName(flag)));
    expect(err.message).not.toContain(`--${flag}`);
  });

  it('a boolean given to a value option (a flag without its value) is refused, not coerced', () => {
    expect(configError({ port: true }).message).toBe('--port: expected a whole number, got "true"');
    expect(configError({ 'udp-bind4': true }).message).toBe('--udp-bind4: expected an IPv4 address, got "true"');
    expect(configError({ 'jwt-secret': true }).message).toBe('--jwt-secret: must not be empty');
    expect(configError({ 'log-level': true }).message).toBe(
      '--log-level: expected one of fatal, error, warn, info, debug, trace, silent, got "true"',
    );
  });

  it('the first bad option (in table order) is the one reported', () => {
    const err = configError({ 'punch-ms': 'x', port: 'y' });
    expect(err.option).toBe('port');
  });
});

describe('resolveConfig: cross-field rules', () => {
  it.each<[string, RawFlags, NodeJS.ProcessEnv, string]>([
    [
      'peer timeout equal to the heartbeat',
      { 'heartbeat-ms': '1000', 'peer-timeout-ms': '1000' },
      {},
      '--peer-timeout-ms (1000) must be greater than --heartbeat-ms (1000), or every established session would time out between two heartbeats',
    ],
    [
      'peer timeout below the heartbeat',
      { 'peer-timeout-ms': '999' },
      {},
      '--peer-timeout-ms (999) must be greater than --heartbeat-ms (1000), or every established session would time out between two heartbeats',
    ],
    [
      'heartbeat raised above the default peer timeout',
      { 'heartbeat-ms': '5000' },
      {},
      '--peer-timeout-ms (5000) must be greater than --heartbeat-ms (5000), or every established session would time out between two heartbeats',
    ],
    [
      'the same rule when the values come from the environment',
      {},
      { AUTOPROX_HEARTBEAT_MS: '6000' },
      '--peer-timeout-ms (5000) must be greater than --heartbeat-ms (6000), or every established session would time out between two heartbeats',
    ],
    [
      'peer timeout not above the punch interval',
      { 'heartbeat-ms': '10', 'peer-timeout-ms': '200' },
      {},
      '--peer-timeout-ms (200) must be greater than --punch-ms (200)',
    ],
  ])('%s', (_name, flags, env, message) => {
    const err = configError(flags, env);
    expect(err.option).toBe('peer-timeout-ms');
    expect(err.message).toBe(message);
  });

  it('peer timeout one above the heartbeat is fine', () => {
    expect(resolveConfig({ 'heartbeat-ms': '1000', 'peer-timeout-ms': '1001' }, {})).toMatchObject({ heartbeatMs: 1000, peerTimeoutMs: 1001 });
  });

  it('a single-option error wins over a cross-field one', () => {
    expect(configError({ 'heartbeat-ms': '9000', 'punch-ms': 'x' }).option).toBe('punch-ms');
  });
});
