/**
 * Child processes of the benchmark: started in their own process group, read from /proc,
 * and all killed (the whole group) when the run ends, however it ends.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (`getconf CLK_TCK`; 100 on Linux). */
export const CLOCK_TICKS_PER_S = 100;
/** How long a process may take to print its `listening` line (ms). */
const START_TIMEOUT_MS = 15_000;
/** How long a process gets after SIGTERM before SIGKILL (ms). */
const STOP_GRACE_MS = 8_000;

const children = new Set<ChildProcess>();

/** Kills the process group of every child still running (SIGKILL). Safe to call more than once. */
export function killAll(): void {
  for (const child of children) killGroup(child, 'SIGKILL');
  children.clear();
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // the whole group: the child and anything it started
  } catch {
    // ESRCH: the group is already gone.
  }
}

let hooked = false;
/** Makes sure children die with the bench: on exit, on signals, on uncaught errors. */
export function killChildrenOnExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      killAll();
      process.exit(130);
    });
  }
}

/** Stops one child: SIGTERM to its group, SIGKILL after a grace period. */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    children.delete(child);
    return;
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  killGroup(child, 'SIGTERM');
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
  children.delete(child);
}

export interface Listening {
  url: string;
  udp: { ipv4: number; ipv6?: number | null };
}

/**
 * Starts a server process (autoprox or a bare relay) that prints JSON lines on stdout, the
 * first `"msg":"listening"` line saying where it listens. Later stdout lines are read and dropped
 * (or, with BENCH_STDOUT_DIR=DIR, written to DIR/<pid>.out: e.g. the output of BENCH_NODE_ARGS=--trace-gc-nvp).
 */
export async function startListener(command: string, args: string[]): Promise<{ proc: ChildProcess; listening: Listening }> {
  const proc = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
  children.add(proc);
  const stderr: string[] = [];
  createInterface({ input: proc.stderr! }).on('line', (line) => {
    if (stderr.length < 50) stderr.push(line);
  });
  const listening = await new Promise<Listening>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')}: no listening line within ${START_TIMEOUT_MS} ms: ${stderr.join('\n')}`)), START_TIMEOUT_MS);
    let found = false;
    const keep = process.env.BENCH_STDOUT_DIR ? createWriteStream(`${process.env.BENCH_STDOUT_DIR}/${proc.pid}.out`) : null;
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      keep?.write(`${line}\n`);
      if (found || !line.includes('"listening"')) return;
      found = true;
      clearTimeout(timer);
      resolve(JSON.parse(line) as Listening);
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      if (!found) reject(new Error(`${args.join(' ')} exited with ${code}: ${stderr.join('\n')}`));
    });
  });
  return { proc, listening };
}

/** Forks a TypeScript module (through tsx) with an IPC channel, in its own process group. */
export function forkTs(modulePath: string, args: string[] = []): ChildProcess {
  const proc = fork(modulePath, args, {
    execArgv: ['--import', 'tsx'],
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(proc);
  return proc;
}

export interface CpuSample {
  /** utime + stime of every thread of the process (s). */
  cpuS: number;
  /** When it was read (ms, this process's monotonic clock). */
  at: number;
}

/** CPU time of a process so far, from /proc/<pid>/stat (utime + stime, in clock ticks). */
export function cpuOf(pid: number): CpuSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Field 2 (comm) may contain spaces: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return { cpuS: (utime + stime) / CLOCK_TICKS_PER_S, at: performance.now() };
}

/** Resident set size of a process (bytes), from /proc/<pid>/status. */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
