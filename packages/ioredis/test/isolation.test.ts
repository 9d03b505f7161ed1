import { IsolationError, setLogger, withTenant } from '@dye/core';
import { grantShadowAccess, type IsolatedRedisUser, tenantRedis } from '@dye/ioredis';
import { Command, Redis, type RedisOptions } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort, OwnRedisServer } from '../../../test/support/redis-server.js';
import { productionSnapshot, ServerRecorder, shadowUser } from './support.js';

// A Redis of this file's own, so MONITOR sees nothing but this file's traffic.
let server: OwnRedisServer;
let raw: Redis;
let redis: Redis;
let admin: Redis;
let recorder: ServerRecorder;
let production: Map<string, string>;
let isolated: IsolatedRedisUser;

const shadow = <T>(fn: () => Promise<T>) => withTenant('shadow', fn);

beforeAll(async () => {
  setLogger({ warn: () => {} });
  server = new OwnRedisServer(await freePort());
  await server.start();
  admin = new Redis(server.url);
  // Production data of every type, which no shadow command may touch.
  await admin.mset('user:1', 'alice', 'counter', '10', '42', 'numeric-key', 'list:a', 'x');
  await admin.del('list:a');
  await admin.rpush('queue', 'job-1', 'job-2');
  await admin.hset('profile:1', { name: 'alice', plan: 'pro' });
  await admin.sadd('tags', 'a', 'b');
  await admin.zadd('scores', 1, 'alice', 2, 'bob');
  await admin.xadd('events', '*', 'type', 'order');
  await admin.geoadd('shops', 13.361389, 38.115556, 'palermo');
  isolated = await shadowUser(admin);
  raw = new Redis(server.url);
  redis = tenantRedis(raw, { isolated });
  recorder = await ServerRecorder.start(server.url);
  await recorder.ignore(admin);
  production = await productionSnapshot(admin);
});

afterAll(async () => {
  await recorder.stop();
  raw.disconnect();
  admin.disconnect();
  await server.stop();
});

beforeEach(() => recorder.clear());

/** After each family: every key that reached the server is a shadow key, and production is unchanged. */
async function expectIsolated(): Promise<void> {
  await recorder.settle();
  const keys = recorder.keysReceived();
  expect(keys.length).toBeGreaterThan(0);
  expect(keys.filter((key) => !key.startsWith('shadow:'))).toEqual([]);
  expect(await productionSnapshot(admin)).toEqual(production);
}

