/**
 * The live sessions of a server, as the sessions API, the live page and the metrics see them:
 * who opened each, its state (from its statechart's snapshots), its counters (from its link).
 * Counters of ended sessions are kept as totals so that metrics never go backwards.
 */
import type { SessionContext } from '../../machines/session.machine.js';
import type { LinkDropCause, LinkStats, SessionLink } from '../io/session-link.js';
import { viewOf, type SessionStateView } from './session-view.js';

export interface SessionInfo {
  subject: string;
  client: string;
}

interface SessionRecord extends SessionInfo {
  id: string;
  openedAt: number;
  establishedAt: number | null;
  view: SessionStateView;
  link: SessionLink;
  candidates: string[];
  /** The context's candidates `candidates` was formatted from (they change once per session, heartbeats often). */
  candidatesOf: unknown;
}

/** The traffic counters of a link that the API shows and the metrics add up. */
const TRAFFIC = ['datagramsIn', 'datagramsOut', 'messagesIn', 'messagesOut', 'bytesIn', 'bytesOut'] as const;
type Traffic = Pick<LinkStats, (typeof TRAFFIC)[number]>;

function addTraffic(into: Traffic, from: Traffic): void {
  for (const key of TRAFFIC) into[key] += from[key];
}

function addDrops(into: Partial<Record<LinkDropCause, number>>, from: Record<LinkDropCause, number>): void {
  for (const [cause, n] of Object.entries(from) as Array<[LinkDropCause, number]>) into[cause] = (into[cause] ?? 0) + n;
}

/** The JSON of one session in `GET /v0/sessions`. */
export interface SessionJson extends SessionStateView, Traffic {
  id: string;
  subject: string;
  client: string;
  openedAt: string;
  ageMs: number;
  timeToEstablishedMs: number | null;
  candidates: string[];
  drops: Record<LinkDropCause, number>;
}

export type RegistryEvent =
  | { type: 'changed'; id: string }
  | { type: 'removed'; id: string }
  | { type: 'transition'; id: string; from: string; to: string }
  | { type: 'established'; id: string; afterMs: number };

type Totals = Traffic & { drops: Partial<Record<LinkDropCause, number>> };

export class SessionRegistry {
  readonly #records = new Map<string, SessionRecord>();
  readonly #listeners = new Set<(event: RegistryEvent) => void>();
  /** Counters of the sessions that ended. */
  readonly ended: Totals = { datagramsIn: 0, datagramsOut: 0, messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, drops: {} };

  constructor(private readonly now: () => number = Date.now) {}

  on(listener: (event: RegistryEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(event: RegistryEvent): void {
    for (const listener of this.#listeners) listener(event);
  }

  add(id: string, info: SessionInfo, link: SessionLink, snapshot: { value: unknown; context: SessionContext }): void {
    const view = viewOf(snapshot);
    this.#records.set(id, { id, ...info, openedAt: this.now(), establishedAt: null, view, link, candidates: [], candidatesOf: null });
    this.#emit({ type: 'changed', id });
  }

  /** A new snapshot of a session's statechart. */
  update(id: string, snapshot: { value: unknown; context: SessionContext }): void {
    const record = this.#records.get(id);
    if (!record) return;
    const before = record.view;
    const view = viewOf(snapshot, before);
    record.view = view;
    if (record.candidatesOf !== snapshot.context.candidates) {
      record.candidatesOf = snapshot.context.candidates;
      record.candidates = snapshot.context.candidates.map((c) => (c.family === 'ipv6' ? `[${c.address}]:${c.port}` : `${c.address}:${c.port}`));
    }
    if (view.state !== before.state) {
      this.#emit({ type: 'transition', id, from: before.state, to: view.state });
      if (view.status === 'UDP_ESTABLISHED' && record.establishedAt === null) {
        record.establishedAt = this.now();
        this.#emit({ type: 'established', id, afterMs: record.establishedAt - record.openedAt });
      }
    }
    if (view.state !== before.state || view.peer !== before.peer || view.family !== before.family || view.path !== before.path) this.#emit({ type: 'changed', id });
  }

  remove(id: string): void {
    const record = this.#records.get(id);
    if (!record) return;
    this.#records.delete(id);
    addTraffic(this.ended, record.link.stats);
    addDrops(this.ended.drops, record.link.stats.drops);
    this.#emit({ type: 'removed', id });
  }

  get size(): number {
    return this.#records.size;
  }

  /** Live totals: ended sessions plus the live ones. */
  totals(): Totals {
    const out: Totals = { ...this.ended, drops: { ...this.ended.drops } };
    for (const { link } of this.#records.values()) {
      addTraffic(out, link.stats);
      addDrops(out.drops, link.stats.drops);
    }
    return out;
  }

  /** Sessions by state label. */
  countByState(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const { view } of this.#records.values()) counts.set(view.state, (counts.get(view.state) ?? 0) + 1);
    return counts;
  }

  get(id: string): SessionJson | undefined {
    const record = this.#records.get(id);
    return record && this.#json(record);
  }

  /** Oldest first, at most `limit`. */
  list(limit = Infinity): SessionJson[] {
    const out: SessionJson[] = [];
    for (const record of this.#records.values()) {
      if (out.length >= limit) break;
      out.push(this.#json(record));
    }
    return out;
  }

  #json(record: SessionRecord): SessionJson {
    const s = record.link.stats;
    // The round trip of an established path is the IO's latest (heartbeats no longer pass the machine).
    const liveRtt = record.view.status === 'UDP_ESTABLISHED' ? record.link.rttMs : null;
    return {
      id: record.id,
      ...record.view,
      rttMs: liveRtt === null ? record.view.rttMs : Math.round(liveRtt * 1000) / 1000,
      subject: record.subject,
      client: record.client,
      openedAt: new Date(record.openedAt).toISOString(),
      ageMs: this.now() - record.openedAt,
      timeToEstablishedMs: record.establishedAt === null ? null : record.establishedAt - record.openedAt,
      candidates: record.candidates,
      ...(Object.fromEntries(TRAFFIC.map((key) => [key, s[key]])) as Traffic),
      drops: { ...s.drops },
    };
  }
}
