import type { InstancesUpdate, Registry } from '../src/index.js';

/** Resolves with the first update a watcher gets that satisfies `done`. */
export function nextUpdate(registry: Pick<Registry, 'watch'>, app: string, done: (update: InstancesUpdate) => boolean, timeoutMs = 5000) {
  const watcher = new Watcher(registry, app);
  return watcher.until(done, timeoutMs).finally(() => watcher.stop());
}

/** A caller that keeps watching an app, as a router does, and can wait for a state. */
export class Watcher {
  latest: InstancesUpdate | undefined;
  readonly #waiters = new Set<{ done: (update: InstancesUpdate) => boolean; resolve: (update: InstancesUpdate) => void }>();
  readonly stop: () => void;

  constructor(registry: Pick<Registry, 'watch'>, app: string) {
    this.stop = registry.watch(app, (update) => {
      this.latest = update;
      for (const waiter of this.#waiters) {
        if (waiter.done(update)) {
          this.#waiters.delete(waiter);
          waiter.resolve(update);
        }
      }
    });
  }

  until(done: (update: InstancesUpdate) => boolean, timeoutMs = 5000): Promise<InstancesUpdate> {
    if (this.latest && done(this.latest)) return Promise.resolve(this.latest);
    return new Promise((resolve, reject) => {
      const waiter = {
        done,
        resolve: (update: InstancesUpdate) => {
          clearTimeout(timer);
          resolve(update);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`no matching update within ${timeoutMs} ms; latest: ${JSON.stringify(this.latest)}`));
      }, timeoutMs);
      this.#waiters.add(waiter);
    });
  }
}

export const ids = (update: InstancesUpdate) => update.instances.map((item) => item.id).sort();
