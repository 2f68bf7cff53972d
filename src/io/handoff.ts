/**
 * Session links waiting for their session actor: the server parks a link here, the session's
 * `bridge` actor claims it by session id when the actor starts.
 */
export class LinkHandoff<Link extends { readonly id: string }> {
  readonly #pending = new Map<string, Link>();

  admit(link: Link): void {
    this.#pending.set(link.id, link);
  }

  claim(id: string): Link | undefined {
    const link = this.#pending.get(id);
    this.#pending.delete(id);
    return link;
  }

  isPending(id: string): boolean {
    return this.#pending.has(id);
  }

  release(link: Link): void {
    if (this.#pending.get(link.id) === link) this.#pending.delete(link.id);
  }
}
