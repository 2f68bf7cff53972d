/**
 * One session: everything of one accepted WebSocket in one record, created in one place (the
 * session table) and released in one place, once, however the session ends. It owns its IO
 * (the link), learns its actor from the session host that started it, keeps its registry entry
 * (what the API, the live page and the metrics see), and gives back what admission took (a
 * server slot, a per-subject lease).
 */
import type { SessionActor, SessionRequest } from '../../machines/session-host.js';
import type { Admitted } from '../http/admission.js';
import type { SessionLink } from '../io/session-link.js';
import type { SessionRegistry } from '../observe/registry.js';

export interface SessionParts {
  admitted: Admitted;
  link: SessionLink;
  registry: SessionRegistry;
  /** Called once, when the session has released everything. */
  onEnd: (session: Session) => void;
}

export class Session implements SessionRequest {
  readonly id: string;
  readonly hosts: string[];
  readonly port: number;
  readonly link: SessionLink;
  actor: SessionActor | null = null;
  readonly #parts: SessionParts;
  #ended = false;

  constructor(parts: SessionParts) {
    this.#parts = parts;
    this.id = parts.admitted.id;
    this.hosts = parts.admitted.params.hosts;
    this.port = parts.admitted.params.port;
    this.link = parts.link;
  }

  /** The session's IO, handed to its machine with its input. */
  get io(): SessionLink {
    return this.link;
  }

  get subject(): string {
    return this.#parts.admitted.grants.subject;
  }

  /** The client's address, as admission saw it. */
  get client(): string {
    return this.#parts.admitted.client;
  }

  /** The session host started our actor: the registry follows it, and its end is ours. */
  started(actor: SessionActor): void {
    this.actor = actor;
    // Ended already (its WebSocket closed first): the machine still runs to CLOSED, unlisted.
    if (this.#ended) return;
    const { registry, admitted } = this.#parts;
    registry.add(this.id, { subject: admitted.grants.subject, client: admitted.client }, this.link, actor.getSnapshot());
    actor.subscribe({
      next: (snapshot) => registry.update(this.id, snapshot),
      complete: () => this.end(),
      error: () => this.end(),
    });
  }

  /** Nothing was started (the server is shutting down): the client is told, nothing is kept. */
  refused(): void {
    this.link.client.close(1001, 'server_shutdown');
    this.link.detach();
    this.end();
  }

  /** Releases everything the session holds. Idempotent: the first call does it. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    const { registry, admitted, onEnd } = this.#parts;
    registry.remove(this.id);
    admitted.release();
    onEnd(this);
  }

  /** In the inspector (the supervisor's `session.open` event): what was asked, nothing secret. */
  toJSON(): { id: string; hosts: string[]; port: number } {
    return { id: this.id, hosts: this.hosts, port: this.port };
  }
}
