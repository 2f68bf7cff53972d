/**
 * Runs the lab's system tools (ip, nft, conntrack, sysctl), inside a namespace or not.
 * Every call is bounded; a failure throws with the command line and the tool's stderr.
 */
import { execFile, execFileSync } from 'node:child_process';

/** PATH for the lab's tools and children: ip, nft and conntrack live in sbin, which a CI PATH may lack. */
export const LAB_PATH = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/sbin', '/usr/bin', '/bin']
  .filter((dir, i, all) => all.indexOf(dir) === i)
  .join(':');
const LAB_ENV = { ...process.env, PATH: LAB_PATH };

/** Longest any single lab command may run (ms): they all take a few ms. */
export const COMMAND_TIMEOUT_MS = 5_000;

export class CommandError extends Error {
  constructor(
    readonly argv: string[],
    readonly stderr: string,
  ) {
    super(`\`${argv.join(' ')}\` failed: ${stderr.trim() || 'no stderr'}`);
    this.name = 'CommandError';
  }
}

/** Runs `argv`, feeding `input` on stdin; resolves with stdout. */
export function run(argv: string[], input?: string): Promise<string> {
  const [file, ...args] = argv;
  return new Promise((resolve, reject) => {
    const child = execFile(file!, args, { timeout: COMMAND_TIMEOUT_MS, encoding: 'utf8', env: LAB_ENV }, (err, stdout, stderr) => {
      if (err) reject(new CommandError(argv, stderr || err.message));
      else resolve(stdout);
    });
    // A tool that exits without reading its stdin closes the pipe: that EPIPE is not a failure.
    child.stdin?.on('error', () => {});
    if (input === undefined) child.stdin?.end();
    else child.stdin?.end(input);
  });
}

/** `run` inside network namespace `ns`. */
export function runIn(ns: string, argv: string[], input?: string): Promise<string> {
  return run(['ip', 'netns', 'exec', ns, ...argv], input);
}

/** Synchronous variant for the process `exit` handler, where nothing asynchronous runs. Never throws. */
export function runSyncQuiet(argv: string[]): string {
  try {
    return execFileSync(argv[0]!, argv.slice(1), { timeout: COMMAND_TIMEOUT_MS, encoding: 'utf8', env: LAB_ENV, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}
