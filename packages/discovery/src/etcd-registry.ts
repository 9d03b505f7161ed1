import { createRequire } from 'node:module';
import { logWarning } from '@dye/core';
import type { Etcd3, IOptions, Lease, Watcher } from 'etcd3';
import { type AppRead, AppWatchers, type ExpiringInstance, untilWritten } from './app-watchers.js';
import { checkAppName, type Instance, normalizeInstance } from './instance.js';
import type { InstancesListener, InstancesUpdate, Registration, Registry } from './registry.js';
import { HOLD_TTLS } from './self-preservation.js';

export interface EtcdRegistryOptions {
  /** etcd client URLs (`http://10.0.0.5:2379`), or an etcd3 client's options (TLS, auth); the registry opens its own client. */
  etcd: string | readonly string[] | IOptions;
  /** Key prefix. Default `dye/registry`. */
  prefix?: string;
  /** An instance's lease TTL, ms (whole seconds, at least 2 s): its entry goes this long after its process stops renewing. Default 30 000. Renewed every third of it. */
  ttl?: number;
  /** How often watched apps are read in full (besides the watch), ms. Default 5 000. */
  resyncInterval?: number;
  /** Share of an app's instances expiring within one TTL that counts as a mass expiry. Default 0.15. */
  selfPreservationThreshold?: number;
  /** How long one etcd request may take before it counts as failed, ms. Default 2 000. */
  requestTimeout?: number;
}

interface StoredInstance {
  instance: Instance;
  registeredAt: number;
  ttl: number;
}

function loadEtcd3(): typeof import('etcd3') {
  try {
    return createRequire(import.meta.url)('etcd3') as typeof import('etcd3');
  } catch (error) {
    throw new Error('EtcdRegistry needs the etcd3 package (npm install etcd3)', { cause: error });
  }
}

/**
 * A registry in etcd, with the same contract as RedisRegistry. An instance is
 * a key `<prefix>/apps/<app>/instances/<id>` under a lease of `ttl`, kept
 * alive by the registering process (the lease's keep-alive is the heartbeat):
 * when the process stops, etcd deletes the key with the lease. A
 * deregistration deletes it and leaves a tombstone
 * (`…/deregistered/<id>`, under a lease of twenty TTLs). Callers watch the
 * app's prefix, re-read it on every change and every `resyncInterval`, keep
 * the last good answer while etcd cannot be reached (`stale`), and hold
 * instances back by self-preservation: a key deleted without a tombstone is an
 * expiry (a storm of them is held, one is let go), and a key gone without its
 * deletion seen (etcd restored from an older snapshot, keys removed while the
 * caller was away) is held.
 */
export class EtcdRegistry implements Registry {
  readonly #client: Etcd3;
  readonly #prefix: string;
  readonly #ttlSeconds: number;
  readonly #resyncInterval: number;
  readonly #watchers: AppWatchers;
  readonly #etcdWatchers = new Map<string, Promise<Watcher | undefined>>();
  /** Instances whose keys were deleted without a tombstone (expired leases), by app, with when that was seen. */
  readonly #expired = new Map<string, Map<string, ExpiringInstance>>();
  readonly #registrations = new Set<() => void>();
  readonly #resync: NodeJS.Timeout;
  readonly #closing = new AbortController();

