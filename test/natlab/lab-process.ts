/**
 * autoprox processes inside lab namespaces (`ip netns exec <ns> node dist/src/cli.js ...`, which
 * execs node in place, so the child's pid is node's): servers and relays on their `listening`
 * line, and `autoprox connect` clients whose stdin/stdout/stderr the test drives and reads.
 * Every wait is bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import type { StatusFrame } from '../../machines/types.js';
import type { EndpointsFrame } from '../../src/client/frames.js';
import { assertBuilt, CLI } from '../helpers/server-process.js';
import { Waiter } from '../helpers/waiter.js';
import { trackPid, untrackPid } from './namespaces.js';
import { LAB_PATH, runIn } from './run.js';
import type { Host } from './topology.js';

/** How long a server may take to print its `listening` line (ms). */
export const SERVER_START_TIMEOUT_MS = 10_000;
/** How long a process may take to exit once told to (ms), before it is killed. */
export const EXIT_TIMEOUT_MS = 5_000;
/** Default bound of a client wait (ms). */
export const CLIENT_WAIT_MS = 10_000;
/** Log lines kept per process, for the report of a failed case. */
const MAX_KEPT_LINES = 400;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A child process inside a namespace, with its output lines kept. */
class NsProcess {
  readonly proc: ChildProcess;
  readonly exited: Promise<Exit>;
  readonly log: string[] = [];
  exit: Exit | null = null;
  protected readonly waiter = new Waiter();

  constructor(
    readonly label: string,
    ns: string,
    args: string[],
  ) {
    assertBuilt();
    this.proc = spawn('ip', ['netns', 'exec', ns, process.execPath, CLI, ...args], {
      env: { PATH: LAB_PATH },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const pid = this.proc.pid;
    if (pid !== undefined) trackPid(pid);
    // 'close', not 'exit': it comes after the last line of output, so no frame is missed.
    this.exited = new Promise((resolve) =>
      this.proc.once('close', (code, signal) => {
        if (pid !== undefined) untrackPid(pid);
        this.exit = { code, signal };
        this.waiter.notify();
        resolve(this.exit);
      }),
    );
    this.proc.stdin!.on('error', () => {}); // writes after exit: the waits report what matters
  }

  protected keep(stream: string, line: string): void {
    this.log.push(`${stream}: ${line}`);
    if (this.log.length > MAX_KEPT_LINES) this.log.shift();
  }

  get running(): boolean {
    return this.exit === null;
  }

  /** Sends `signal`, waits for the exit; SIGKILL after EXIT_TIMEOUT_MS. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<Exit> {
    if (!this.running) return this.exit!;
    this.proc.kill(signal);
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), EXIT_TIMEOUT_MS);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A JSON log line of a server or relay (pino: `time` is epoch ms). */
export interface LogEntry {
  msg?: string;
  time?: number;
  [field: string]: unknown;
}

/** A process that logs JSON lines on stdout and is ready at its `listening` line (serve, relay). */
class NsService extends NsProcess {
  /** stdout's JSON log lines, in order. */
  readonly entries: LogEntry[] = [];
  url = '';

  /** Starts the process and waits for its `listening` line; kills it if that does not come. */
  protected static async launch<S extends NsService>(service: S): Promise<S> {
    try {
      await service.#listening();
    } catch (err) {
      await service.stop('SIGKILL');
      throw err;
    }
    return service;
  }

  /** The first log line with `msg`, once it is there. */
  waitForLog(msg: string, timeoutMs = CLIENT_WAIT_MS): Promise<LogEntry> {
    const find = () => this.entries.find((e) => e.msg === msg);
    return this.waiter.until(() => find() !== undefined, timeoutMs, () => `${this.label} to log "${msg}"`).then(() => find()!);
  }

  #listening(): Promise<void> {
    createInterface({ input: this.proc.stderr! }).on('line', (line) => this.keep('stderr', line));
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      this.keep('stdout', line);
      const entry = JSON.parse(line) as LogEntry;
      this.entries.push(entry);
      if (entry.msg === 'listening' && typeof entry.url === 'string') this.url = entry.url;
      this.waiter.notify();
    });
    return this.waiter.until(
      () => this.url !== '' || !this.running,
      SERVER_START_TIMEOUT_MS,
      () => `${this.label} to listen; output:\n${this.log.join('\n')}`,
    ).then(() => {
      if (!this.url) throw new Error(`${this.label} exited ${JSON.stringify(this.exit)} before listening:\n${this.log.join('\n')}`);
    });
  }
}

export class LabServer extends NsService {
  /** Starts `autoprox serve` in `host`'s namespace and waits for its `listening` line. */
  static start(host: Host, flags: string[]): Promise<LabServer> {
    return NsService.launch(new LabServer(`server@${host.name}`, host.ns, ['serve', '--host', '127.0.0.1', '--port', '0', ...flags]));
  }

  get wsUrl(): string {
    return `${this.url.replace(/^http/, 'ws')}/v0/ws/proxy`;
  }
}

/** `autoprox relay` on one IPv4 address of namespace `ns` (the lab's STUN servers and relays). */
export class LabRelay extends NsService {
  private constructor(
    label: string,
    readonly ns: string,
    args: string[],
  ) {
    super(label, ns, args);
  }

  static start(ns: string, address: string, udpPort: number, flags: string[] = []): Promise<LabRelay> {
    const args = ['relay', '--udp-port', String(udpPort), '--udp-bind4', address, '--no-ipv6', '--host', '127.0.0.1', '--port', '0', ...flags];
    return NsService.launch(new LabRelay(`relay@${address}`, ns, args));
  }