describe('every command family under shadow lands in shadow:', () => {
  it('strings, numeric and Buffer keys', async () => {
    await shadow(async () => {
      await redis.set('user:1', 'mallory');
      expect(await redis.get('user:1')).toBe('mallory');
      await redis.set(42 as unknown as string, 'shadow-numeric');
      await redis.incr('counter');
      await redis.mset('a', '1', 'b', '2');
      await redis.mset({ c: '3', d: '4' });
      expect(await redis.mget('a', 'b', 'c', 'd')).toEqual(['1', '2', '3', '4']);
      await redis.set(Buffer.from('bin:key'), 'bytes');
      expect(await redis.getBuffer(Buffer.from('bin:key'))).toEqual(Buffer.from('bytes'));
      await redis.setex('temp', 60, 'v');
      await redis.getdel('temp');
      await redis.copy('a', 'a-copy');
      await redis.rename('a-copy', 'a-renamed');
      expect(await redis.exists('a', 'b', 'missing')).toBe(2);
    });
    expect(await admin.get('shadow:user:1')).toBe('mallory');
    expect(await admin.get('shadow:42')).toBe('shadow-numeric');
    await expectIsolated();
  });

  it('hashes, lists, sets and sorted sets, multi-key and numkeys forms', async () => {
    await shadow(async () => {
      await redis.hset('profile:1', { name: 'mallory' });
      expect(await redis.hgetall('profile:1')).toEqual({ name: 'mallory' });
      await redis.rpush('queue', 'fake-1', 'fake-2');
      await redis.lmove('queue', 'done', 'LEFT', 'RIGHT');
      expect(await redis.call('LMPOP', '2', 'missing', 'queue', 'LEFT')).toEqual(['queue', ['fake-2']]);
      await redis.sadd('tags', 'x', 'y');
      await redis.sadd('tags2', 'y');
      expect(await redis.sinter('tags', 'tags2')).toEqual(['y']);
      await redis.sinterstore('both', 'tags', 'tags2');
      expect(await redis.sintercard(2, 'tags', 'tags2')).toBe(1);
      await redis.zadd('scores', 5, 'mallory');
      await redis.zadd('scores2', 1, 'mallory');
      await redis.zunionstore('sum', 2, 'scores', 'scores2');
      expect(await redis.zunion(2, 'scores', 'scores2', 'WITHSCORES')).toEqual(['mallory', '6']);
      await redis.zinter(2, 'scores', 'scores2');
      await redis.zdiff(2, 'scores', 'scores2');
      expect(await redis.zmpop(1, 'sum', 'MIN')).toEqual(['sum', [['mallory', '6']]]);
    });
    await expectIsolated();
  });

  it('blocking pops name their key without the prefix', async () => {
    await shadow(async () => {
      await redis.rpush('jobs', 'j1');
      expect(await redis.blpop('empty', 'jobs', 1)).toEqual(['jobs', 'j1']);
      await redis.zadd('zjobs', 1, 'z1');
      expect(await redis.bzpopmin('zjobs', 1)).toEqual(['zjobs', 'z1', '1']);
    });
    await expectIsolated();
  });

  it('streams: XADD, XREAD STREAMS, groups, XINFO', async () => {
    await shadow(async () => {
      const id = await redis.xadd('events', '*', 'type', 'fake');
      const read = await redis.xread('COUNT', 10, 'STREAMS', 'events', '0');
      expect(read?.[0]?.[0]).toBe('events');
      expect(read?.[0]?.[1]?.[0]?.[0]).toBe(id);
      await redis.xgroup('CREATE', 'events', 'g1', '0');
      const grouped = await redis.xreadgroup('GROUP', 'g1', 'c1', 'COUNT', 1, 'STREAMS', 'events', '>');
      expect((grouped as [string, unknown][])[0]?.[0]).toBe('events');
      await redis.xinfo('STREAM', 'events');
    });
    await expectIsolated();
  });

  it('RESP3 map replies (ioredis 6, replyMapping resp3): stream and channel names come back without the prefix', async () => {
    // ioredis 5 ignores the options and answers arrays: the names are checked in either shape.
    const client = new Redis(server.url, { protocol: 3, replyMapping: 'resp3' } as RedisOptions);
    const wrapped = tenantRedis(client, { isolated });
    try {
      await shadow(async () => {
        await wrapped.xadd('events3', '*', 'type', 'fake');
        const read = (await wrapped.xread('STREAMS', 'events3', '0')) as unknown;
        expect(Array.isArray(read) ? read.map((stream: unknown[]) => stream[0]) : Object.keys(read as object)).toEqual(['events3']);
        await wrapped.xgroup('CREATE', 'events3', 'g3', '0');
        const grouped = (await wrapped.xreadgroup('GROUP', 'g3', 'c3', 'STREAMS', 'events3', '>')) as unknown;
        expect(Array.isArray(grouped) ? grouped.map((stream: unknown[]) => stream[0]) : Object.keys(grouped as object)).toEqual([
          'events3',
        ]);
        const numsub = (await wrapped.pubsub('NUMSUB', 'orders3')) as unknown;
        expect(Array.isArray(numsub) ? numsub.filter((_, index) => index % 2 === 0) : Object.keys(numsub as object)).toEqual(['orders3']);
      });
    } finally {
      client.disconnect();
    }
    await expectIsolated();
  });

  it('geo, SORT with STORE (BY/GET refused by Redis itself), OBJECT/DUMP/RESTORE', async () => {
    await shadow(async () => {
      await redis.geoadd('shops', 15.087269, 37.502669, 'catania');
      await redis.georadius('shops', 15, 37, 200, 'km', 'STORE', 'near');
      await redis.geosearchstore('near2', 'shops', 'FROMLONLAT', 15, 37, 'BYRADIUS', 200, 'km');
      await redis.rpush('ids', '2', '1');
      await redis.set('weight_1', '2');
      // Redis 7 lets SORT read BY/GET patterns only for users who may read every key.
      await expect(redis.sort('ids', 'BY', 'weight_*', 'GET', 'name_*')).rejects.toThrow(/BY option of SORT denied/);
      expect(await redis.sort('ids', 'STORE', 'sorted')).toBe(2);
      expect(await redis.lrange('sorted', 0, -1)).toEqual(['1', '2']);
      expect(await redis.object('ENCODING', 'ids')).toBeTruthy();
      const dumped = await redis.dumpBuffer('ids');
      expect(dumped).toBeInstanceOf(Buffer);
      // RESTORE takes a serialized payload Redis must trust: the isolated user may not run it.
      await expect(redis.restore('ids-restored', 0, dumped as Buffer)).rejects.toThrow(/NOPERM/);
    });
    await expectIsolated();
  });

  it('scripts: KEYS[] of EVAL/EVALSHA and defineCommand are prefixed', async () => {
    await shadow(async () => {
      const script = "return redis.call('SET', KEYS[1], ARGV[1])";
      await redis.eval(script, 1, 'scripted', 'v1');
      const sha = (await redis.script('LOAD', script)) as string;
      await redis.evalsha(sha, 1, 'scripted2', 'v2');
      raw.defineCommand('setTwice', {
        numberOfKeys: 2,
        lua: "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('SET', KEYS[2], ARGV[1])",
      });
      await (redis as unknown as { setTwice: (...args: string[]) => Promise<unknown> }).setTwice('s1', 's2', 'v');
    });
    expect(await admin.mget('shadow:scripted', 'shadow:scripted2', 'shadow:s1', 'shadow:s2')).toEqual(['v1', 'v2', 'v', 'v']);
    await expectIsolated();
  });

  it('call() and sendCommand() with any case of command name', async () => {
    await shadow(async () => {
      await redis.call('SET', 'called', '1');
      await redis.call('set', 'called-lower', '2');
      await redis.call('sEt', Buffer.from('called-buffer'), '3');
      const command = new Command('get', ['called'], { replyEncoding: 'utf8' });
      expect(await redis.sendCommand(command)).toBe('1');
      expect(await command.promise).toBe('1');
    });
    expect(await admin.mget('shadow:called', 'shadow:called-lower', 'shadow:called-buffer')).toEqual(['1', '2', '3']);
    await expectIsolated();
  });

  it('pipelines and MULTI, bound to the tenant they were created in', async () => {
    const pipeline = shadow(async () => redis.pipeline().set('pipe:1', 'v').get('pipe:1').keys('pipe:*'));
    // Executed from baseline: still shadow.
    const results = await (await pipeline).exec();
    expect(results?.map(([, value]) => value)).toEqual(['OK', 'v', ['pipe:1']]);
    const transaction = await shadow(async () => redis.multi().incr('m1').incr('m1'));
    expect((await transaction.exec())?.map(([, value]) => value)).toEqual([1, 2]);
    const fromList = await shadow(async () =>
      redis
        .pipeline([
          ['set', 'p2', 'w'],
          ['get', 'p2'],
        ])
        .exec(),
    );
    expect(fromList?.map(([, value]) => value)).toEqual(['OK', 'w']);
    await expectIsolated();
  });
});

