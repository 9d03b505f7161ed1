import { createRequire } from 'node:module';
import { logWarning } from '@dye/core';
import type { Redis } from 'ioredis';
import { type AppRead, AppWatchers, untilWritten } from './app-watchers.js';
import { checkAppName, type Instance, normalizeInstance } from './instance.js';
import type { InstancesListener, InstancesUpdate, Registration, Registry } from './registry.js';
import { HOLD_TTLS } from './self-preservation.js';

export interface RedisRegistryOptions {
  /** A Redis URL, or an ioredis client to copy connection settings from (the registry opens its own connections). */
  redis: string | Redis;
  /** Key and channel prefix. Default `dye:registry`. */
  prefix?: string;
  /** How often a registered instance renews itself, ms. Default 10 000. */
  heartbeatInterval?: number;
  /** How long a registration lives without renewal, ms. Default 30 000. */
  ttl?: number;
  /** How often watched apps are read in full (missed change messages heal, expiries show), ms. Default 5 000. */
  resyncInterval?: number;
  /** Share of an app's instances expiring within one TTL that counts as a mass expiry. Default 0.15. */
  selfPreservationThreshold?: number;
}

/** An instance as stored, with its registration and renewal times (for inspection). */
export interface InstanceRecord {
  readonly instance: Instance;
  readonly registeredAt: number;
  /** When it expires unless renewed; last heartbeat = expiresAt − ttl. */
  readonly expiresAt: number;
  /** The TTL its registering process renews it with, ms (absent for entries written before it was recorded). */
  readonly ttl?: number;
}

interface StoredInstance {
  instance: Instance;
  registeredAt: number;
  ttl?: number;
}

function loadIoredis(): typeof import('ioredis') {
  try {
    return createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
  } catch (error) {
    throw new Error('RedisRegistry needs the ioredis package (npm install ioredis)', { cause: error });
  }
}

/**
 * A registry in Redis. Instances are a hash (`<prefix>:app:<app>:instances`)
 * plus a sorted set of expiry times (`…:expiry`) renewed by heartbeats; changes
 * are announced on `<prefix>:events:<app>`. Watchers re-read an app on every
 * announcement and every `resyncInterval`, keep the last good answer when Redis
 * is unreachable (marked `stale`), and hold back a mass expiry
 * (self-preservation) instead of emptying a caller's pool.
 */
export class RedisRegistry implements Registry {
  readonly #commands: Redis;
  readonly #subscriber: Redis;
  readonly #prefix: string;
  readonly #heartbeatInterval: number;
  readonly #ttl: number;
  readonly #resyncInterval: number;
  readonly #watchers: AppWatchers;
  readonly #registrations = new Set<{ stop: () => void }>();
  readonly #resync: NodeJS.Timeout;
  #closed = false;
  /** Aborted by close(): wakes a registration waiting to retry. */
  readonly #closing = new AbortController();

