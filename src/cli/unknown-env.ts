/**
 * AUTOPROX_* environment variables that nothing reads (a typo like AUTOPROX_UDPPORT would
 * otherwise be ignored in silence): `serve` warns about each once at start, with the closest
 * known name. Pure: the environment and the known names in, warnings out.
 */
import { envName, SERVE_OPTIONS } from '../config.js';
import { RELAY_OPTIONS } from '../relay/relay-config.js';
import { closest } from '../did-you-mean.js';
import { TOKEN_ENV } from './status.js';

const PREFIX = 'AUTOPROX_';
/** Test and CI switches (test/helpers, .ci/run): read by the tests, never by the server. */
const TEST_SWITCH_PREFIX = 'AUTOPROX_REQUIRE_';

/**
 * Every AUTOPROX_* name something of autoprox reads: the options of `serve` and `relay`,
 * `--config` (AUTOPROX_CONFIG), the admin token of `status`, and the tests' switches.
 */
export const KNOWN_ENV: ReadonlySet<string> = new Set([
  ...SERVE_OPTIONS.map((o) => envName(o.flag)),
  ...RELAY_OPTIONS.map((o) => envName(o.flag)),
  'AUTOPROX_CONFIG',
  TOKEN_ENV,
  'AUTOPROX_SCREENSHOT',
]);

export interface UnknownEnv {
  name: string;
  /** The known name it is closest to, if any is within two edits. */
  suggestion: string | null;
}

/** The AUTOPROX_* variables of `env` that are not `known`, in name order. */
export function unknownEnv(env: NodeJS.ProcessEnv, known: ReadonlySet<string> = KNOWN_ENV): UnknownEnv[] {
  return Object.keys(env)
    .filter((name) => name.startsWith(PREFIX) && !known.has(name) && !name.startsWith(TEST_SWITCH_PREFIX))
    .sort()
    .map((name) => ({ name, suggestion: closest(name, known) }));
}

/** The warning for one of them. */
export function unknownEnvMessage({ name, suggestion }: UnknownEnv): string {
  return `${name} is not a variable autoprox reads, so it is ignored${suggestion ? ` (did you mean ${suggestion}?)` : ''}`;
}
