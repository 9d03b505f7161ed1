import type { Instance } from './instance.js';

interface ExpiryRecord {
  readonly instance: Instance;
  readonly expiresAt: number;
}

export interface RoutedInstances {
  readonly instances: readonly Instance[];
  /** True while expired instances are held back. */
  readonly preserving: boolean;
  /** Ids held back although expired. */
  readonly held: readonly string[];
}

/**
 * Eureka-style self-preservation, on the caller's side. When many instances of
 * an app stop renewing at once, the likelier cause is the registry or the
 * network between it and them, not that they all died: so if more than
 * `threshold` of the app's instances (and at least two) expired within one TTL
 * window, the expired ones stay in the caller's pool. Connection and health
 * failures still take them out of rotation in the router; an explicit
 * deregistration removes them at once; a hold lasts at most ten TTLs.
 */
export class SelfPreservation {
  readonly #ttl: number;
  readonly #threshold: number;
  /** Instances routed at the previous decision, by id. */
  #routed = new Map<string, Instance>();
  /** When each recently expired instance (that we were routing to) expired. */
  readonly #expiredAt = new Map<string, number>();

  constructor(ttl: number, threshold: number) {
    this.#ttl = ttl;
    this.#threshold = threshold;
  }

  decide(records: readonly ExpiryRecord[], now: number): RoutedInstances {
    const live: Instance[] = [];
    const expired = new Map<string, ExpiryRecord>();
    for (const record of records) {
      if (record.expiresAt > now) live.push(record.instance);
      else expired.set(record.instance.id, record);
    }
    // Forget expiries of instances that came back, were deregistered, or fell out of the window.
    for (const [id, at] of this.#expiredAt) {
      if (!expired.has(id) || now - at > 10 * this.#ttl) this.#expiredAt.delete(id);
    }
    for (const [id, record] of expired) {
      if (this.#routed.has(id) && !this.#expiredAt.has(id)) this.#expiredAt.set(id, record.expiresAt);
    }
    const inWindow = [...this.#expiredAt].filter(([, at]) => now - at <= this.#ttl).map(([id]) => id);
    const population = live.length + inWindow.length;
    const massExpiry = inWindow.length >= 2 && inWindow.length / population > this.#threshold;

    let instances: Instance[] = live;
    let held: string[] = [];
    if (massExpiry) {
      held = [...this.#expiredAt.keys()].filter((id) => expired.has(id));
      instances = [...live, ...held.map((id) => (expired.get(id) as ExpiryRecord).instance)];
    }
    this.#routed = new Map(instances.map((instance) => [instance.id, instance]));
    return { instances, preserving: massExpiry, held };
  }
}
