/**
 * Per-case timings: for every client, the time from its WebSocket open (the CONNECTED frame,
 * sent at the upgrade) to its first UDP_ESTABLISHED; per case, the punch time (from the later
 * of the two opens to the later of the two UDP_ESTABLISHED); plus named extras such as a
 * recovery time. Printed as a table and written as JSON.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { release } from 'node:os';
import type { LabClient } from './lab-process.js';

export interface CaseResult {
  name: string;
  outcome: string;
  /** Client label -> ms from WebSocket open to its first UDP_ESTABLISHED (null: never). */
  openToEstablishedMs: Record<string, number | null>;
  /** Later open -> later first UDP_ESTABLISHED of the case's first two clients (null: not both). */
  punchMs: number | null;
  /** Named extra timings (ms) or facts the case reports. */
  extra: Record<string, number | string>;
}

const round = (ms: number) => Math.round(ms * 10) / 10;

interface Current {
  name: string;
  clients: Array<[string, LabClient]>;
  extra: Record<string, number | string>;
}

export class LabReport {
  readonly cases: CaseResult[] = [];
  #current: Current | null = null;

  begin(name: string): void {
    this.#current = { name, clients: [], extra: {} };
  }

  /** A client whose open -> UDP_ESTABLISHED time the case reports, under `label`. */
  client<C extends LabClient>(label: string, client: C): C {
    this.#current?.clients.push([label, client]);
    return client;
  }

  extra(name: string, value: number | string): void {
    if (this.#current) this.#current.extra[name] = typeof value === 'number' ? round(value) : value;
  }

  end(outcome: string): void {
    const current = this.#current;
    if (!current) return;
    this.#current = null;
    const times = current.clients.map(([label, c]) => {
      const established = c.statuses.find((s) => s.frame.status === 'UDP_ESTABLISHED')?.at ?? null;
      return { label, opened: c.openedAt, established };
    });
    const openToEstablishedMs = Object.fromEntries(
      times.map((t) => [t.label, t.opened !== null && t.established !== null ? round(t.established - t.opened) : null]),
    );
    const pair = times.slice(0, 2);
    const punchMs =
      pair.length === 2 && pair.every((t) => t.opened !== null && t.established !== null)
        ? round(Math.max(...pair.map((t) => t.established!)) - Math.max(...pair.map((t) => t.opened!)))
        : null;
    this.cases.push({ name: current.name, outcome, openToEstablishedMs, punchMs, extra: current.extra });
  }

  table(): string {
    const rows = this.cases.map((c) => [
      c.name,
      c.outcome,
      Object.entries(c.openToEstablishedMs)
        .map(([label, ms]) => `${label} ${ms ?? '-'}`)
        .join(', '),
      c.punchMs === null ? '-' : String(c.punchMs),
      Object.entries(c.extra)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    ]);
    const header = ['case', 'result', 'open -> UDP_ESTABLISHED (ms)', 'punch (ms)', 'other (ms)'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ').trimEnd();
    return [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line)].join('\n');
  }

  write(path: string, settings: Record<string, unknown>): void {
    mkdirSync(dirname(path), { recursive: true });
    const body = {
      generatedAt: new Date().toISOString(),
      node: process.version,
      kernel: release(),
      settings,
      cases: this.cases,
    };
    writeFileSync(path, `${JSON.stringify(body, null, 2)}\n`);
  }
}
