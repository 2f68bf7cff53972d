/** A small typed event emitter that runs in Node and browsers (no `node:events`). */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Listener = (value: any) => void;

export class Emitter<Events extends Record<string, unknown>> {
  readonly #listeners = new Map<keyof Events, Listener[]>();

  on<K extends keyof Events>(event: K, listener: (value: Events[K]) => void): this {
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), listener]);
    return this;
  }

  off<K extends keyof Events>(event: K, listener: (value: Events[K]) => void): this {
    const rest = (this.#listeners.get(event) ?? []).filter((l) => l !== listener);
    if (rest.length > 0) this.#listeners.set(event, rest);
    else this.#listeners.delete(event);
    return this;
  }

  once<K extends keyof Events>(event: K, listener: (value: Events[K]) => void): this {
    const wrapped = (value: Events[K]) => {
      this.off(event, wrapped);
      listener(value);
    };
    return this.on(event, wrapped);
  }

  listenerCount(event: keyof Events): number {
    return this.#listeners.get(event)?.length ?? 0;
  }

  /** Calls every listener; one that throws does not keep the others from running (it is reported). */
  protected emit<K extends keyof Events>(event: K, value: Events[K]): void {
    for (const listener of this.#listeners.get(event) ?? []) {
      try {
        listener(value);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}
