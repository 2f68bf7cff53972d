/**
 * `autoprox status [--url U] [--token T] [--json]`: the live sessions of a server, from
 * `GET /v0/sessions` with an admin token (`--token` or AUTOPROX_TOKEN), as a table or as the raw
 * JSON. Every failure is one line on stderr and exit code 1 (2 for a bad command line).
 */
import { parseArgs } from 'node:util';
import { SERVE_OPTIONS } from '../config.js';
import { statusTable, type SessionList } from './status-table.js';
import { findUnknownFlag, unknownFlagMessage } from './unknown-flag.js';
import { EXIT_FAILURE, EXIT_OK, UsageError } from './usage.js';

/** Where `status` looks when no --url is given: a server on its defaults (`--host`, `--port`). */
export const DEFAULT_STATUS_URL = `http://${SERVE_OPTIONS.find((o) => o.flag === 'host')!.default}:${SERVE_OPTIONS.find((o) => o.flag === 'port')!.default}`;
/** The environment variable the admin token may come from. */
export const TOKEN_ENV = 'AUTOPROX_TOKEN';
/** How long `status` waits for the server's answer (ms). */
export const STATUS_TIMEOUT_MS = 5000;

const STATUS_OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean' },
} as const;

export const STATUS_USAGE = `usage: autoprox status [--url U] [--token T] [--json]
  --url <url>      the server (default ${DEFAULT_STATUS_URL})
  --token <token>  an admin token (claim apx_admin: true); env ${TOKEN_ENV}
  --json           print GET /v0/sessions as it comes
`;

/** How to get an admin token, for the messages below. */
const MINT_HINT = 'mint an admin token with `autoprox token --sub ops --admin --jwt-secret=S` (S: the server\'s --jwt-secret), or use the admin URL `npm start` printed for this run';

/** What `status` prints and how it exits. */
export interface StatusOutcome {
  exitCode: number;
  stdout: string;
  stderr: string;
}

const fail = (line: string): StatusOutcome => ({ exitCode: EXIT_FAILURE, stdout: '', stderr: `autoprox status: ${line}\n` });

/** The `error` of a refusal body (`{"error":{"code","message"}}`), as "code: message". */
function refusalText(body: string): string {
  try {
    const { error } = JSON.parse(body) as { error?: { code?: string; message?: string } };
    if (error?.code) return error.message ? `${error.code}: ${error.message}` : error.code;
  } catch {
    // not a refusal body: say nothing of it
  }
  return '';
}

/** `--url` as the base of the API: http(s), and ws(s) taken as the same server. */
function baseUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text.replace(/^ws(s?):/, 'http$1:'));
  } catch {
    throw new UsageError(`autoprox status: --url must be an http:// or https:// URL, got "${text}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`autoprox status: --url must be an http:// or https:// URL, got "${text}"`);
  return url;
}

/** Runs `status` against the server; `fetchImpl` is the network edge. */
export async function statusCommand(args: string[], env: NodeJS.ProcessEnv, fetchImpl: typeof fetch = fetch): Promise<StatusOutcome> {
  const unknown = findUnknownFlag(args, STATUS_OPTIONS);
  if (unknown !== null) throw new UsageError(unknownFlagMessage('status', unknown, Object.keys(STATUS_OPTIONS)));
  let values;
  try {
    ({ values } = parseArgs({ args, options: STATUS_OPTIONS, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError(`autoprox status: ${(err as Error).message.split('\n')[0]}`);
  }
  if (values.help) return { exitCode: EXIT_OK, stdout: STATUS_USAGE, stderr: '' };
  const base = baseUrl(values.url ?? DEFAULT_STATUS_URL);
  const shown = base.origin;
  const token = values.token ?? env[TOKEN_ENV];
  if (!token) throw new UsageError(`autoprox status: needs an admin token, as --token T or ${TOKEN_ENV}: ${MINT_HINT}`);

  let response: Response;
  try {
    response = await fetchImpl(new URL('/v0/sessions', base), {
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
      signal: AbortSignal.timeout(STATUS_TIMEOUT_MS),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    return fail(`no autoprox server answers at ${shown} (${cause}): start one with \`npm start\` or \`autoprox serve\`, or give --url`);
  }
  const body = await response.text();
  const why = refusalText(body);
  if (response.status === 401) return fail(`the token is refused (HTTP 401${why ? ` ${why}` : ''}): ${MINT_HINT}`);
  if (response.status === 403) return fail(`the token is not an admin token (HTTP 403${why ? ` ${why}` : ''}): ${MINT_HINT}`);
  if (!response.ok) return fail(`${shown}/v0/sessions answered HTTP ${response.status}${why ? ` (${why})` : ''}`);
  let list: SessionList;
  try {
    list = JSON.parse(body) as SessionList;
    if (!Array.isArray(list.sessions)) throw new Error('no sessions array');
  } catch {
    return fail(`${shown}/v0/sessions did not answer with the sessions API's JSON: is that an autoprox server?`);
  }
  if (values.json) return { exitCode: EXIT_OK, stdout: body.endsWith('\n') ? body : `${body}\n`, stderr: '' };
  return { exitCode: EXIT_OK, stdout: `${statusTable(list).join('\n')}\n`, stderr: '' };
}
