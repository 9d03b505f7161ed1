import { setTimeout as sleep } from 'node:timers/promises';
import { logWarning } from '@dye/core';
import type { Instance } from './instance.js';
import type { InstancesListener, InstancesUpdate } from './registry.js';
import { SelfPreservation } from './self-preservation.js';

/** An instance as a registry read found it: alive until `expiresAt`, or expired then. */
export interface ExpiringInstance {
  readonly instance: Instance;
  readonly expiresAt: number;
}

/** One full read of an app: its instances (expired ones too, where the store keeps them) and the ids deregistered lately. */
export interface AppRead {
  readonly records: readonly ExpiringInstance[];
  readonly deregistered: ReadonlySet<string>;
}

export interface AppWatchersOptions {
  /** The registry's name in log lines (`RedisRegistry`). */
  readonly registry: string;
  readonly ttl: number;
  readonly threshold: number;
  /** Reads an app in full; rejects while the store cannot be reached. */
  read(app: string): Promise<AppRead>;
  /** Starts (`true`) or stops (`false`) listening for an app's changes in the store. */
  listen(app: string, on: boolean): void;
}

interface Watched {
  readonly listeners: Set<InstancesListener>;
  readonly preservation: SelfPreservation;
  current: InstancesUpdate | undefined;
  syncing: Promise<void> | undefined;
}

/**
 * What every registry does for its callers, whatever the store: one watch per
 * app shared by its listeners, re-read on every change and resync, the last
 * good answer kept (`stale`) while the store cannot be reached, and lost
 * instances held back by self-preservation. A registry supplies the read and
 * the change notifications.
 */
export class AppWatchers {
  readonly #options: AppWatchersOptions;
  readonly #watched = new Map<string, Watched>();

  constructor(options: AppWatchersOptions) {
    this.#options = options;
  }

  /** Apps watched now. */
  apps(): string[] {
    return [...this.#watched.keys()];
  }

  watch(app: string, listener: InstancesListener): () => void {
    let watched = this.#watched.get(app);
    if (!watched) {
      watched = {
        listeners: new Set(),
        preservation: new SelfPreservation(this.#options.ttl, this.#options.threshold),
        current: undefined,
        syncing: undefined,
      };
      this.#watched.set(app, watched);
      this.#options.listen(app, true);
    }
    watched.listeners.add(listener);
    const entry = watched;
    if (entry.current) {
      const current = entry.current;
      queueMicrotask(() => entry.listeners.has(listener) && listener(current));
    } else {
      void this.sync(app);
    }
    return () => {
      entry.listeners.delete(listener);
      if (entry.listeners.size === 0 && this.#watched.get(app) === entry) {
        this.#watched.delete(app);
        this.#options.listen(app, false);
      }
    };
  }

  /** The current instances of `app`: a fresh read (the cache of a watched app while the store is unreachable). */
  async snapshot(app: string): Promise<InstancesUpdate> {
    const watched = this.#watched.get(app);
    if (watched) {
      await this.sync(app);
      if (watched.current) return watched.current;
    }
    const { records, deregistered } = await this.#options.read(app);
    const now = Date.now();
    return {
      app,
      instances: records
        .filter((record) => record.expiresAt > now && !deregistered.has(record.instance.id))
        .map((record) => record.instance),
      syncedAt: now,
      stale: false,
      preserving: false,
    };
  }

  /** Re-reads a watched app (coalesced: a burst of changes causes one read at a time). */
  sync(app: string): Promise<void> {
    const watched = this.#watched.get(app);
    if (!watched) return Promise.resolve();
    watched.syncing ??= this.#read(app, watched).finally(() => {
      watched.syncing = undefined;
    });
    return watched.syncing;
  }

  syncAll(): void {
    for (const app of this.#watched.keys()) void this.sync(app);
  }

  clear(): void {
    this.#watched.clear();
  }

  async #read(app: string, watched: Watched): Promise<void> {
    let read: AppRead;
    try {
      read = await this.#options.read(app);
    } catch (error) {
      if (watched.current && !watched.current.stale) {
        logWarning('dye.discovery.stale', `registry unreachable, routing ${app} from cache: ${(error as Error).message}`);
        this.#deliver(watched, { ...watched.current, stale: true });
      }
      return;
    }
    const now = Date.now();
    const routed = watched.preservation.decide(read.records, now, read.deregistered);
    if (routed.preserving && !watched.current?.preserving) {
      logWarning(
        'dye.discovery.self-preservation',
        `holding ${app} instances the registry no longer shows alive (a mass expiry, or entries lost with the registry's data); connection failures still remove them`,
        { held: routed.held },
      );
    }
    this.#deliver(watched, { app, instances: routed.instances, syncedAt: now, stale: false, preserving: routed.preserving });
  }

  #deliver(watched: Watched, update: InstancesUpdate): void {
    const previous = watched.current;
    watched.current = update;
    if (previous && sameUpdate(previous, update)) return;
    for (const listener of watched.listeners) {
      try {
        listener(update);
      } catch (error) {
        logWarning('dye.discovery.listener-failed', `a registry watcher of ${update.app} threw: ${(error as Error).message}`);
      }
    }
  }
}

function sameUpdate(a: InstancesUpdate, b: InstancesUpdate): boolean {
  if (a.stale !== b.stale || a.preserving !== b.preserving || a.instances.length !== b.instances.length) return false;
  const key = (instance: Instance) => `${instance.id}|${instance.address}|${instance.lane}|${instance.weight ?? 1}`;
  const left = new Set(a.instances.map(key));
  return b.instances.every((instance) => left.has(key(instance)));
}

/**
 * Runs `write` until it succeeds, with backoff from 200 ms doubling to
 * `maxDelay`, each failure logged (`dye.discovery.register-retry`); rejects
 * when `signal` aborts first. A registration's first write, while the store
 * cannot be reached.
 */
export async function untilWritten(what: string, write: () => Promise<void>, maxDelay: number, signal: AbortSignal): Promise<void> {
  for (let attempt = 1, delay = 200; ; attempt++, delay = Math.min(delay * 2, maxDelay)) {
    if (signal.aborted) throw new Error(`the registry closed before ${what} could register`);
    try {
      await write();
      if (attempt > 1) logWarning('dye.discovery.registered', `${what} registered after ${attempt} attempts`);
      return;
    } catch (error) {
      if (signal.aborted) throw new Error(`the registry closed before ${what} could register`);
      logWarning(
        'dye.discovery.register-retry',
        `cannot register ${what} yet (attempt ${attempt}, next in ${delay} ms): ${(error as Error).message}`,
      );
      await sleep(delay, undefined, { signal }).catch(() => {});
    }
  }
}
