import { EventEmitter, once } from 'node:events';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { BASELINE, bindTenant, currentTenant, withTenant } from '../src/index.js';

const name = () => currentTenant().name;

describe('withTenant / currentTenant', () => {
  it('is baseline outside any tenant', () => {
    expect(currentTenant()).toBe(BASELINE);
  });

  it('takes a name or a Tenant and returns what fn returns', () => {
    expect(withTenant('red', () => currentTenant())).toEqual({ name: 'red', kind: 'color' });
    expect(withTenant('SHADOW', () => currentTenant())).toEqual({ name: 'shadow', kind: 'isolated' });
    const tenant = { name: 'canary', kind: 'color' } as const;
    expect(withTenant(tenant, () => currentTenant())).toBe(tenant);
    expect(withTenant('red', () => 42)).toBe(42);
  });

  it('throws a TypeError on an invalid name instead of running fn', () => {
    const fn = vi.fn();
    expect(() => withTenant('not a tenant', fn)).toThrow(TypeError);
    expect(fn).not.toHaveBeenCalled();
  });

  it('refuses hand-made Tenant objects that would escape isolation or are not tenants', () => {
    const fn = vi.fn();
    const invalid = [
      { name: 'shadow', kind: 'color' },
      { name: 'shadow-lt1', kind: 'baseline' },
      { name: 'red', kind: 'baseline' },
      { name: 'baseline', kind: 'color' },
      { name: 'Red', kind: 'color' },
      { name: 'a b', kind: 'color' },
      { name: 'red', kind: 'purple' },
      { kind: 'color' },
      null,
    ];
    for (const tenant of invalid) {
      expect(() => withTenant(tenant as never, fn)).toThrow(TypeError);
      expect(() => bindTenant(fn, tenant as never)).toThrow(TypeError);
    }
    expect(fn).not.toHaveBeenCalled();
  });

  it('nests, and restores the outer tenant after the inner one', async () => {
    await withTenant('red', async () => {
      await withTenant('shadow', async () => {
        await sleep(1);
        expect(name()).toBe('shadow');
      });
      expect(name()).toBe('red');
      await withTenant('baseline', async () => {
        expect(currentTenant()).toBe(BASELINE);
      });
      expect(name()).toBe('red');
    });
    expect(currentTenant()).toBe(BASELINE);
  });

  it('survives await chains, Promise.all, timers, setImmediate, nextTick and queueMicrotask', async () => {
    const seen = await withTenant('red', async () => {
      const results: string[] = [];
      await Promise.resolve();
      results.push(name());
      await sleep(2);
      results.push(name());
      const all = await Promise.all([
        (async () => {
          await sleep(3);
          return name();
        })(),
        new Promise<string>((resolve) => setTimeout(() => resolve(name()), 1)),
        new Promise<string>((resolve) => setImmediate(() => resolve(name()))),
        new Promise<string>((resolve) => process.nextTick(() => resolve(name()))),
        new Promise<string>((resolve) => queueMicrotask(() => resolve(name()))),
        new Promise<string>((resolve) => {
          const interval = setInterval(() => {
            clearInterval(interval);
            resolve(name());
          }, 1);
        }),
      ]);
      results.push(...all);
      return results;
    });
    expect(seen).toEqual(Array(8).fill('red'));
  });

  it('reaches EventEmitter listeners that fire asynchronously in the tenant that created them', async () => {
    const seen = await withTenant('canary', async () => {
      const emitter = new EventEmitter();
      const heard = once(emitter, 'tick').then(() => name());
      setTimeout(() => emitter.emit('tick'), 1);
      return heard;
    });
    expect(seen).toBe('canary');
  });

  it('reaches stream callbacks of streams created inside the tenant', async () => {
    const seen: string[] = [];
    await withTenant('shadow', async () => {
      const source = Readable.from(
        (async function* () {
          for (let i = 0; i < 3; i++) {
            await sleep(1);
            yield i;
          }
        })(),
      );
      const tap = new Transform({
        objectMode: true,
        transform(chunk, _encoding, callback) {
          seen.push(name());
          setImmediate(() => callback(null, chunk));
        },
      });
      tap.on('data', () => seen.push(name()));
      await pipeline(source, tap);
    });
    expect(seen.length).toBe(6);
    expect(new Set(seen)).toEqual(new Set(['shadow']));
  });

  it('never leaks: 1,000 interleaved units of work across three tenants each see only their own', async () => {
    const tenants = ['baseline', 'red', 'shadow'] as const;
    const mismatches: string[] = [];
    const shared = new EventEmitter();
    shared.setMaxListeners(0);
    await Promise.all(
      Array.from({ length: 1000 }, (_, i) => {
        const tenant = tenants[i % 3] as string;
        return withTenant(tenant, async () => {
          for (let step = 0; step < 5; step++) {
            // Random delays interleave the units; each checks after every hop.
            await sleep(Math.floor(Math.random() * 3));
            if (name() !== tenant) mismatches.push(`${i}@${step}: ${name()} != ${tenant}`);
            await new Promise((resolve) => setImmediate(resolve));
            if (name() !== tenant) mismatches.push(`${i}@${step}b: ${name()} != ${tenant}`);
          }
        });
      }),
    );
    expect(mismatches).toEqual([]);
    expect(currentTenant()).toBe(BASELINE);
  });
});

