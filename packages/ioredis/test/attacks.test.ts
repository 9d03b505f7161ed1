import { currentTenant, IsolationError, setLogger, withTenant } from '@dye/core';
import {
  FORBIDDEN_PROBES,
  grantShadowAccess,
  type IsolatedRedisUser,
  MAX_ISOLATED_TENANTS,
  tenantRedis,
  unwrapTenantRedis,
} from '@dye/ioredis';
import { Command, type Pipeline, Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort, OwnRedisServer } from '../../../test/support/redis-server.js';
import { productionSnapshot, ServerRecorder, shadowUser } from './support.js';

// Each class of way shadow work reached production keys, in several forms,
// judged by what the server received (MONITOR) and by production's contents.
let server: OwnRedisServer;
let admin: Redis;
let raw: Redis;
let redis: Redis;
let isolated: IsolatedRedisUser;
let recorder: ServerRecorder;
let production: Map<string, string>;

const shadow = <T>(fn: () => T) => withTenant('shadow', fn);
type Loose = Record<string, (...args: unknown[]) => unknown>;
const CONTAINER = /^(acl|client|cluster|config|function|script|memory|module|latency|slowlog)$/;

beforeAll(async () => {
  setLogger({ warn: () => {} });
  server = new OwnRedisServer(await freePort());
  await server.start();
  admin = new Redis(server.url);
  await admin.mset('user:1', 'alice', 'user:2', 'bob', 'weight_1', '1', 'name_1', 'n1');
  await admin.rpush('queue', 'job-1');
  await admin.sadd('members', 'production-member');
  await admin.hset('profile:1', 'name', 'alice');
  await admin.zadd('scores', 1, 'alice');
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

async function expectOnlyShadowKeys(): Promise<void> {
  await recorder.settle();
  expect(recorder.keysReceived().filter((key) => !key.startsWith('shadow:'))).toEqual([]);
  expect(await productionSnapshot(admin)).toEqual(production);
}

async function expectRefusedAndNothingSent(run: () => unknown): Promise<void> {
  const outcome = await Promise.resolve()
    .then(() => shadow(run))
    .then(
      () => 'ran',
      (error: unknown) => error,
    );
  expect(outcome).toBeInstanceOf(IsolationError);
  await recorder.settle();
  expect(recorder.received).toEqual([]);
  expect(await productionSnapshot(admin)).toEqual(production);
}

describe('entry points that used to bypass the wrapper', () => {
  it('scan streams of every kind return only shadow keys and members', async () => {
    await shadow(async () => {
      await redis.sadd('members', 'shadow-member');
      await redis.hset('profile:1', 'name', 'mallory');
      await redis.zadd('scores', 2, 'mallory');
      const collect = async (stream: AsyncIterable<unknown>) => {
        const seen: unknown[] = [];
        for await (const page of stream) seen.push(...(page as unknown[]));
        return seen;
      };
      expect(await collect(redis.sscanStream('members'))).toEqual(['shadow-member']);
      expect(await collect(redis.hscanStream('profile:1'))).toEqual(['name', 'mallory']);
      expect(await collect(redis.zscanStream('scores'))).toEqual(['mallory', '2']);
      const keys = (await collect(redis.scanStream())) as string[];
      expect(keys.sort()).toEqual(['members', 'profile:1', 'scores']);
      const buffers = (await collect(redis.scanBufferStream({ match: 'mem*' }))) as Buffer[];
      expect(buffers.map(String)).toEqual(['members']);
    });
    await expectOnlyShadowKeys();
  });

  it('a defineCommand script inside pipeline() and multi(), and every command chained after it', async () => {
    redis.defineCommand('getTwice', { numberOfKeys: 1, lua: "return redis.call('GET', KEYS[1]) .. redis.call('GET', KEYS[1])" });
    await shadow(async () => {
      await redis.set('user:1', 'm');
      const pipeline = redis.pipeline() as unknown as Loose;
      const chained = (pipeline.getTwice?.('user:1') as Loose).get?.('user:1') as Loose;
      expect(await (chained.set?.('user:2', 'x') as Loose).exec?.()).toEqual([
        [null, 'mm'],
        [null, 'm'],
        [null, 'OK'],
      ]);
      const multi = redis.multi() as unknown as Loose;
      expect(await ((multi.getTwice?.('user:1') as Loose).del?.('user:2') as Loose).exec?.()).toEqual([
        [null, 'mm'],
        [null, 1],
      ]);
    });
    await expectOnlyShadowKeys();
  });

  it('a script defined on the raw client after wrapping, in a pipeline', async () => {
    raw.defineCommand('rawDefined', { numberOfKeys: 1, lua: "return redis.call('SET', KEYS[1], 'raw-defined')" });
    await shadow(async () => {
      const pipeline = redis.pipeline() as unknown as Loose;
      await (pipeline.rawDefined?.('user:1') as Loose).exec?.();
    });
    expect(await admin.get('shadow:user:1')).toBe('raw-defined');
    await expectOnlyShadowKeys();
  });

  it('pipeline().addBatch and pipeline().sendCommand(new Command)', async () => {
    await shadow(async () => {
      const pipeline = redis.pipeline() as unknown as Pipeline;
      pipeline.addBatch([
        ['set', 'user:1', 'batched'],
        ['get', 'user:1'],
      ]);
      pipeline.sendCommand(new Command('set', ['user:2', 'sent'], { replyEncoding: 'utf8' }));
      expect((await pipeline.exec())?.map(([, value]) => value)).toEqual(['OK', 'batched', 'OK']);
    });
    expect(await admin.mget('shadow:user:1', 'shadow:user:2')).toEqual(['batched', 'sent']);
    await expectOnlyShadowKeys();
  });

  it('addBuiltinCommand: a known command is renamed, one Dye cannot read (json.set) is refused', async () => {
    redis.addBuiltinCommand('getex');
    await shadow(async () => {
      await redis.set('user:1', 'v');
      expect(await (redis as unknown as Loose).getex?.('user:1')).toBe('v');
    });
    await expectOnlyShadowKeys();
    recorder.clear();
    redis.addBuiltinCommand('json.set');
    await expectRefusedAndNothingSent(() => (redis as unknown as Loose)['json.set']?.('user:1', '$', '{}'));
    await expectRefusedAndNothingSent(() => (redis.pipeline() as unknown as Loose)['json.set']?.('user:1', '$', '{}'));
  });

  it('call, callBuffer and send_command in any case', async () => {
    await shadow(async () => {
      await redis.call('SeT', 'user:1', 'c');
      await redis.callBuffer('sEt', Buffer.from('user:2'), 'c');
      await (redis as unknown as Loose).send_command?.('SET', 'user:1', 'c');
    });
    await expectOnlyShadowKeys();
  });

  it('duplicate() and duplicate().pipeline()', async () => {
    const copy = redis.duplicate();
    try {
      await shadow(async () => {
        await copy.set('user:1', 'dup');
        await copy.pipeline().set('user:2', 'dup').exec();
      });
      expect(await admin.mget('shadow:user:1', 'shadow:user:2')).toEqual(['dup', 'dup']);
    } finally {
      copy.disconnect();
    }
    await expectOnlyShadowKeys();
  });

  it('methods that reach a raw connection are refused', async () => {
    await expectRefusedAndNothingSent(() => redis.monitor());
    await expectRefusedAndNothingSent(() => (redis as unknown as Loose).flushQueue?.(new Error('x')));
  });
});

describe('arguments parsed as Redis parses them', () => {
  it('SORT: Buffer directives, repeated STORE (Redis uses the last), GET # and a BY pattern', async () => {
    await shadow(async () => {
      await redis.rpush('ids', '1');
      await redis.call('SORT', 'ids', Buffer.from('STORE'), 'first', Buffer.from('store'), 'last');
      // BY and GET patterns name keys: Redis itself refuses them to the isolated user.
      await expect(redis.call('SORT', 'ids', Buffer.from('BY'), 'weight_*')).rejects.toThrow(/SORT denied/);
      await expect(redis.call('SORT', 'ids', Buffer.from('gEt'), 'name_*')).rejects.toThrow(/SORT denied/);
    });
    expect(await admin.lrange('shadow:last', 0, -1)).toEqual(['1']);
    await expectOnlyShadowKeys();
  });

  it('GEORADIUS: STORE then STOREDIST, both named', async () => {
    await shadow(async () => {
      await redis.geoadd('shops', 13.36, 38.11, 'palermo');
      await redis.call('GEORADIUS', 'shops', '13', '38', '500', 'km', 'STORE', 'a', Buffer.from('STOREDIST'), 'b');
    });
    expect(await admin.exists('shadow:b')).toBe(1);
    await expectOnlyShadowKeys();
  });

  const refusedForms: Array<[string, () => unknown]> = [
    ['COPY … DB n', () => redis.call('COPY', 'user:1', 'user:9', 'DB', '1')],
    ['COPY … Buffer db n', () => redis.call('COPY', 'user:1', 'user:9', Buffer.from('db'), '1')],
    ['LMPOP numkeys larger than the keys given', () => redis.call('LMPOP', '3', 'queue', 'other', 'LEFT')],
    ['LMPOP numkeys that swallows LEFT', () => redis.call('LMPOP', '2', 'queue', 'LEFT')],
    ['EVAL numkeys 1e400', () => redis.call('EVAL', 'return 1', '1e400', 'user:1')],
    ['EVAL numkeys -1', () => redis.call('EVAL', 'return 1', '-1', 'user:1')],
    ['EVAL numkeys 01', () => redis.call('EVAL', 'return 1', '01', 'user:1')],
    ['ZUNIONSTORE numkeys 0', () => redis.call('ZUNIONSTORE', 'dst', '0', 'scores')],
    ['SINTERCARD numkeys beyond the arguments', () => redis.call('SINTERCARD', '5', 'members')],
    ['XREAD with an odd STREAMS tail', () => redis.call('XREAD', 'STREAMS', 'a', 'b', '0')],
    ['XREAD with an unknown option', () => redis.call('XREAD', 'NOPE', '1', 'STREAMS', 'a', '0')],
    ['MSET with a key and no value', () => redis.call('MSET', 'user:1', 'v', 'user:2')],
    ['SORT with an unknown option', () => redis.call('SORT', 'queue', 'FROM', 'user:1')],
    ['SORT_RO … STORE', () => redis.call('SORT_RO', 'queue', 'STORE', 'user:1')],
    ['SCAN with an unknown option', () => redis.call('SCAN', '0', 'MATCHES', '*')],
    ['OBJECT ENCODING with an extra argument', () => redis.call('OBJECT', 'ENCODING', 'user:1', 'user:2')],
    ['MIGRATE … KEYS', () => redis.call('MIGRATE', '127.0.0.1', '1', '', '0', '100', 'KEYS', 'user:1')],
  ];
  it.each(refusedForms)('%s is refused, never guessed', async (_name, run) => {
    await expectRefusedAndNothingSent(run);
  });

  it('numkeys 1e400 does not loop: refused at once', async () => {
    const started = Date.now();
    await expectRefusedAndNothingSent(() => redis.call('ZUNION', '1e400', 'a'));
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe('connection state is never shared', () => {
  const stateChanges: Array<[string, () => unknown]> = [
    ['HELLO 3', () => redis.call('HELLO', '3')],
    ['HELLO with AUTH', () => redis.call('HELLO', '2', 'AUTH', 'default', 'x')],
    ['AUTH', () => redis.call('AUTH', 'default', 'x')],
    ['RESET', () => redis.call('RESET')],
    ['SELECT', () => redis.select(1)],
    ['MULTI on its own', () => redis.call('MULTI')],
    ['multi({ pipeline: false })', () => redis.multi({ pipeline: false })],
    ['EXEC on its own', () => redis.call('EXEC')],
    ['DISCARD on its own', () => redis.call('DISCARD')],
    ['CLIENT REPLY OFF', () => redis.client('REPLY', 'OFF')],
    ['CLIENT TRACKING ON', () => redis.call('CLIENT', 'TRACKING', 'ON', 'BCAST')],
  ];
  it.each(stateChanges)('%s is refused', async (_name, run) => {
    await expectRefusedAndNothingSent(run);
  });

  it.each([
    ['a MULTI left open', () => redis.pipeline().call('MULTI').set('user:1', 'x')],
    ['EXEC without MULTI', () => redis.pipeline().set('user:1', 'x').call('EXEC')],
    ['MULTI inside multi()', () => redis.multi().call('MULTI').set('user:1', 'x')],
  ])('a pipeline with %s: refused at exec, every command settled, none written', async (_name, build) => {
    const pipeline = shadow(build);
    const error = await pipeline.exec().catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(IsolationError);
    await recorder.settle();
    expect(recorder.received).toEqual([]);
    expect(await productionSnapshot(admin)).toEqual(production);
  });

  it('balanced transactions in a pipeline run', async () => {
    // In a pipeline, exec() with a transaction open queues its EXEC; the next exec() sends.
    const queued = shadow(() => {
      const pipeline = (redis.pipeline() as unknown as Loose).multi?.() as Loose;
      return ((pipeline.set?.('user:1', 'in-tx') as Loose).exec?.() as Loose).get?.('user:1') as Loose;
    });
    const results = (await queued.exec?.()) as Array<[Error | null, unknown]>;
    expect(results.map(([, value]) => value)).toEqual(['OK', 'QUEUED', ['OK'], 'in-tx']);
    expect(await admin.get('shadow:user:1')).toBe('in-tx');
  });

  it('a shadow transaction cannot swallow a concurrent baseline SET', async () => {
    const [shadowResult, baselineResult] = await Promise.all([
      shadow(() =>
        redis
          .multi()
          .set('user:1', 'in-transaction')
          .exec()
          .catch((error: unknown) => error),
      ),
      redis.set('concurrent-baseline', 'landed'),
    ]);
    expect(shadowResult).toEqual([[null, 'OK']]);
    expect(baselineResult).toBe('OK');
    expect(await admin.get('concurrent-baseline')).toBe('landed');
    await admin.del('concurrent-baseline');
  });

  it('shadow runs on a connection of its own, as the isolated user', async () => {
    const users = await shadow(async () => [await redis.call('ACL', 'WHOAMI')]);
    expect(users).toEqual([isolated.username]);
    expect(await redis.call('ACL', 'WHOAMI')).toBe('default');
  });
});

describe('scripts', () => {
  it('refuseScripts covers defineCommand scripts too, alone and in pipelines', async () => {
    const strict = tenantRedis(raw, { refuseScripts: true, isolated });
    strict.defineCommand('strictScript', { numberOfKeys: 1, lua: 'return 1' });
    await expectRefusedAndNothingSent(() => (strict as unknown as Loose).strictScript?.('user:1'));
    await expectRefusedAndNothingSent(() => (strict.pipeline() as unknown as Loose).strictScript?.('user:1'));
    await expectRefusedAndNothingSent(() => strict.evalsha('0'.repeat(40), 1, 'user:1'));
  });

  it('Lua that builds a production key name is refused by Redis (the isolated user cannot reach it)', async () => {
    const error = await shadow(() => redis.eval("return redis.call('SET', 'user:' .. ARGV[1], 'lua')", 0, '1')).catch(
      (failure: Error) => failure,
    );
    expect(String(error)).toMatch(/can't access at least one of the keys|NOPERM|No permissions/);
    expect(await productionSnapshot(admin)).toEqual(production);
  });
});

describe('defence in depth: with no renaming at all, Redis refuses the isolated user', () => {
  it('writes, reads, deletes, scripts and publications on production names fail with NOPERM', async () => {
    const bare = new Redis(server.url, { username: isolated.username, password: isolated.password });
    try {
      const attempts = [
        () => bare.set('user:1', 'leak'),
        () => bare.get('user:1'),
        () => bare.del('user:2'),
        () => bare.call('COPY', 'shadow:x', 'user:1', 'REPLACE'),
        () => bare.rename('shadow:user:1', 'user:3'),
        () => bare.eval("return redis.call('DEL', 'user:1')", 0),
        () => bare.publish('orders', 'leak'),
        () => bare.flushall(),
        () => bare.keys('*'),
        () => bare.randomkey(),
        () => bare.call('DBSIZE'),
        () => bare.call('SWAPDB', '0', '1'),
        () => bare.call('CONFIG', 'SET', 'maxmemory', '1'),
        () => bare.call('FUNCTION', 'FLUSH'),
        () => bare.call('CLIENT', 'KILL', 'ID', '1'),
      ];
      for (const attempt of attempts) {
        const outcome = await attempt().then(
          (value) => `ran: ${String(value)}`,
          (error: Error) => error.message,
        );
        expect(outcome).toMatch(/NOPERM|can't access|no permissions/i);
      }
    } finally {
      bare.disconnect();
    }
    expect(await productionSnapshot(admin)).toEqual(production);
  });
});

describe('the isolated user is checked before its first command', () => {
  it('no user configured: refused with how to fix it, nothing sent', async () => {
    const unconfigured = tenantRedis(raw);
    const error = await shadow(() => unconfigured.set('user:1', 'x')).catch((failure: Error) => failure);
    expect(error).toBeInstanceOf(IsolationError);
    expect(String((error as Error).message)).toMatch(/dye shadow grant --redis/);
    expect(await productionSnapshot(admin)).toEqual(production);
  });

  it('commands issued while the check runs are sent after it; a server error among them is the caller’s rejection, never an unhandled one', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const fresh = tenantRedis(new Redis(server.url), { isolated });
    try {
      const [bad, good] = await shadow(() =>
        Promise.allSettled([fresh.call('XRANGE', 'stream', 'not-an-id', '+'), fresh.set('checked', '1')]),
      );
      expect(bad.status).toBe('rejected');
      expect(String((bad as PromiseRejectedResult).reason)).toMatch(/Invalid stream ID/);
      expect(good.status).toBe('fulfilled');
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(unhandled).toEqual([]);
      expect(await admin.get('shadow:checked')).toBe('1');
    } finally {
      process.off('unhandledRejection', onUnhandled);
      fresh.disconnect();
    }
  });

  it(`a client serves at most ${MAX_ISOLATED_TENANTS} isolated tenants; the next is refused and sends nothing`, async () => {
    const tenants = Array.from({ length: MAX_ISOLATED_TENANTS + 1 }, (_, index) => `shadow-t${index}`);
    await grantShadowAccess(admin, { user: 'dye_many', password: 'many-password', tenants, apply: true });
    const client = tenantRedis(new Redis(server.url), { isolated: { username: 'dye_many', password: 'many-password' } });
    try {
      for (const tenant of tenants.slice(0, -1)) await withTenant(tenant, () => client.set('k', tenant));
      const last = tenants.at(-1) as string;
      const error = await withTenant(last, () => client.set('k', last)).catch((failure: unknown) => failure);
      expect(error).toBeInstanceOf(IsolationError);
      expect(await admin.get(`${last}:k`)).toBeNull();
      expect(await admin.get('shadow-t0:k')).toBe('shadow-t0');
      expect(await productionSnapshot(admin)).toEqual(production);
    } finally {
      client.disconnect();
    }
  });

  it('a wrong password never runs as the default user', async () => {
    const wrong = tenantRedis(raw, { isolated: { username: isolated.username, password: 'wrong' } });
    const error = await shadow(() => wrong.set('user:1', 'x')).catch((failure: Error) => failure);
    expect(error).toBeInstanceOf(Error);
    expect(await admin.get('user:1')).toBe('alice');
    expect(await admin.exists('shadow:user:1')).toBeDefined();
    expect(await productionSnapshot(admin)).toEqual(production);
  });

  it('an over-privileged user is refused until grantShadowAccess confines it; then traffic flows', async () => {
    await admin.call('ACL', 'SETUSER', 'dye_wide', 'reset', 'on', '>wide-password', '~*', '&*', '+@all');
    const wide = { username: 'dye_wide', password: 'wide-password' };
    const client = tenantRedis(raw, { isolated: wide });
    const error = await shadow(() => client.set('user:1', 'x')).catch((failure: Error) => failure);
    expect(error).toBeInstanceOf(IsolationError);
    expect((error as Error).message).toMatch(/key pattern ~\* reaches production keys/);
    expect((error as Error).message).toMatch(/FLUSHALL/);
    expect(await productionSnapshot(admin)).toEqual(production);

    const dry = await grantShadowAccess(admin, { user: 'dye_wide', password: 'wide-password' });
    expect(dry.applied).toBe(false);
    expect(dry.commands).toHaveLength(1);
    expect(dry.commands[0]).toContain('>***');
    expect(dry.commands[0]).not.toContain('wide-password');
    expect((await grantShadowAccess(admin, { user: 'dye_wide', password: 'wide-password', apply: true })).applied).toBe(true);
    expect((await grantShadowAccess(admin, { user: 'dye_wide', password: 'wide-password', apply: true })).commands).toEqual([]);

    const fixed = tenantRedis(raw, { isolated: wide });
    await shadow(() => fixed.set('fixed-key', 'ok'));
    expect(await admin.get('shadow:fixed-key')).toBe('ok');
  });

  it('a user widened after its check is refused at the next check', async () => {
    const password = 'later-password';
    await grantShadowAccess(admin, { user: 'dye_later', password, apply: true });
    const client = tenantRedis(new Redis(server.url), { isolated: { username: 'dye_later', password }, accountRecheckInterval: 200 });
    try {
      await shadow(() => client.set('later', '1'));
      await admin.call('ACL', 'SETUSER', 'dye_later', '~user:*');
      await new Promise((resolve) => setTimeout(resolve, 300));
      const error = await shadow(() => client.set('user:1', 'x')).catch((failure: Error) => failure);
      expect(error).toBeInstanceOf(IsolationError);
      expect((error as Error).message).toMatch(/~user:\*/);
      expect(await productionSnapshot(admin)).toEqual(production);
    } finally {
      client.disconnect();
    }
  });
});

describe("production's listeners, state and lifecycle are not an isolated tenant's", () => {
  it('emit, listeners and rawListeners cannot drive a production listener; shadow sees only its own', async () => {
    const subscriber = tenantRedis(new Redis(server.url), { isolated });
    const handled: string[] = [];
    try {
      const handler = (channel: string, message: string) => handled.push(`${channel}:${message}:${currentTenant().name}`);
      subscriber.on('message', handler);
      await subscriber.subscribe('orders');
      await recorder.settle();
      recorder.clear();
      await expectRefusedAndNothingSent(() => subscriber.emit('message', 'orders', 'from-shadow'));
      expect(shadow(() => subscriber.listeners('message'))).toEqual([]);
      expect(shadow(() => subscriber.rawListeners('message'))).toEqual([]);
      expect(shadow(() => subscriber.listenerCount('message'))).toBe(0);
      const own = () => {};
      shadow(() => subscriber.on('message', own));
      expect(shadow(() => subscriber.listeners('message'))).toEqual([own]);
      await admin.publish('orders', 'real');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(handled).toEqual(['orders:real:baseline']);
    } finally {
      subscriber.disconnect();
    }
  });

  it('off and removeAllListeners from shadow remove only shadow’s own listeners', async () => {
    const subscriber = tenantRedis(new Redis(server.url), { isolated });
    const handled: string[] = [];
    try {
      const handler = (_channel: string, message: string) => handled.push(message);
      subscriber.on('message', handler);
      await subscriber.subscribe('orders');
      shadow(() => {
        subscriber.off('message', handler);
        subscriber.removeListener('message', handler);
        subscriber.removeAllListeners('message');
        subscriber.removeAllListeners();
      });
      await admin.publish('orders', 'still heard');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(handled).toEqual(['still heard']);
      // Baseline may remove its own.
      subscriber.off('message', handler);
      await admin.publish('orders', 'not heard');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(handled).toEqual(['still heard']);
    } finally {
      subscriber.disconnect();
    }
  });

  it('a connection event listener registered in shadow hears shadow’s connection and runs in shadow', async () => {
    const client = tenantRedis(new Redis(server.url), { isolated });
    const ran: string[] = [];
    try {
      await shadow(async () => {
        await client.set('warm', '1');
        client.on('ready', () => {
          ran.push(currentTenant().name);
          void client.set('user:1', 'written on ready');
        });
      });
      // Production's connection reconnects: the shadow listener is not on it.
      const baselineId = String(await client.client('ID'));
      await admin.client('KILL', 'ID', baselineId);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(ran).toEqual([]);
      // Shadow's own connection reconnects: it runs, in shadow.
      await admin.client('KILL', 'USER', isolated.username);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(ran.length).toBeGreaterThan(0);
      expect(new Set(ran)).toEqual(new Set(['shadow']));
      expect(await admin.get('shadow:user:1')).toBe('written on ready');
      expect(await productionSnapshot(admin)).toEqual(production);
    } finally {
      client.disconnect();
    }
  });

  it('defineCommand and addBuiltinCommand from shadow are refused: production methods stay', async () => {
    const client = tenantRedis(new Redis(server.url), { isolated });
    try {
      await expectRefusedAndNothingSent(() =>
        client.defineCommand('get', { numberOfKeys: 1, lua: "redis.call('SET', KEYS[1], 'replaced'); return 'x'" }),
      );
      await expectRefusedAndNothingSent(() => client.addBuiltinCommand('json.get'));
      expect(await client.get('user:1')).toBe('alice');
    } finally {
      client.disconnect();
    }
  });

  it('the socket, connector, queues and other state are not reachable; options come redacted and frozen', async () => {
    const client = tenantRedis(new Redis(server.url, { password: undefined, connectionName: 'app' }), { isolated });
    try {
      for (const property of ['stream', 'connector', 'condition', 'commandQueue', 'offlineQueue', 'scriptsSet']) {
        expect(() => shadow(() => (client as unknown as Record<string, unknown>)[property]), property).toThrow(IsolationError);
      }
      const options = shadow(() => client.options);
      expect(Object.isFrozen(options)).toBe(true);
      expect(options).not.toHaveProperty('password');
      expect(() => shadow(() => ((client as unknown as Record<string, unknown>).options = {}))).toThrow(IsolationError);
      expect(() => shadow(() => Object.defineProperty(client, 'status', { value: 'x' }))).toThrow(IsolationError);
      expect(shadow(() => client.status)).toBe(client.status);
      await shadow(() => client.set('user:1', 'still renamed'));
      expect(await admin.get('user:1')).toBe('alice');
    } finally {
      client.disconnect();
    }
  });

  it.each([
    ['quit()', (client: Redis) => client.quit()],
    ['disconnect()', (client: Redis) => client.disconnect()],
    ['end()', (client: Redis) => (client as unknown as { end: () => void }).end()],
    ['connect()', (client: Redis) => client.connect()],
  ])('%s from shadow is refused; production keeps its connection', async (_name, run) => {
    const client = tenantRedis(new Redis(server.url), { isolated });
    try {
      await client.ping();
      await expectRefusedAndNothingSent(() => run(client));
      expect(await client.get('user:1')).toBe('alice');
      expect(client.status).toBe('ready');
    } finally {
      client.disconnect();
    }
  });

  it('unwrapTenantRedis from shadow is refused', () => {
    expect(() => shadow(() => unwrapTenantRedis(redis))).toThrow(IsolationError);
    expect(unwrapTenantRedis(redis)).toBe(raw);
  });
});

describe('the user check covers every admin and dangerous command the server knows', () => {
  it('a user denied exactly the probes Dye lists, but allowed SLOWLOG RESET and the rest, is refused', async () => {
    const denied = [
      ...new Set(
        FORBIDDEN_PROBES.map((probe) => (probe.length > 1 && CONTAINER.test(probe[0] ?? '') ? `${probe[0]}|${probe[1]}` : probe[0])),
      ),
    ];
    await admin.call(
      'ACL',
      'SETUSER',
      'dye_narrow',
      'reset',
      'on',
      '>narrow',
      '~shadow:*',
      '&shadow:*',
      '+@all',
      ...denied.map((name) => `-${name}`),
    );
    const client = tenantRedis(raw, { isolated: { username: 'dye_narrow', password: 'narrow' } });
    const error = await shadow(() => client.set('x', '1')).catch((failure: Error) => failure);
    expect(error).toBeInstanceOf(IsolationError);
    expect((error as Error).message).toMatch(/SLOWLOG RESET/);
    expect((error as Error).message).toMatch(/LATENCY/);
    expect(await admin.exists('shadow:x')).toBe(0);
  });
});