  constructor(options: RedisRegistryOptions) {
    this.#prefix = options.prefix ?? 'dye:registry';
    this.#heartbeatInterval = options.heartbeatInterval ?? 10_000;
    this.#ttl = options.ttl ?? 30_000;
    this.#resyncInterval = options.resyncInterval ?? 5_000;
    if (!(this.#ttl > this.#heartbeatInterval)) throw new TypeError('RedisRegistry: ttl must be longer than heartbeatInterval');
    this.#watchers = new AppWatchers({
      registry: 'RedisRegistry',
      ttl: this.#ttl,
      threshold: options.selfPreservationThreshold ?? 0.15,
      read: (app) => this.#readApp(app),
      listen: (app, on) => {
        if (!on) return void this.#subscriber.unsubscribe(this.#channel(app)).catch(() => {});
        this.#subscriber.subscribe(this.#channel(app)).catch((error: Error) => {
          logWarning('dye.discovery.subscribe-failed', `cannot subscribe to changes of ${app} (resync continues): ${error.message}`);
        });
      },
    });
    // Commands fail fast while Redis is down (no offline queue): a watcher
    // then serves its cache instead of waiting behind a queue.
    // The registry's connections open at once, even when copied from a lazyConnect client.
    const connection = { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2_000, lazyConnect: false } as const;
    if (typeof options.redis === 'string') {
      const { Redis: RedisClient } = loadIoredis();
      this.#commands = new RedisClient(options.redis, connection);
      this.#subscriber = new RedisClient(options.redis, { connectTimeout: 2_000 });
    } else {
      this.#commands = options.redis.duplicate(connection);
      this.#subscriber = options.redis.duplicate({ connectTimeout: 2_000, lazyConnect: false });
    }
    for (const client of [this.#commands, this.#subscriber]) {
      client.on('error', (error: Error) => logWarning('dye.discovery.redis-error', `registry connection error: ${error.message}`));
    }
    this.#subscriber.on('message', (channel: string) => void this.#watchers.sync(channel.slice(this.#channel('').length)));
    this.#resync = setInterval(() => this.#watchers.syncAll(), this.#resyncInterval);
    this.#resync.unref();
  }

  /**
   * Announces `instance`. While Redis cannot be reached the first write is
   * retried with backoff (each failure logged as `dye.discovery.register-retry`)
   * until it succeeds; it rejects only for an invalid instance or when the
   * registry is closed meanwhile.
   */
  async register(instance: Instance): Promise<Registration> {
    const normalized = normalizeInstance(instance);
    const stored: StoredInstance = { instance: normalized, registeredAt: Date.now(), ttl: this.#ttl };
    await this.#firstWrite(stored);
    const timer = setInterval(() => {
      this.#renew(stored)
        .then(async (recreated) => {
          // The entry was gone (a registry restarted empty, keys removed):
          // watchers hear of it now, not at their next resync.
          if (recreated)
            await this.#commands.publish(this.#channel(normalized.app), JSON.stringify({ type: 'register', id: normalized.id }));
        })
        .catch((error: Error) =>
          logWarning('dye.discovery.heartbeat-failed', `heartbeat of ${normalized.app}/${normalized.id} failed: ${error.message}`),
        );
    }, this.#heartbeatInterval);
    timer.unref();
    const handle = { stop: () => clearInterval(timer) };
    this.#registrations.add(handle);
    let deregistered = false;
    return {
      instance: normalized,
      // A change message can be lost; every watcher re-reads within a resync, and a read takes up to a command timeout.
      propagationMs: this.#resyncInterval + 1_000,
      deregister: async () => {
        if (deregistered) return;
        deregistered = true;
        handle.stop();
        this.#registrations.delete(handle);
        await this.#ready();
        // The tombstone tells watchers this instance left on purpose: one gone
        // without it was lost with the registry's data, and is held.
        await this.#commands
          .multi()
          .hdel(this.#instancesKey(normalized.app), normalized.id)
          .zrem(this.#expiryKey(normalized.app), normalized.id)
          .zadd(this.#deregisteredKey(normalized.app), Date.now(), normalized.id)
          .exec();
        await this.#commands.publish(this.#channel(normalized.app), JSON.stringify({ type: 'deregister', id: normalized.id }));
      },
    };
  }

  watch(app: string, listener: InstancesListener): () => void {
    checkAppName(app);
    return this.#watchers.watch(app, listener);
  }

  async snapshot(app: string): Promise<InstancesUpdate> {
    checkAppName(app);
    return this.#watchers.snapshot(app);
  }

  /** Every stored instance of `app` with registration and expiry times, expired ones included. */
  async records(app: string): Promise<InstanceRecord[]> {
    return (await this.#readApp(app)).records;
  }

  /** The records of `app` and the ids deregistered from it lately (their tombstones), in one read. */
  async #readApp(app: string): Promise<AppRead & { records: InstanceRecord[] }> {
    checkAppName(app);
    await this.#ready();
    const results = await this.#commands
      .multi()
      .hgetall(this.#instancesKey(app))
      .zrange(this.#expiryKey(app), '0', '-1', 'WITHSCORES')
      .zrange(this.#deregisteredKey(app), '0', '-1')
      .exec();
    if (!results) throw new Error(`registry read of ${app} was aborted`);
    const [[hashError, hash], [zsetError, zset], [goneError, gone]] = results as [
      [Error | null, Record<string, string>],
      [Error | null, string[]],
      [Error | null, string[]],
    ];
    if (hashError || zsetError || goneError) throw hashError ?? zsetError ?? goneError;
    const expiries = new Map<string, number>();
    // member, score, … or, from a client with ioredis 6's replyMapping 'resp3', [member, score] pairs.
    const pairs = zset.length > 0 && Array.isArray(zset[0]);
    if (pairs) for (const [member, score] of zset as unknown as [string, number][]) expiries.set(member, Number(score));
    else for (let i = 0; i + 1 < zset.length; i += 2) expiries.set(zset[i] as string, Number(zset[i + 1]));
    const records: InstanceRecord[] = [];
    for (const [id, json] of Object.entries(hash)) {
      const expiresAt = expiries.get(id);
      if (expiresAt === undefined) continue;
      try {
        const stored = JSON.parse(json) as StoredInstance;
        records.push({
          instance: normalizeInstance(stored.instance),
          registeredAt: stored.registeredAt,
          expiresAt,
          ...(typeof stored.ttl === 'number' ? { ttl: stored.ttl } : {}),
        });
      } catch (error) {
        logWarning('dye.discovery.bad-record', `ignored an unreadable registry entry ${app}/${id}: ${(error as Error).message}`);
      }
    }
    return { records, deregistered: new Set(gone) };
  }

  /** Apps that ever registered here. */
  async apps(): Promise<string[]> {
    await this.#ready();
    return (await this.#commands.smembers(this.#appsKey())).sort();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    clearInterval(this.#resync);
    for (const registration of this.#registrations) registration.stop();
    this.#registrations.clear();
    this.#watchers.clear();
    this.#commands.disconnect();
    this.#subscriber.disconnect();
  }

  /**
   * Without an offline queue a command fails unless the connection is ready;
   * wait for it briefly (startup, reconnect) rather than fail at once.
   */
  async #ready(): Promise<void> {
    if (this.#commands.status === 'ready') return;
    if (this.#closed) throw new Error('RedisRegistry is closed');
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#commands.off('ready', onReady);
        reject(new Error(`registry Redis not ready (${this.#commands.status})`));
      }, 2_000);
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#commands.once('ready', onReady);
    });
  }

  async #firstWrite(stored: StoredInstance): Promise<void> {
    const { instance } = stored;
    await untilWritten(
      `${instance.app}/${instance.id}`,
      async () => {
        await this.#renew(stored);
        await this.#commands.publish(this.#channel(instance.app), JSON.stringify({ type: 'register', id: instance.id }));
      },
      this.#heartbeatInterval,
      this.#closing.signal,
    );
  }

  /** Writes the instance's entry and expiry; true when the entry was not there (made anew). */
  async #renew(stored: StoredInstance): Promise<boolean> {
    await this.#ready();
    const { instance } = stored;
    const now = Date.now();
    const results = await this.#commands
      .multi()
      .sadd(this.#appsKey(), instance.app)
      .hset(this.#instancesKey(instance.app), instance.id, JSON.stringify(stored))
      .zadd(this.#expiryKey(instance.app), now + this.#ttl, instance.id)
      // An id registered again (a restart keeping its name) is no longer deregistered.
      .zrem(this.#deregisteredKey(instance.app), instance.id)
      // Entries expired long ago belong to instances that died without
      // deregistering, and tombstones outlive every hold; any live instance of
      // the app may clear them.
      .zremrangebyscore(this.#expiryKey(instance.app), '-inf', now - HOLD_TTLS * this.#ttl)
      .zremrangebyscore(this.#deregisteredKey(instance.app), '-inf', now - 2 * HOLD_TTLS * this.#ttl)
      .exec();
    const fieldsAdded = results?.[1]?.[1];
    return fieldsAdded === 1;
  }

  #appsKey(): string {
    return `${this.#prefix}:apps`;
  }
  #instancesKey(app: string): string {
    return `${this.#prefix}:app:${app}:instances`;
  }
  #expiryKey(app: string): string {
    return `${this.#prefix}:app:${app}:expiry`;
  }
  #deregisteredKey(app: string): string {
    return `${this.#prefix}:app:${app}:deregistered`;
  }
  #channel(app: string): string {
    return `${this.#prefix}:events:${app}`;
  }
}
