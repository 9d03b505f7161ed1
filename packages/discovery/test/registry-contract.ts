/**
 * What every registry promises its callers, run against each store on the
 * real server (registry-contract.test.ts): registration and change events,
 * expiry of a stopped instance, self-preservation, and outages of the store
 * itself (a store of the test's own, stopped and started mid-run).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Instance, InstancesUpdate, Registry } from '../src/index.js';
import { ids, Watcher } from './watching.js';

/** A store of the test's own, to stop and start. */
export interface OwnStore {
  readonly url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stops it and removes its data: the next start is an empty store. */
  wipe(): Promise<void>;
  dispose(): Promise<void>;
}

export interface ContractSubject {
  readonly name: string;
  /** The TTL the registries below use, ms. */
  readonly ttl: number;
  /** A registry on the shared store (`url` absent) or on `url`; each call is another process's view of the same registry. */
  registry(url?: string): Registry;
  ownStore(): Promise<OwnStore>;
}

const instance = (id: string, app: string, lane = 'baseline'): Instance => ({
  app,
  id,
  address: `127.0.0.1:${5000 + Number(id.replace(/\D/g, '') || 0)}`,
  lane,
});

export function registryContract(subject: ContractSubject): void {
  describe(`${subject.name}: the registry contract`, () => {
    const opened: Registry[] = [];
    const open = (url?: string) => {
      const registry = subject.registry(url);
      opened.push(registry);
      return registry;
    };
    afterAll(async () => {
      await Promise.all(opened.map((registry) => registry.close().catch(() => {})));
    });
    const unique = (name: string) => `contract.${name}-${process.pid}-${Math.floor(Math.random() * 1e6)}`;

    it('announces registrations with their lanes, and deregistrations at once', async () => {
      const app = unique('announce');
      const caller = open();
      const watcher = new Watcher(caller, app);
      const base = await open().register(instance('a1', app));
      const red = await open().register(instance('a2', app, 'red'));
      const both = await watcher.until((update) => update.instances.length === 2);
      expect(both.instances.map((item) => [item.id, item.lane]).sort()).toEqual([
        ['a1', 'baseline'],
        ['a2', 'red'],
      ]);
      expect(red.propagationMs).toBeGreaterThanOrEqual(0);
      await red.deregister();
      const after = await watcher.until((update) => update.instances.length === 1);
      expect([ids(after), after.preserving]).toEqual([['a1'], false]);
      expect(ids(await caller.snapshot(app))).toEqual(['a1']);
      await base.deregister();
      watcher.stop();
    });

    it('drops one instance whose process stopped (no deregistration) within TTL + resync: one crash is not a storm', async () => {
      const app = unique('crash');
      const watcher = new Watcher(open(), app);
      const stable = open();
      await Promise.all(['c1', 'c2', 'c3'].map((id) => stable.register(instance(id, app))));
      const crashing = open();
      await crashing.register(instance('c4', app, 'red'));
      await watcher.until((update) => update.instances.length === 4);
      await crashing.close();
      const after = await watcher.until((update) => update.instances.length === 3, subject.ttl * 3 + 5_000);
      expect([ids(after), after.preserving]).toEqual([['c1', 'c2', 'c3'], false]);
      watcher.stop();
    });

    it('holds a mass expiry (half the instances stop renewing at once), but lets a deregistration through', async () => {
      const app = unique('storm');
      const watcher = new Watcher(open(), app);
      const stable = open();
      const kept = await Promise.all(['m1', 'm2'].map((id) => stable.register(instance(id, app))));
      const partitioned = open();
      await Promise.all(['m3', 'm4'].map((id) => partitioned.register(instance(id, app))));
      await watcher.until((update) => update.instances.length === 4);
      await partitioned.close();
      const held = await watcher.until((update) => update.preserving, subject.ttl * 3 + 5_000);
      expect(ids(held)).toEqual(['m1', 'm2', 'm3', 'm4']);
      // Still held after another TTL.
      await new Promise((resolve) => setTimeout(resolve, subject.ttl));
      expect(watcher.latest && ids(watcher.latest)).toEqual(['m1', 'm2', 'm3', 'm4']);
      await kept[0]?.deregister();
      expect(ids(await watcher.until((update) => update.instances.length === 3))).toEqual(['m2', 'm3', 'm4']);
      watcher.stop();
    });

    it('routes from its cache while the store is down, never shrinks the pool, and heals when it is back', async () => {
      const store = await subject.ownStore();
      await store.start();
      const app = unique('outage');
      const writer = open(store.url);
      const reader = open(store.url);
      const seen: InstancesUpdate[] = [];
      const watcher = new Watcher(reader, app);
      const record = reader.watch(app, (update) => seen.push(update));
      try {
        await writer.register(instance('o1', app));
        await writer.register(instance('o2', app, 'red'));
        await watcher.until((update) => update.instances.length === 2);
        const since = seen.length - 1;
        await store.stop();
        expect(ids(await watcher.until((update) => update.stale, 15_000))).toEqual(['o1', 'o2']);
        // Longer than a TTL: nothing renews meanwhile.
        await new Promise((resolve) => setTimeout(resolve, subject.ttl + 500));
        await store.start();
        const healed = await watcher.until((update) => !update.stale && !update.preserving && update.instances.length === 2, 20_000);
        expect(ids(healed)).toEqual(['o1', 'o2']);
        expect(Math.min(...seen.slice(since).map((update) => update.instances.length))).toBe(2);
        // Changes after the outage arrive.
        await writer.register(instance('o3', app));
        expect(ids(await watcher.until((update) => update.instances.length === 3, 10_000))).toEqual(['o1', 'o2', 'o3']);
      } finally {
        record();
        watcher.stop();
        await store.dispose();
      }
    }, 90_000);

    it('a store that comes back empty after an outage longer than a TTL never empties a pool; instances are alive again after', async () => {
      const store = await subject.ownStore();
      await store.start();
      const app = unique('empty');
      const writer = open(store.url);
      const reader = open(store.url);
      const seen: InstancesUpdate[] = [];
      const watcher = new Watcher(reader, app);
      const record = reader.watch(app, (update) => seen.push(update));
      try {
        await writer.register(instance('e1', app));
        await writer.register(instance('e2', app, 'red'));
        await watcher.until((update) => update.instances.length === 2);
        const since = seen.length - 1;
        await store.wipe();
        await new Promise((resolve) => setTimeout(resolve, subject.ttl + 500));
        await store.start();
        const back = await watcher.until((update) => !update.stale && !update.preserving && update.instances.length === 2, 30_000);
        expect(ids(back)).toEqual(['e1', 'e2']);
        expect(Math.min(...seen.slice(since).map((update) => update.instances.length))).toBe(2);
      } finally {
        record();
        watcher.stop();
        await store.dispose();
      }
    }, 90_000);

    it('register() waits out a store that is down, and succeeds when it is up', async () => {
      const store = await subject.ownStore();
      try {
        const registry = open(store.url);
        const app = unique('late');
        const registering = registry.register(instance('l1', app));
        registering.catch(() => {});
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        await store.start();
        const registration = await registering;
        expect(registration.instance.id).toBe('l1');
        expect(ids(await open(store.url).snapshot(app))).toEqual(['l1']);
      } finally {
        await store.dispose();
      }
    }, 60_000);

    it('a registry closed while register() waits rejects it, naming the instance', async () => {
      const store = await subject.ownStore();
      try {
        const registry = open(store.url);
        const registering = registry.register(instance('n1', unique('never')));
        await new Promise((resolve) => setTimeout(resolve, 300));
        const outcome = expect(registering).rejects.toThrow(/closed before contract\.never.*\/n1 could register/);
        await registry.close();
        await outcome;
      } finally {
        await store.dispose();
      }
    }, 30_000);
  });
}
