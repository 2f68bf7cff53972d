/** Usage text and the error for bad command lines (exit code 2). */
import { envName, SERVE_OPTIONS } from '../config.js';

export class UsageError extends Error {
  readonly code = 'usage';
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export function serveUsage(): string {
  const lines = SERVE_OPTIONS.map((o) => {
    const flag = o.kind === 'bool' ? `--${o.flag}` : `--${o.flag} <${o.unit ?? 'value'}>`;
    const def = o.default === null ? '' : ` (default ${o.default})`;
    return `  ${flag.padEnd(32)} ${o.description}${def}; env ${envName(o.flag)}`;
  });
  return [
    'usage: autoprox serve [--config FILE] [options]',
    '',
    `  ${'--config <file>'.padEnd(32)} options from a JSON or YAML file keyed by flag name; env AUTOPROX_CONFIG (flag > env > file > default)`,
    ...lines,
  ].join('\n');
}

export const MAIN_USAGE = `autoprox: WebSocket clients talking peer to peer over hole-punched, encrypted UDP

usage:
  autoprox serve [options]                  run the server (autoprox serve --help for options)
  autoprox relay [options]                  run a relay for servers that cannot punch through (autoprox relay --help)
  autoprox token --sub NAME [--ttl 1h] [--admin] [--max-sessions N] [--targets RULES]
                                            mint an HS256 client token (needs --jwt-secret or AUTOPROX_JWT_SECRET)
  autoprox config print [--config FILE] [serve options]
                                            the effective configuration (flag > env > file > default), secrets masked
  autoprox nginx | systemd [--relay] | dockerfile
                                            print a deployment template (see README, Deployment)
  autoprox keygen                           print a random 32-byte pre-shared key (base64url)
  autoprox connect <ws-url> --host H --port P --key=K --token=T [--ca FILE] [--binary]
                                            pipe stdin to a session, peer data to stdout, status to stderr
  autoprox netcheck [--stun HOST:PORT ...] [--relay HOST:PORT ...] [--json]
                                            this host's public endpoints and NAT mapping, asked of STUN servers and relays
  autoprox status [--url U] [--token T] [--json]
                                            the live sessions of a server (admin token from --token or AUTOPROX_TOKEN)
  autoprox --version
`;

