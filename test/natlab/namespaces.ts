/**
 * Network namespace names and their lifetime. Every name starts with `apx-<pid>-`, the pid of
 * the test process that made it, so parallel runs never collide and the namespaces of a killed
 * run can be told apart (their pid is gone) and removed by the next run.
 */
import { run, runSyncQuiet } from './run.js';

const NAME_PREFIX = 'apx-';
const OWNED_NAME = /^apx-(\d+)-/;

/** `apx-<pid>-`: the prefix of every namespace this process creates. */
export function namespacePrefix(pid = process.pid): string {
  return `${NAME_PREFIX}${pid}-`;
}

/** Namespaces created by this process and not deleted yet (for the exit handler). */
const live = new Set<string>();
/** Processes started inside them (pids), killed before their namespaces go. */
const livePids = new Set<number>();
let exitHandlerInstalled = false;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function listNamespaces(): Promise<string[]> {
  const out = await run(['ip', 'netns', 'list']);
  return out
    .split('\n')
    .map((line) => line.split(' ')[0]!)
    .filter(Boolean);
}

/** Kills what still runs inside `ns` (by pid), then deletes it. */
async function destroyNamespace(ns: string): Promise<void> {
  const pids = await run(['ip', 'netns', 'pids', ns]).catch(() => '');
  for (const pid of pids.split('\n').filter(Boolean).map(Number)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await run(['ip', 'netns', 'del', ns]);
}

/**
 * Removes the lab namespaces of runs whose process no longer exists (a killed or aborted run).
 * Namespaces of a live process, this one's included, are left alone. Returns what it removed.
 */
export async function removeStaleNamespaces(): Promise<string[]> {
  const stale = (await listNamespaces()).filter((ns) => {
    const owner = OWNED_NAME.exec(ns);
    return owner !== null && !isAlive(Number(owner[1]));
  });
  for (const ns of stale) await destroyNamespace(ns);
  return stale;
}

function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  // Last resort when a run ends without its afterEach/afterAll (a crash, process.exit):
  // only synchronous work runs here.
  process.on('exit', () => {
    for (const pid of livePids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const ns of live) runSyncQuiet(['ip', 'netns', 'del', ns]);
  });
}

export async function createNamespace(name: string): Promise<void> {
  installExitHandler();
  await run(['ip', 'netns', 'add', name]);
  live.add(name);
}

export async function deleteNamespace(name: string): Promise<void> {
  await destroyNamespace(name);
  live.delete(name);
}

/** Registers a process started inside a lab namespace, so the exit handler can kill it. */
export function trackPid(pid: number): void {
  livePids.add(pid);
}

export function untrackPid(pid: number): void {
  livePids.delete(pid);
}
