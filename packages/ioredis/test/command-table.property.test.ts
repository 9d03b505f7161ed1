import { IsolationError, setLogger, withTenant } from '@dye/core';
import { planCommand, tenantRedis } from '@dye/ioredis';
import { hasFlag, list } from '@ioredis/commands';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, OwnRedisServer } from '../../../test/support/redis-server.js';
import { productionSnapshot, ServerRecorder, shadowUser } from './support.js';

// Random commands of the whole table with random arguments, run under shadow
// on a Redis of this file's own: whatever reaches the server names only
// shadow keys, refusals send nothing, and production data never changes.
let server: OwnRedisServer;
let raw: Redis;
let admin: Redis;
let recorder: ServerRecorder;

// Commands that would stop the test connection from working at all (protocol
// switch, closing it, entering subscriber or transaction mode, blocking).
const UNUSABLE = new Set([
  'hello',
  'quit',
  'reset',
  'auth',
  'monitor',
  'sync',
  'psync',
  'multi',
  'exec',
  'discard',
  'watch',
  'unwatch',
  'subscribe',
  'psubscribe',
  'ssubscribe',
  'unsubscribe',
  'punsubscribe',
  'sunsubscribe',
  'wait',
  'waitaof',
  'client',
  'readonly',
  'readwrite',
]);
const commands = list.filter((name) => !UNUSABLE.has(name) && !hasFlag(name, 'blocking'));
const keyToken = fc.constantFrom('user:1', 'counter', 'queue', 'profile:1', 'tags', 'scores', 'events', '42', '{t}k');
const otherToken = fc.constantFrom(
  '0',
  '1',
  '2',
  '10',
  '-1',
  '*',
  'MATCH',
  'STORE',
  'BY',
  'GET',
  '#',
  'STREAMS',
  '$',
  'COUNT',
  'WITHSCORES',
  'LEFT',
  'NX',
  'v',
);
const argument = fc.oneof(keyToken, otherToken, fc.string({ maxLength: 6 }));

beforeAll(async () => {
  setLogger({ warn: () => {} });
  server = new OwnRedisServer(await freePort());
  await server.start();
  admin = new Redis(server.url);
  await admin.mset('user:1', 'alice', 'counter', '10', '42', 'n', '{t}k', 'tagged');
  await admin.rpush('queue', 'job');
  await admin.hset('profile:1', 'name', 'alice');
  await admin.sadd('tags', 'a');
  await admin.zadd('scores', 1, 'alice');
  await admin.xadd('events', '*', 'type', 'order');
  raw = new Redis(server.url, { maxRetriesPerRequest: 1 });
  recorder = await ServerRecorder.start(server.url);
  await recorder.ignore(admin);
});

afterAll(async () => {
  await recorder.stop();
  raw.disconnect();
  admin.disconnect();
  await server.stop();
});

describe('the command table under shadow', () => {
  it(`holds for random commands of ${commands.length} (MONITOR and production checks)`, async () => {
    const redis = tenantRedis(raw, { isolated: await shadowUser(admin) });
    const production = await productionSnapshot(admin);
    let sent = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...commands), fc.array(argument, { maxLength: 6 }), async (name, args) => {
        recorder.clear();
        const outcome = await withTenant('shadow', () => redis.call(name, ...args)).then(
          () => 'ok',
          (error: unknown) => (error instanceof IsolationError ? 'refused' : 'server error'),
        );
        await recorder.settle();
        if (outcome === 'refused') {
          refused++;
          expect(recorder.received).toEqual([]);
        } else {
          sent++;
          expect(recorder.keysReceived().filter((key) => !key.startsWith('shadow:'))).toEqual([]);
        }
      }),
      { numRuns: Number(process.env.DYE_PROPERTY_RUNS ?? 600) },
    );
    expect(await productionSnapshot(admin)).toEqual(production);
    // Both paths were exercised.
    expect(sent).toBeGreaterThan(50);
    expect(refused).toBeGreaterThan(20);
  }, 120_000);
});

describe('key positions as Redis reads them', () => {
  it('every key the server finds in a planned command (COMMAND GETKEYS) is a shadow key', async () => {
    const word = fc.oneof(
      argument,
      argument.map((text) => Buffer.from(text)),
    );
    let compared = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...list), fc.array(word, { maxLength: 8 }), async (name, args) => {
        const plan = planCommand(name, args, 'shadow:');
        if (plan.kind === 'refuse') return;
        const keys = await admin.call('COMMAND', 'GETKEYS', plan.name, ...(plan.args as string[])).then(
          (reply) => (reply as string[]).map(String),
          () => undefined, // not a valid command, or one without keys: the server would refuse it too
        );
        if (keys === undefined) return;
        compared++;
        expect(keys.filter((key) => !key.startsWith('shadow:'))).toEqual([]);
      }),
      { numRuns: Number(process.env.DYE_PROPERTY_RUNS ?? 3000) },
    );
    expect(compared).toBeGreaterThan(100);
  }, 120_000);
});