describe('bindTenant', () => {
  it('runs a stored callback in the tenant current when it was bound, whoever calls it', async () => {
    const queue: Array<() => string> = [];
    withTenant('red', () => queue.push(bindTenant(() => name())));
    withTenant('shadow', () => queue.push(bindTenant(() => name())));
    // Drained from a third tenant's context, as a pool releasing connections would.
    const drained = withTenant('canary', () => queue.map((callback) => callback()));
    expect(drained).toEqual(['red', 'shadow']);
  });

  it('binds to an explicit tenant, keeps this and arguments', () => {
    const target = {
      label: 'cart',
      describe(this: { label: string }, suffix: string) {
        return `${this.label}:${suffix}:${name()}`;
      },
    };
    const bound = bindTenant(target.describe, 'shadow');
    expect(bound.call(target, 'x')).toBe('cart:x:shadow');
  });

  it('binds baseline explicitly, so the caller tenant does not leak in', () => {
    const bound = bindTenant(() => name());
    expect(withTenant('red', bound)).toBe('baseline');
  });
});

/** A query builder as Knex and Drizzle make them: nothing runs until `then` is called. */
class LazyQuery implements PromiseLike<string> {
  readonly #table: string;
  static started: string[] = [];
  constructor(table: string) {
    this.#table = table;
  }
  where(column: string): LazyQuery {
    return new LazyQuery(`${this.#table}.${column}`);
  }
  get table(): string {
    return this.#table;
  }
  then<A = string, B = never>(
    onFulfilled?: ((value: string) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ) {
    // Runs "the query" now, in whatever tenant is current at this moment.
    const ranIn = name();
    LazyQuery.started.push(ranIn);
    const work = (async () => {
      await sleep(1);
      if (this.#table === 'fail') throw new Error(`failed in ${name()}`);
      return `${this.#table}@${ranIn}`;
    })();
    return work.then(onFulfilled, onRejected);
  }
  /** Runs now, as Drizzle's execute() does, in whatever tenant is current. */
  execute(): Promise<string> {
    return Promise.resolve(`${this.#table}@${name()}`);
  }
  prepare(): PreparedQuery {
    return new PreparedQuery(this.#table);
  }
  /** Starts work when read, as a careless builder's getter might. */
  get run(): Promise<string> {
    return Promise.resolve(`${this.#table}@${name()}`);
  }
  /** Resolves to a prepared query, as an async prepare() would. */
  async prepareLater(): Promise<PreparedQuery> {
    return new PreparedQuery(this.#table);
  }
  /** A plain-object iterator that does the work on next(). */
  plainIterator(): AsyncIterator<string> & AsyncIterable<string> {
    let done = false;
    const table = this.#table;
    return {
      next: async () => (done ? { done: true, value: undefined } : ((done = true), { done: false, value: `${table}@${name()}` })),
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }
  [Symbol.asyncIterator](): AsyncIterator<string> {
    return this.plainIterator();
  }
  /** Hands out a function that does the work when called later. */
  runner(): () => Promise<string> {
    return () => Promise.resolve(`${this.#table}@${name()}`);
  }
  async *iterator(): AsyncGenerator<string> {
    await sleep(1);
    yield `${this.#table}@${name()}`;
    yield `${this.#table}@${name()}`;
  }
  // As Drizzle's QueryPromise: both go through this.then.
  catch(onRejected: (reason: unknown) => string): PromiseLike<string> {
    return this.then(undefined, onRejected);
  }
  finally(onFinally: () => void): PromiseLike<string> {
    return this.then(
      (value) => {
        onFinally();
        return value;
      },
      (reason) => {
        onFinally();
        throw reason;
      },
    );
  }
}

class PreparedQuery {
  constructor(readonly table: string) {}
  execute(): Promise<string> {
    return Promise.resolve(`${this.table}@${name()}`);
  }
}

describe('lazy thenables (query builders awaited outside the callback)', () => {
  it('every method of the builder runs in its tenant: execute(), prepare().execute(), iterator()', async () => {
    const query = withTenant('shadow', () => new LazyQuery('stock'));
    expect(await query.execute()).toBe('stock@shadow');
    expect(await query.prepare().execute()).toBe('stock@shadow');
    const rows: string[] = [];
    for await (const row of query.iterator()) rows.push(row);
    expect(rows).toEqual(['stock@shadow', 'stock@shadow']);
    expect(await withTenant('red', () => query.where('id').execute())).toBe('stock.id@shadow');
    expect(await query.run).toBe('stock@shadow');
    const runner = query.runner();
    expect(await withTenant('red', () => runner())).toBe('stock@shadow');
    expect(await (await query.prepareLater()).execute()).toBe('stock@shadow');
    const seen: string[] = [];
    for await (const row of query.plainIterator()) seen.push(row);
    for await (const row of query) seen.push(row);
    expect(seen).toEqual(['stock@shadow', 'stock@shadow']);
    expect(query.prepare()).toBeInstanceOf(PreparedQuery);
    expect(query.prepare().table).toBe('stock');
    expect(name()).toBe('baseline');
  });

  it('withTenant runs the thenable when it is awaited, in the tenant it was built in', async () => {
    const query = withTenant('shadow', () => new LazyQuery('stock'));
    expect(name()).toBe('baseline');
    expect(await query).toBe('stock@shadow');
    expect(name()).toBe('baseline');
    expect(await withTenant('red', () => query)).toBe('stock@shadow');
  });

  it('keeps the builder usable: members, getters and private fields, catch and finally', async () => {
    const query = withTenant('shadow', () => new LazyQuery('orders'));
    expect(query.table).toBe('orders');
    expect(query instanceof LazyQuery).toBe(true);
    expect(await withTenant('shadow', () => query.where('id'))).toBe('orders.id@shadow');
    const failing = withTenant('shadow', () => new LazyQuery('fail'));
    const caught = await failing.catch((error) => (error as Error).message);
    expect(caught).toBe('failed in shadow');
    let finalized = '';
    const value = await withTenant('shadow', () => new LazyQuery('t')).finally(() => {
      finalized = name();
    });
    // Callbacks chained on the builder belong to its work; the awaiting code does not.
    expect([value, finalized, name()]).toEqual(['t@shadow', 'shadow', 'baseline']);
  });

  it('bindTenant does the same for a function returning a builder', async () => {
    const build = bindTenant(() => new LazyQuery('notifications'), 'shadow-lt1');
    expect(await withTenant('red', () => build())).toBe('notifications@shadow-lt1');
  });

  it('leaves native promises and plain values as they are', async () => {
    const promise = Promise.resolve(1);
    expect(withTenant('shadow', () => promise)).toBe(promise);
    const plain = { then: 1 };
    expect(withTenant('shadow', () => plain)).toBe(plain);
  });

  it('1,000 builders of four tenants, awaited together from baseline: each ran in its own tenant', async () => {
    LazyQuery.started = [];
    const tenants = ['baseline', 'red', 'shadow', 'shadow-lt1'];
    const built = Array.from({ length: 1000 }, (_, i) => withTenant(tenants[i % 4] as string, () => new LazyQuery(String(i))));
    const results = await Promise.all(built);
    const wrong = results.filter((result, i) => result !== `${i}@${tenants[i % 4]}`);
    expect(wrong).toEqual([]);
  });
});

describe('the shared context', () => {
  it('lives under globalThis[Symbol.for("dye.context")] and is shared by a second copy of core', async () => {
    const holder = (globalThis as Record<symbol, unknown>)[Symbol.for('dye.context')] as { version: number };
    expect(holder.version).toBe(1);
    vi.resetModules();
    // A query string makes the module loader evaluate context.ts a second time,
    // as a second copy of @dye/core in node_modules would be.
    const secondCopyUrl = new URL('../src/context.ts?copy=2', import.meta.url).href;
    const secondCopy: typeof import('../src/context.js') = await import(/* @vite-ignore */ secondCopyUrl);
    expect(secondCopy.withTenant).not.toBe(withTenant);
    expect(withTenant('red', () => secondCopy.currentTenant().name)).toBe('red');
    expect(secondCopy.withTenant('shadow', () => name())).toBe('shadow');
  });
});