describe('patterns and replies', () => {
  it('KEYS, SCAN and RANDOMKEY see only the tenant keyspace, under its own names', async () => {
    await shadow(async () => {
      await redis.set('only-shadow', '1');
      const keys = await redis.keys('*');
      expect(keys).toContain('only-shadow');
      expect(keys).not.toContain('user:2');
      expect(keys.every((key) => !key.startsWith('shadow:'))).toBe(true);
      const [, scanned] = await redis.scan('0', 'COUNT', 1000);
      expect(scanned.every((key) => !key.startsWith('shadow:'))).toBe(true);
      expect(scanned).not.toContain('profile:1:production-only');
      const random = await redis.randomkey();
      expect(keys).toContain(random);
    });
    await expectIsolated();
  });
});

describe('refusals: nothing reaches the server, production unchanged', () => {
  const refused: Array<[string, () => Promise<unknown>]> = [
    ['FLUSHALL', () => redis.flushall()],
    ['FLUSHDB', () => redis.flushdb()],
    ['SWAPDB', () => redis.swapdb(0, 1)],
    ['SELECT', () => redis.select(1)],
    ['MOVE', () => redis.move('user:1', 1)],
    ['CONFIG SET', () => redis.config('SET', 'maxmemory', '1')],
    ['DEBUG', () => redis.call('DEBUG', 'SLEEP', '0')],
    ['SHUTDOWN', () => redis.shutdown()],
    ['SCRIPT FLUSH', () => redis.script('FLUSH')],
    ['FUNCTION FLUSH', () => redis.function('FLUSH')],
    ['FUNCTION DELETE', () => redis.function('DELETE', 'lib')],
    ['FUNCTION RESTORE', () => redis.call('FUNCTION', 'RESTORE', 'x')],
    ['DBSIZE', () => redis.dbsize()],
    ['an unknown command', () => redis.call('NOSUCHCOMMAND', 'k')],
    ['UNSUBSCRIBE without channels', () => redis.call('UNSUBSCRIBE')],
    ['CLIENT KILL', () => redis.client('KILL', 'ID', '999999')],
    ['MIGRATE', () => redis.call('MIGRATE', '127.0.0.1', '1', 'user:1', '0', '100')],
    ['a sendCommand of FLUSHALL', () => redis.sendCommand(new Command('flushall', [])) as Promise<unknown>],
  ];

  it.each(refused)('%s', async (_name, run) => {
    const error = await shadow(run).then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(IsolationError);
    await recorder.settle();
    expect(recorder.received).toEqual([]);
    expect(await productionSnapshot(admin)).toEqual(production);
  });

  it('refuses a pipeline command at queue time: nothing of the pipeline is sent', async () => {
    expect(() => withTenant('shadow', () => redis.pipeline().set('p3', 'v').flushall())).toThrow(IsolationError);
    await recorder.settle();
    expect(recorder.received).toEqual([]);
  });

  it('refuses scripts for isolated tenants when configured to', async () => {
    const strict = tenantRedis(raw, { refuseScripts: true, isolated });
    const error = await shadow(() => strict.eval('return 1', 0)).then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(IsolationError);
    await recorder.settle();
    expect(recorder.received).toEqual([]);
  });

  it('passes callbacks the refusal too', async () => {
    const error = await new Promise((resolve) => withTenant('shadow', () => redis.flushall((failure) => resolve(failure))));
    expect(error).toBeInstanceOf(IsolationError);
  });
});

describe('baseline and colors pass through', () => {
  it('writes production keys unprefixed', async () => {
    await redis.set('baseline-key', '1');
    await withTenant('red', () => redis.set('red-key', '1'));
    expect(await admin.mget('baseline-key', 'red-key')).toEqual(['1', '1']);
    await admin.del('baseline-key', 'red-key');
  });

  it('isolates a color whose policy says so', async () => {
    const { createPolicy } = await import('@dye/core');
    const policy = createPolicy({ tenants: { blue: { kind: 'color', isolate: ['redis'] } } });
    const password = 'blue-password';
    await grantShadowAccess(admin, { user: 'dye_blue', tenants: ['blue'], password, policy, apply: true });
    const blueRedis = tenantRedis(raw, { policy, isolated: { username: 'dye_blue', password } });
    await withTenant('blue', () => blueRedis.set('colored', '1'));
    expect(await admin.get('blue:colored')).toBe('1');
    expect(await admin.get('colored')).toBeNull();
  });
});