  constructor(options: EtcdRegistryOptions) {
    this.#prefix = (options.prefix ?? 'dye/registry').replace(/\/+$/, '');
    this.#ttlSeconds = Math.max(2, Math.round((options.ttl ?? 30_000) / 1000));
    this.#resyncInterval = options.resyncInterval ?? 5_000;
    const timeout = options.requestTimeout ?? 2_000;
    const connection: IOptions =
      typeof options.etcd === 'string' || Array.isArray(options.etcd)
        ? { hosts: options.etcd as string | string[] }
        : (options.etcd as IOptions);
    const { Etcd3: Client } = loadEtcd3();
    this.#client = new Client({
      dialTimeout: timeout,
      // Requests fail fast while etcd is down (a watcher then serves its cache); streams (watch, keep-alive) have no deadline.
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeout }),
      ...connection,
    });
    const ttl = this.#ttlSeconds * 1000;
    this.#watchers = new AppWatchers({
      registry: 'EtcdRegistry',
      ttl,
      threshold: options.selfPreservationThreshold ?? 0.15,
      read: (app) => this.#readApp(app),
      listen: (app, on) => (on ? this.#listen(app) : this.#unlisten(app)),
    });
    this.#resync = setInterval(() => this.#watchers.syncAll(), this.#resyncInterval);
    this.#resync.unref();
  }

  /**
   * Announces `instance` under a lease kept alive until `deregister()`. While
   * etcd cannot be reached the first write is retried with backoff; a lease
   * lost later (etcd away for longer than the TTL) is replaced and the entry
   * written again as soon as etcd answers.
   */
  async register(instance: Instance): Promise<Registration> {
    const normalized = normalizeInstance(instance);
    const what = `${normalized.app}/${normalized.id}`;
    const stored: StoredInstance = { instance: normalized, registeredAt: Date.now(), ttl: this.#ttlSeconds * 1000 };
    const key = this.#instanceKey(normalized.app, normalized.id);
    let lease: Lease | undefined;
    let stopped = false;
    const write = async () => {
      const fresh = this.#client.lease(this.#ttlSeconds, { autoKeepAlive: true });
      try {
        await fresh.grant();
        // An id registered again (a restart keeping its name) is no longer deregistered.
        await this.#client.delete().key(this.#tombstoneKey(normalized.app, normalized.id));
        await fresh.put(key).value(JSON.stringify(stored));
      } catch (error) {
        fresh.release();
        throw error;
      }
      lease = fresh;
      fresh.on('lost', (error) => {
        if (stopped || this.#closing.signal.aborted) return;
        logWarning('dye.discovery.lease-lost', `the lease of ${what} was lost (${error.message}); writing it again`);
        lease = undefined;
        void untilWritten(what, write, this.#ttlSeconds * 1000, this.#closing.signal).catch(() => {});
      });
    };
    await untilWritten(what, write, this.#ttlSeconds * 1000, this.#closing.signal);
    const release = () => {
      stopped = true;
      lease?.release();
    };
    this.#registrations.add(release);
    return {
      instance: normalized,
      // Watchers hear of a change at once; one that missed it re-reads within a resync.
      propagationMs: this.#resyncInterval + 1_000,
      deregister: async () => {
        if (stopped) return;
        stopped = true;
        this.#registrations.delete(release);
        const current = lease;
        lease = undefined;
        // The tombstone tells watchers this instance left on purpose.
        const tombstone = this.#client.lease(2 * HOLD_TTLS * this.#ttlSeconds, { autoKeepAlive: false });
        await tombstone.put(this.#tombstoneKey(normalized.app, normalized.id)).value(String(Date.now()));
        tombstone.release();
        await this.#client.delete().key(key);
        await current?.revoke().catch(() => current.release());
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

  /** Apps with an instance or a tombstone here. */
  async apps(): Promise<string[]> {
    const keys = await this.#client.getAll().prefix(`${this.#prefix}/apps/`).keys();
    const apps = new Set<string>();
    for (const key of keys) apps.add(key.slice(this.#prefix.length + '/apps/'.length).split('/')[0] as string);
    return [...apps].sort();
  }

  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort();
    clearInterval(this.#resync);
    for (const release of this.#registrations) release();
    this.#registrations.clear();
    this.#watchers.clear();
    const watchers = [...this.#etcdWatchers.values()];
    this.#etcdWatchers.clear();
    await Promise.all(watchers.map(async (watcher) => (await watcher)?.cancel().catch(() => {})));
    this.#client.close();
  }

  async #readApp(app: string): Promise<AppRead> {
    const entries = await this.#client.getAll().prefix(this.#appPrefix(app)).strings();
    const now = Date.now();
    const live: ExpiringInstance[] = [];
    const liveIds = new Set<string>();
    const deregistered = new Set<string>();
    const instances = `${this.#appPrefix(app)}instances/`;
    const tombstones = `${this.#appPrefix(app)}deregistered/`;
    for (const [key, value] of Object.entries(entries)) {
      if (key.startsWith(tombstones)) {
        deregistered.add(key.slice(tombstones.length));
        continue;
      }
      if (!key.startsWith(instances)) continue;
      try {
        const stored = JSON.parse(value) as StoredInstance;
        const instance = normalizeInstance(stored.instance);
        // Alive while its lease is: at most one TTL from now.
        live.push({ instance, expiresAt: now + this.#ttlSeconds * 1000 });
        liveIds.add(instance.id);
      } catch (error) {
        logWarning('dye.discovery.bad-record', `ignored an unreadable registry entry ${key}: ${(error as Error).message}`);
      }
    }
    // Expiries seen by the watch: kept as expired records for the window self-preservation looks at.
    const expired = this.#expired.get(app);
    const records = [...live];
    if (expired) {
      for (const [id, record] of expired) {
        if (liveIds.has(id) || deregistered.has(id) || now - record.expiresAt > HOLD_TTLS * this.#ttlSeconds * 1000) expired.delete(id);
        else records.push(record);
      }
    }
    return { records, deregistered };
  }

  #listen(app: string): void {
    const watching = this.#client
      .watch()
      .prefix(this.#appPrefix(app))
      .withPreviousKV()
      .create()
      .then(
        (watcher) => {
          watcher.on('put', () => void this.#watchers.sync(app));
          watcher.on('delete', (kv, previous) => {
            this.#noteDeletion(app, kv.key.toString(), previous?.value?.toString());
            void this.#watchers.sync(app);
          });
          // Reconnected after an outage: what changed meanwhile is read now.
          watcher.on('connected', () => void this.#watchers.sync(app));
          watcher.on('error', (error) =>
            logWarning('dye.discovery.watch-failed', `watch of ${app} failed (resync continues): ${error.message}`),
          );
          return watcher;
        },
        (error: Error) => {
          logWarning('dye.discovery.watch-failed', `cannot watch ${app} (resync continues): ${error.message}`);
          return undefined;
        },
      );
    this.#etcdWatchers.set(app, watching);
  }

  #unlisten(app: string): void {
    const watching = this.#etcdWatchers.get(app);
    this.#etcdWatchers.delete(app);
    this.#expired.delete(app);
    void watching?.then((watcher) => watcher?.cancel().catch(() => {}));
  }

  /** An instance key deleted: an expiry unless its tombstone says it was deregistered (the read decides that). */
  #noteDeletion(app: string, key: string, previous: string | undefined): void {
    const instances = `${this.#appPrefix(app)}instances/`;
    if (!key.startsWith(instances) || previous === undefined) return;
    try {
      const stored = JSON.parse(previous) as StoredInstance;
      let expired = this.#expired.get(app);
      if (!expired) this.#expired.set(app, (expired = new Map()));
      expired.set(key.slice(instances.length), { instance: normalizeInstance(stored.instance), expiresAt: Date.now() });
    } catch {
      // An unreadable entry was never routed to.
    }
  }

  #appPrefix(app: string): string {
    return `${this.#prefix}/apps/${app}/`;
  }
  #instanceKey(app: string, id: string): string {
    return `${this.#appPrefix(app)}instances/${id}`;
  }
  #tombstoneKey(app: string, id: string): string {
    return `${this.#appPrefix(app)}deregistered/${id}`;
  }
}
