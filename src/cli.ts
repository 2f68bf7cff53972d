#!/usr/bin/env node
/** The autoprox command line: serve, token, keygen, connect, status. */
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors.js';
import { StartError } from './server.js';
import { runServe } from './cli/run-serve.js';
import { runRelay } from './cli/relay.js';
import { startFailureLine } from './cli/start-failure.js';
import { CONNECT_USAGE, parseConnectArgs, runConnect } from './cli/connect.js';
import { generateKey } from './cli/keygen.js';
import { configFrom, parseServeFlags } from './cli/serve.js';
import { printableConfig } from './config-file.js';
import { dockerfile } from './deploy/dockerfile.js';
import { nginxConfig } from './deploy/nginx.js';
import { systemdUnit } from './deploy/systemd.js';
import { statusCommand } from './cli/status.js';
import { netcheckCommand } from './cli/netcheck.js';
import { tokenCommand } from './cli/token.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, MAIN_USAGE, UsageError } from './cli/usage.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number | 'running'> {
  const [command, ...args] = argv;
  switch (command) {
    case 'serve':
      return runServe(args);
    case 'relay':
      return runRelay(args);
    case 'config': {
      const [sub, ...rest] = args;
      if (sub !== 'print') throw new UsageError('usage: autoprox config print [--config FILE] [serve options]');
      const config = await configFrom(parseServeFlags(rest), process.env);
      process.stdout.write(`${JSON.stringify(printableConfig(config), null, 2)}\n`);
      return EXIT_OK;
    }
    case 'nginx':
      process.stdout.write(nginxConfig());
      return EXIT_OK;
    case 'systemd':
      process.stdout.write(systemdUnit());
      return EXIT_OK;
    case 'dockerfile':
      process.stdout.write(dockerfile());
      return EXIT_OK;
    case 'token':
      process.stdout.write(`${await tokenCommand(args, process.env)}\n`);
      return EXIT_OK;
    case 'keygen':
      if (args.length > 0) throw new UsageError('keygen takes no arguments');
      process.stdout.write(`${generateKey()}\n`);
      return EXIT_OK;
    case 'connect': {
      const command = parseConnectArgs(args, process.env);
      if (!command) {
        process.stdout.write(CONNECT_USAGE);
        return EXIT_OK;
      }
      const code = await runConnect(command);
      process.exit(code); // stdin may still be open: leave now
    }
    case 'netcheck': {
      const outcome = await netcheckCommand(args);
      process.stdout.write(outcome.stdout);
      process.stderr.write(outcome.stderr);
      return outcome.exitCode;
    }
    case 'status': {
      const outcome = await statusCommand(args, process.env);
      process.stdout.write(outcome.stdout);
      process.stderr.write(outcome.stderr);
      return outcome.exitCode;
    }
    case '--version':
    case 'version':
      process.stdout.write(`${version()}\n`);
      return EXIT_OK;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(MAIN_USAGE);
      return command === undefined ? EXIT_USAGE : EXIT_OK;
    default:
      throw new UsageError(`unknown command "${command}"\n\n${MAIN_USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 'running') process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError || err instanceof ConfigError) {
      // A message that already names its command (`autoprox serve: ...`) is printed as it is.
      process.stderr.write(err.message.startsWith('autoprox ') ? `${err.message}\n` : `autoprox: ${err.message}\n`);
      process.exitCode = EXIT_USAGE;
    } else if (err instanceof StartError) {
      process.stderr.write(`autoprox: could not start: ${startFailureLine(err)}\n`);
      process.exitCode = EXIT_FAILURE;
    } else {
      process.stderr.write(`autoprox: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = EXIT_FAILURE;
    }
  },
);