  /** Its /metrics text, fetched from inside its namespace (its HTTP listens on that namespace's loopback). */
  async metrics(): Promise<string> {
    const script = `fetch(${JSON.stringify(`${this.url}/metrics`)}).then((r) => r.text()).then((t) => process.stdout.write(t), (e) => { console.error(String(e)); process.exit(1); })`;
    return runIn(this.ns, [process.execPath, '-e', script]);
  }
}

export interface ClientOptions {
  /** Candidate peer addresses, in order (`--host`, repeated). */
  hosts: string[];
  /** The peer server's UDP port. */
  port: number;
  key: string;
  token: string;
}

/** A frame and when the test process read it (performance.now(), ms). */
export interface Timed<F> {
  frame: F;
  at: number;
}

export type TimedStatus = Timed<StatusFrame>;

export class LabClient extends NsProcess {
  readonly statuses: TimedStatus[] = [];
  /** `endpoints` frames (servers with --stun): the server's public endpoints. */
  readonly endpoints: Array<Timed<EndpointsFrame>> = [];
  readonly errors: Array<{ code: string; message: string }> = [];
  /** Peer messages, one per stdout line. */
  readonly data: string[] = [];

  /** Runs `autoprox connect` in `host`'s namespace against `server` (which must run there too). */
  constructor(host: Host, server: LabServer, options: ClientOptions) {
    super(`client@${host.name}`, host.ns, [
      'connect',
      server.wsUrl,
      ...options.hosts.flatMap((h) => ['--host', h]),
      '--port',
      String(options.port),
      `--key=${options.key}`,
      `--token=${options.token}`,
    ]);
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      this.data.push(line);
      this.waiter.notify();
    });
    createInterface({ input: this.proc.stderr! }).on('line', (line) => {
      const at = performance.now();
      this.keep('stderr', line);
      if (line.startsWith('{')) {
        const frame = JSON.parse(line) as StatusFrame | EndpointsFrame | { type: 'error'; code: string; message: string };
        if (frame.type === 'status') this.statuses.push({ frame, at });
        else if (frame.type === 'endpoints') this.endpoints.push({ frame, at });
        else this.errors.push(frame);
      }
      this.waiter.notify();
    });
  }

  get status(): StatusFrame | undefined {
    return this.statuses.at(-1)?.frame;
  }

  /** Statuses as `STATUS/family` (and `(reason)`), for trail assertions. */
  trail(): string[] {
    return this.statuses.map(({ frame: s }) => `${s.status}${s.family ? `/${s.family}` : ''}${s.reason ? `(${s.reason})` : ''}`);
  }

  /** When the CONNECTED frame (sent at the WebSocket upgrade) was read. */
  get openedAt(): number | null {
    return this.statuses.find((s) => s.frame.status === 'CONNECTED')?.at ?? null;
  }

  /** Waits until the latest status is `status` with `fields`; resolves with its timed frame. */
  async waitForStatus(status: StatusFrame['status'], fields: Partial<StatusFrame> = {}, timeoutMs = CLIENT_WAIT_MS): Promise<TimedStatus> {
    const matches = () => {
      const last = this.status;
      return !!last && last.status === status && Object.entries(fields).every(([k, v]) => last[k as keyof StatusFrame] === v);
    };
    await this.waiter.until(
      () => matches() || !this.running,
      timeoutMs,
      () => `${this.label}: ${status} ${JSON.stringify(fields)}; trail: ${JSON.stringify(this.trail())}`,
    );
    if (!matches()) {
      throw new Error(`${this.label} exited ${JSON.stringify(this.exit)} before ${status}; trail ${JSON.stringify(this.trail())}\n${this.log.join('\n')}`);
    }
    return this.statuses.at(-1)!;
  }

  /** Resolves once `predicate` holds, re-checked on every line the client prints. */
  until(predicate: () => boolean, what: string, timeoutMs = CLIENT_WAIT_MS): Promise<void> {
    return this.waiter.until(predicate, timeoutMs, () => `${this.label}: ${what}; trail: ${JSON.stringify(this.trail())}`);
  }

  /** The first `endpoints` frame, once it is there. */
  waitForEndpoints(timeoutMs = CLIENT_WAIT_MS): Promise<Timed<EndpointsFrame>> {
    return this.waiter
      .until(() => this.endpoints.length > 0 || !this.running, timeoutMs, () => `${this.label}: an endpoints frame; trail: ${JSON.stringify(this.trail())}`)
      .then(() => {
        if (!this.endpoints[0]) throw new Error(`${this.label} exited ${JSON.stringify(this.exit)} before an endpoints frame\n${this.log.join('\n')}`);
        return this.endpoints[0];
      });
  }

  waitForData(count: number, timeoutMs = CLIENT_WAIT_MS): Promise<string[]> {
    return this.waiter
      .until(() => this.data.length >= count, timeoutMs, () => `${this.label}: ${count} messages (have ${this.data.length})`)
      .then(() => this.data);
  }

  waitForExit(timeoutMs = CLIENT_WAIT_MS): Promise<Exit> {
    return this.waiter.until(() => !this.running, timeoutMs, () => `${this.label} to exit`).then(() => this.exit!);
  }

  /** One message to the peer (a line on stdin; it must not contain a newline). */
  send(message: string): void {
    this.proc.stdin!.write(`${message}\n`);
  }

  /** Closes the session the way a person does (SIGINT: the client closes its WebSocket with 1000). */
  close(): Promise<Exit> {
    return this.stop('SIGINT');
  }
}
