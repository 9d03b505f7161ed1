import type { Instance } from './instance.js';

interface ExpiryRecord {
  readonly instance: Instance;
  readonly expiresAt: number;
}

export interface RoutedInstances {
  readonly instances: readonly Instance[];
  /** True while lost instances are held back. */
  readonly preserving: boolean;
  /** Ids held back although expired or gone from the registry. */
  readonly held: readonly string[];
}

/** An instance this caller was routing to that the registry no longer shows alive. */
interface Lost {
  instance: Instance;
  /** When it expired, or (gone from the registry without a deregistration) when that was noticed. */
  readonly at: number;
  /** Gone from the registry altogether: not expired, not deregistered. */
  readonly vanished: boolean;
  held: boolean;
  /**
   * Let go: routed no more. `alone` when no storm was seen yet as it was lost
   * (a storm noticed within its TTL window brings it back: its expiry was the
   * storm's first); `final` once a hold ran out (never held again for this loss).
   */
  released: false | 'alone' | 'final';
}

const NOTHING: ReadonlySet<string> = new Set();

/** How many TTLs a hold lasts at most. */
export const HOLD_TTLS = 10;

/**
 * Eureka-style self-preservation, on the caller's side. Instances this caller
 * routes to are held in its pool, although the registry no longer shows them
 * alive, when the likelier cause is the registry or the network between it and
 * them rather than that they all died:
 *
 * - **an expiry storm**: more than `threshold` of the app's instances (and at
 *   least two) expired within one TTL window;
 * - **instances gone from the registry** without being deregistered (a
 *   deregistration leaves a tombstone the registry reports): the registry lost
 *   its data (a Redis restarted empty, keys removed by hand), so its answer
 *   says nothing about the instances. One such instance is enough.
 *
 * A single expiry (a crash) is let go at once. A storm noticed within that
 * expiry's TTL window brings it back, held with the rest: entries expire up to
 * a heartbeat apart, so a read between a storm's first and second expiry sees
 * the first alone. A held instance stays
 * held until it is alive in the registry again, is deregistered, or
 * `HOLD_TTLS` TTLs after it was lost; then it leaves once and for good (no
 * flapping at the hold's edge). Connection and health failures still take
 * held instances out of rotation in the routers.
 */
export class SelfPreservation {
  readonly #ttl: number;
  readonly #threshold: number;
  /** Instances routed at the previous decision, by id. */
  #routed = new Map<string, Instance>();
  readonly #lost = new Map<string, Lost>();

  constructor(ttl: number, threshold: number) {
    this.#ttl = ttl;
    this.#threshold = threshold;
  }

  /**
   * The instances to route to, from a full read of the app: its `records`
   * (expired ones included) and the ids `deregistered` on purpose since (their
   * tombstones). Without tombstones, an instance gone from the records counts
   * as vanished.
   */
  decide(records: readonly ExpiryRecord[], now: number, deregistered: ReadonlySet<string> = NOTHING): RoutedInstances {
    const live: Instance[] = [];
    const liveIds = new Set<string>();
    const expired = new Map<string, ExpiryRecord>();
    for (const record of records) {
      if (deregistered.has(record.instance.id)) continue;
      if (record.expiresAt > now) {
        live.push(record.instance);
        liveIds.add(record.instance.id);
      } else expired.set(record.instance.id, record);
    }
    // Losses: routed until now, and neither alive nor deregistered.
    for (const [id, instance] of this.#routed) {
      if (liveIds.has(id) || deregistered.has(id) || this.#lost.has(id)) continue;
      const record = expired.get(id);
      this.#lost.set(id, {
        instance: record?.instance ?? instance,
        at: record ? record.expiresAt : now,
        vanished: record === undefined,
        held: false,
        released: false,
      });
    }
    const limit = HOLD_TTLS * this.#ttl;
    for (const [id, lost] of this.#lost) {
      // Back, gone on purpose, or long since out of every pool (a released loss
      // is routed no more, so it cannot be taken for a new one).
      if (liveIds.has(id) || deregistered.has(id) || now - lost.at > 2 * limit) this.#lost.delete(id);
      else if (now - lost.at > limit) {
        lost.held = false;
        lost.released = 'final';
      }
    }
    // Vanished instances: the registry's answer is not about them. Hold them.
    for (const lost of this.#lost.values()) if (lost.vanished && lost.released !== 'final') lost.held = true;
    // Expiries within a TTL, those let go already included, make a storm. Entries
    // expire up to a heartbeat apart, so a read can fall between a storm's first
    // expiry and its second: that first one, let go alone, is held with the rest.
    // A loss that vanished counts too: a store that deletes expired entries
    // itself (etcd's leases) makes half of a storm expiries and half vanishings.
    const recentExpiries = [...this.#lost.values()].filter((lost) => now - lost.at <= this.#ttl);
    if (recentExpiries.length >= 2 && recentExpiries.length / (live.length + recentExpiries.length) > this.#threshold) {
      for (const lost of recentExpiries) {
        if (lost.released === 'final') continue;
        lost.held = true;
        lost.released = false;
      }
    }
    const held: Lost[] = [];
    for (const lost of this.#lost.values()) {
      if (lost.held) held.push(lost);
      else if (!lost.released) lost.released = 'alone';
    }
    const instances = held.length === 0 ? live : [...live, ...held.map((lost) => lost.instance)];
    this.#routed = new Map(instances.map((instance) => [instance.id, instance]));
    return { instances, preserving: held.length > 0, held: held.map((lost) => lost.instance.id) };
  }
}
