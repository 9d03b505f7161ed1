import type { Admin } from 'kafkajs';

/**
 * Which topics exist, from the admin API (metadata requests never create
 * topics), cached briefly; a miss is checked again at once, so a topic created
 * a moment ago is found.
 */
export class TopicCatalog {
  readonly #admin: Admin;
  readonly #ttl: number;
  #known: Set<string> = new Set();
  #at = 0;
  #connected: Promise<void> | undefined;
  #refreshing: Promise<void> | undefined;

  constructor(admin: Admin, ttlMs = 30_000) {
    this.#admin = admin;
    this.#ttl = ttlMs;
  }

  async exists(topic: string): Promise<boolean> {
    if (this.#known.has(topic) && Date.now() - this.#at < this.#ttl) return true;
    await this.#refresh();
    return this.#known.has(topic);
  }

  /** Every topic the cluster has now (read fresh: a subscription resolves against it once). */
  async list(): Promise<string[]> {
    await this.#refresh();
    return [...this.#known];
  }

  async #refresh(): Promise<void> {
    this.#connected ??= this.#admin.connect();
    await this.#connected;
    this.#refreshing ??= this.#admin
      .listTopics()
      .then((topics) => {
        this.#known = new Set(topics);
        this.#at = Date.now();
      })
      .finally(() => {
        this.#refreshing = undefined;
      });
    await this.#refreshing;
  }

  async close(): Promise<void> {
    if (this.#connected) await this.#admin.disconnect();
  }
}
