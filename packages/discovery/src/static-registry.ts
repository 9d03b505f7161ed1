import { readFileSync } from 'node:fs';
import { checkAppName, type Instance, normalizeInstance } from './instance.js';
import type { InstancesListener, InstancesUpdate, Registration, Registry } from './registry.js';

/**
 * A registry held in memory, from a list of instances or a JSON file (an array
 * of instances, or `{ "instances": [...] }`). For tests and small fixed setups:
 * `register` adds to it and watchers hear about it, but nothing expires.
 */
export class StaticRegistry implements Registry {
  readonly #instances = new Map<string, Map<string, Instance>>();
  readonly #listeners = new Map<string, Set<InstancesListener>>();

  constructor(instances: readonly Instance[] = []) {
    for (const instance of instances) this.#add(normalizeInstance(instance));
  }

  /** Reads `[...]` or `{ "instances": [...] }` from a JSON file. */
  static fromFile(path: string): StaticRegistry {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      throw new TypeError(`StaticRegistry: cannot read ${path}: ${(error as Error).message}`);
    }
    const list = Array.isArray(parsed) ? parsed : (parsed as { instances?: unknown })?.instances;
    if (!Array.isArray(list)) throw new TypeError(`StaticRegistry: ${path} holds no instance list`);
    return new StaticRegistry(list as Instance[]);
  }

  async register(instance: Instance): Promise<Registration> {
    const normalized = normalizeInstance(instance);
    this.#add(normalized);
    this.#notify(normalized.app);
    return {
      instance: normalized,
      // Watchers are told synchronously.
      propagationMs: 0,
      deregister: async () => {
        this.#instances.get(normalized.app)?.delete(normalized.id);
        this.#notify(normalized.app);
      },
    };
  }

  watch(app: string, listener: InstancesListener): () => void {
    checkAppName(app);
    let listeners = this.#listeners.get(app);
    if (!listeners) this.#listeners.set(app, (listeners = new Set()));
    listeners.add(listener);
    queueMicrotask(() => {
      if (listeners.has(listener)) listener(this.#update(app));
    });
    return () => {
      listeners.delete(listener);
    };
  }

  async snapshot(app: string): Promise<InstancesUpdate> {
    checkAppName(app);
    return this.#update(app);
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }

  #add(instance: Instance): void {
    let byId = this.#instances.get(instance.app);
    if (!byId) this.#instances.set(instance.app, (byId = new Map()));
    byId.set(instance.id, instance);
  }

  #update(app: string): InstancesUpdate {
    return { app, instances: [...(this.#instances.get(app)?.values() ?? [])], syncedAt: Date.now(), stale: false, preserving: false };
  }

  #notify(app: string): void {
    const update = this.#update(app);
    for (const listener of this.#listeners.get(app) ?? []) listener(update);
  }
}
