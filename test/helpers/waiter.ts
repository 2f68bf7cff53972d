/** Bounded waits on conditions re-checked whenever the owner reports progress. */
export class Waiter {
  readonly #listeners = new Set<() => void>();

  /** Call after every change the predicates may depend on. */
  notify(): void {
    for (const listener of this.#listeners) listener();
  }

  /** Resolves once `predicate` holds; rejects with `describe()` after `timeoutMs`. */
  until(predicate: () => boolean, timeoutMs: number, describe: () => string): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (predicate()) {
          cleanup();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${describe()}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.#listeners.delete(check);
      };
      this.#listeners.add(check);
    });
  }
}

/** Polls `predicate` every 10 ms until it holds; rejects after `timeoutMs`. For conditions no event announces. */
export async function eventually(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Like `eventually`, for a condition that needs IO to check (every 50 ms). */
export async function eventuallyAsync(predicate: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
