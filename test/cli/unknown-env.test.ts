import { describe, expect, it } from 'vitest';
import { KNOWN_ENV, unknownEnv, unknownEnvMessage } from '../../src/cli/unknown-env.js';

describe('unknown AUTOPROX_* variables', () => {
  it('finds a typo and suggests the variable meant', () => {
    expect(unknownEnv({ AUTOPROX_UDPPORT: '1', AUTOPROX_UDP_PORT: '2', PATH: '/bin' })).toEqual([{ name: 'AUTOPROX_UDPPORT', suggestion: 'AUTOPROX_UDP_PORT' }]);
    expect(unknownEnvMessage({ name: 'AUTOPROX_UDPPORT', suggestion: 'AUTOPROX_UDP_PORT' })).toBe(
      'AUTOPROX_UDPPORT is not a variable autoprox reads, so it is ignored (did you mean AUTOPROX_UDP_PORT?)',
    );
  });

  it('names nothing when nothing is close, and lists several in name order', () => {
    expect(unknownEnv({ AUTOPROX_ZZZ_TOP: '1', AUTOPROX_JWT_SECRT: 'x' })).toEqual([
      { name: 'AUTOPROX_JWT_SECRT', suggestion: 'AUTOPROX_JWT_SECRET' },
      { name: 'AUTOPROX_ZZZ_TOP', suggestion: null },
    ]);
    expect(unknownEnvMessage({ name: 'AUTOPROX_ZZZ_TOP', suggestion: null })).toBe('AUTOPROX_ZZZ_TOP is not a variable autoprox reads, so it is ignored');
  });

  it('knows every serve and relay option, --config, status\'s token and the test switches; other prefixes are not ours', () => {
    const env = {
      AUTOPROX_UDP_PORT: '0',
      AUTOPROX_NO_IPV6: '1',
      AUTOPROX_CONFIG: 'a.yaml',
      AUTOPROX_TOKEN: 't',
      AUTOPROX_RELAY_SECRET: 's',
      AUTOPROX_REQUIRE_REDIS: '1',
      AUTOPROX_REQUIRE_BROWSER: '1',
      AUTOPROX_REQUIRE_NGINX: '1',
      AUTOPROX_REQUIRE_PYTHON: '1',
      AUTOPROX_SCREENSHOT: '1',
      autoprox_port: '2',
      AUTOPROX: 'x',
      NODE_ENV: 'test',
    };
    expect(unknownEnv(env)).toEqual([]);
    expect(KNOWN_ENV.has('AUTOPROX_JWT_SECRET')).toBe(true);
  });
});
