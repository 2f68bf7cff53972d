#!/usr/bin/env node
/** The autoprox command line: serve, token, keygen, connect, status. */
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors.js';
import { StartError } from './errors.js';
import { startFailureLine } from './cli/start-failure.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, MAIN_USAGE, UsageError } from './cli/usage.js';

// Each command loads only what it needs (import() in its case): a relay does not carry the
// server's modules (XState, ws, jose, ...), which costs it CPU per datagram (measured in the
// relay bench: about 0.1x of a bare forwarder's).

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number | 'running'> {
  const [command, ...args] = argv;
  switch (command) {
    case 'serve':
      return (await import('./cli/run-serve.js')).runServe(args);
    case 'relay':
      return (await import('./cli/relay.js')).runRelay(args);
    case 'config': {
      const [sub, ...rest] = args;
      if (sub !== 'print') throw new UsageError('usage: autoprox config print [--config FILE] [serve options]');
      const { configFrom, parseServeFlags } = await import('./cli/serve.js');
      const { printableConfig } = await import('./config-file.js');
      const config = await configFrom(parseServeFlags(rest), process.env);
      process.stdout.write(`${JSON.stringify(printableConfig(config), null, 2)}\n`);
      return EXIT_OK;
    }
    case 'nginx':
      process.stdout.write((await import('./deploy/nginx.js')).nginxConfig());
      return EXIT_OK;
    case 'systemd': {
      if (args.length > 1 || (args.length === 1 && args[0] !== '--relay')) throw new UsageError('usage: autoprox systemd [--relay]');
      process.stdout.write((await import('./deploy/systemd.js')).systemdUnit({ role: args[0] === '--relay' ? 'relay' : 'serve' }));
      return EXIT_OK;
    }
    case 'dockerfile':
      process.stdout.write((await import('./deploy/dockerfile.js')).dockerfile());
      return EXIT_OK;
    case 'token':
      process.stdout.write(`${await (await import('./cli/token.js')).tokenCommand(args, process.env)}\n`);
      return EXIT_OK;
    case 'keygen':
      if (args.length > 0) throw new UsageError('keygen takes no arguments');
      process.stdout.write(`${(await import('./cli/keygen.js')).generateKey()}\n`);
      return EXIT_OK;
    case 'connect': {
      const { CONNECT_USAGE, parseConnectArgs, runConnect } = await import('./cli/connect.js');
      const command = parseConnectArgs(args, process.env);
      if (!command) {
        process.stdout.write(CONNECT_USAGE);
        return EXIT_OK;
      }
      const code = await runConnect(command);
      process.exit(code); // stdin may still be open: leave now
    }
    case 'netcheck': {
      const outcome = await (await import('./cli/netcheck.js')).netcheckCommand(args);
      process.stdout.write(outcome.stdout);
      process.stderr.write(outcome.stderr);
      return outcome.exitCode;
    }
    case 'status': {
      const outcome = await (await import('./cli/status.js')).statusCommand(args, process.env);
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
