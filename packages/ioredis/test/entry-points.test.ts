import { EventEmitter } from 'node:events';
import { entryPointOf } from '@dye/ioredis';
import { Cluster, Pipeline, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';

// Every method an ioredis client or pipeline has, today and in the version
// installed, is either served for isolated tenants or refused on purpose: a
// method nobody looked at fails here before it reaches production.
function methodsOf(prototype: object): string[] {
  const names = new Set<string>();
  for (let current: object | null = prototype; current && current !== Object.prototype; current = Object.getPrototypeOf(current)) {
    for (const name of Object.getOwnPropertyNames(current)) {
      const descriptor = Object.getOwnPropertyDescriptor(current, name);
      if (typeof descriptor?.value === 'function' || descriptor?.get) names.add(name);
    }
  }
  return [...names];
}

describe('ioredis entry points', () => {
  const redis = new Redis({ lazyConnect: true });
  const cluster = new Cluster([], { lazyConnect: true });

  it.each([
    ['Redis', Redis.prototype, redis],
    ['Cluster', Cluster.prototype, cluster],
    ['EventEmitter', EventEmitter.prototype, redis],
  ] as const)('every method of %s is classified', (_name, prototype, client) => {
    const unclassified = methodsOf(prototype).filter((name) => entryPointOf(client, name) === undefined);
    expect(unclassified).toEqual([]);
  });

  it('every builtin command and its Buffer form is a command', () => {
    // multi() builds a pipeline, quit() closes the isolated connections too.
    const special: Record<string, string> = { multi: 'pipeline', quit: 'lifecycle', quitBuffer: 'lifecycle' };
    for (const name of redis.getBuiltinCommands()) {
      expect(entryPointOf(redis, name)).toBe(special[name] ?? 'command');
      expect(entryPointOf(redis, `${name}Buffer`)).toBe(special[`${name}Buffer`] ?? 'command');
    }
  });

  it('scripts and added builtins of the client are commands', () => {
    const client = new Redis({ lazyConnect: true });
    client.defineCommand('myScript', { numberOfKeys: 1, lua: 'return 1' });
    client.addBuiltinCommand('json.set');
    expect(entryPointOf(client, 'myScript')).toBe('command');
    expect(entryPointOf(client, 'myScriptBuffer')).toBe('command');
    expect(entryPointOf(client, 'json.set')).toBe('command');
    expect(entryPointOf(client, 'notAMethod')).toBeUndefined();
  });

  it('every pipeline method other than its bookkeeping queues through sendCommand', () => {
    // A pipeline of a planned connection has its sendCommand replaced; these
    // are the only methods that do not end there.
    // (defineCommand/addBuiltinCommand on a pipeline add methods that queue through it too.)
    const bookkeeping = new Set([
      'constructor',
      'fillResult',
      'sendCommand',
      'exec',
      'execBuffer',
      'addBatch',
      'getBuiltinCommands',
      'createBuiltinCommand',
      'addBuiltinCommand',
      'defineCommand',
    ]);
    const pipeline = redis.pipeline() as unknown as Record<string, (...args: unknown[]) => unknown>;
    const queued: string[] = [];
    pipeline.sendCommand = (command: unknown) => {
      queued.push((command as { name: string }).name);
      return pipeline;
    };
    const silent: string[] = [];
    for (const name of methodsOf(Pipeline.prototype)) {
      if (bookkeeping.has(name) || typeof pipeline[name] !== 'function') continue;
      const before = queued.length;
      try {
        pipeline[name]?.('k', 'v');
      } catch {
        // Argument errors thrown before queueing send nothing either.
      }
      if (queued.length === before && !['call', 'callBuffer', 'send_command'].includes(name)) silent.push(name);
    }
    expect(silent).toEqual([]);
  });
});
