/**
 * `autoprox serve` as a process: starts the server and handles signals from the start (one that
 * comes while the server starts stops it gracefully as soon as it is up; a second one exits at
 * once), and SIGHUP (reload the TLS files).
 */
import type { ServerHandle } from '../server.js';
import { serveCommand } from './serve.js';
import { EXIT_FAILURE, EXIT_OK, serveUsage } from './usage.js';

export async function runServe(args: string[]): Promise<number | 'running'> {
  // Signals are handled from the start: one that comes while the server starts stops it
  // gracefully as soon as it is up.
  let handle: ServerHandle | null = null;
  let requested: string | null = null;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(EXIT_FAILURE); // a second signal: stop now
    if (!handle) {
      if (requested) process.exit(EXIT_FAILURE);
      requested = signal;
      return;
    }
    stopping = true;
    process.stderr.write(`autoprox: ${signal}: closing sessions\n`);
    handle.close().then(
      () => process.exit(EXIT_OK),
      () => process.exit(EXIT_FAILURE),
    );
  };
  const onTerm = () => stop('SIGTERM');
  const onInt = () => stop('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  let served: Awaited<ReturnType<typeof serveCommand>>;
  try {
    served = await serveCommand(args, process.env);
  } catch (err) {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    throw err;
  }
  if (served === 'help') {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    process.stdout.write(`${serveUsage()}\n`);
    return EXIT_OK;
  }
  handle = served.handle;
  process.on('SIGHUP', () => {
    served.handle.reloadTls().catch((err: unknown) => {
      process.stderr.write(`autoprox: SIGHUP: the TLS files were not reloaded (the old ones stay): ${(err as Error).message}\n`);
    });
  });
  if (requested) stop(requested);
  return 'running';
}
