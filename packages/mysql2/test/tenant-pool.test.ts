import type { Readable } from 'node:stream';
import { currentTenant, type DyeLogEvent, IsolationError, setLogger, withTenant } from '@dye/core';
import {
  createTenantPool,
  ISOLATED_CONNECTION_LIMIT,
  MAX_ISOLATED_TENANTS,
  type TenantCallbackConnection,
  type TenantPool,
} from '@dye/mysql2';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MYSQL } from '../../../test/support/services.js';
import {
  adminConnection,
  createShadowAccount,
  createShadowedDatabase,
  dropDatabases,
  productionState,
  type ShadowAccount,
} from './support.js';

const TENANTS = ['shadow', 'shadow-lt1'];
let admin: mysql.Connection;
let database: string;
let account: ShadowAccount;
let pool: TenantPool;
let before: Record<string, string>;

beforeAll(async () => {
  setLogger({ warn: () => {} });
  admin = await adminConnection();
  database = await createShadowedDatabase(admin, 'dye_pool', TENANTS);
  account = await createShadowAccount(admin, database, TENANTS);
  pool = createTenantPool({ ...MYSQL, database, connectionLimit: 4, multipleStatements: true }, { isolatedConfig: account.isolatedConfig });
  before = await productionState(admin, database);
});

afterAll(async () => {
  await pool.end();
  await account.drop();
  await dropDatabases(admin, database, TENANTS);
  await admin.end();
});

const first = <T>(result: unknown): T => (result as [T[]])[0][0] as T;

describe('routing by tenant', () => {
  it('baseline and colors use the production database and account, isolated tenants their own', async () => {
    const where = 'SELECT DATABASE() AS db, CURRENT_USER() AS account';
    type Where = { db: string; account: string };
    const baseline = first<Where>(await pool.query(where));
    const red = first<Where>(await withTenant('red', () => pool.query(where)));
    const shadow = first<Where>(await withTenant('shadow', () => pool.execute(where)));
    const lt1 = first<Where>(await withTenant('shadow-lt1', () => pool.query(where)));
    expect([baseline.db, red.db, shadow.db, lt1.db]).toEqual([database, database, `${database}_shadow`, `${database}_shadow_lt1`]);
    expect(shadow.account).toBe(`${account.user}@%`);
    expect(baseline.account).not.toBe(shadow.account);
  });

  it('shadow writes land in the shadow database only', async () => {
    await withTenant('shadow', () =>
      pool.execute("INSERT INTO orders (customer_id, sku, quantity, tenant) VALUES (1, 'apple', 1, 'shadow')"),
    );
    const [[shadowCount]] = (await admin.query(
      `SELECT COUNT(*) AS n FROM \`${database}_shadow\`.orders WHERE tenant = 'shadow'`,
    )) as unknown as [[{ n: number }]];
    expect(shadowCount.n).toBe(1);
    expect(await productionState(admin, database)).toEqual(before);
  });

  it('refuses when the isolated database does not exist, and never creates it', async () => {
    const lt9 = await createShadowAccount(admin, database, ['shadow-lt9']);
    const lonely = createTenantPool({ ...MYSQL, database }, { isolatedConfig: lt9.isolatedConfig });
    try {
      const error = await withTenant('shadow-lt9', () => lonely.query("INSERT INTO orders (customer_id, sku) VALUES (1, 'x')")).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(IsolationError);
      expect((error as IsolationError).message).toContain(`${database}_shadow_lt9`);
      const [exists] = (await admin.query('SHOW DATABASES LIKE ?', [`${database}_shadow_lt9`])) as unknown as [unknown[]];
      expect(exists).toEqual([]);
    } finally {
      await lonely.end();
      await lt9.drop();
    }
    expect(await productionState(admin, database)).toEqual(before);
  });

  it('a shadow database dropped while the service runs is an IsolationError', async () => {
    const dropped = await createShadowedDatabase(admin, 'dye_dropped');
    const droppedAccount = await createShadowAccount(admin, dropped);
    const running = createTenantPool(
      { ...MYSQL, database: dropped, connectionLimit: 1 },
      { isolatedConfig: droppedAccount.isolatedConfig },
    );
    try {
      await withTenant('shadow', () => running.query('SELECT COUNT(*) FROM orders'));
      await admin.query(`DROP DATABASE \`${dropped}_shadow\``);
      for (const sql of [
        'SELECT COUNT(*) FROM orders',
        "INSERT INTO orders (customer_id, sku) VALUES (1, 'x')",
        'CREATE TABLE t (id INT)',
      ]) {
        const error = await withTenant('shadow', () => running.query(sql)).catch((e: unknown) => e);
        expect(error, sql).toBeInstanceOf(IsolationError);
      }
    } finally {
      await running.end();
      await droppedAccount.drop();
      await dropDatabases(admin, dropped);
    }
  });

  it('guard-only enforcement logs at start-up and runs on the production account', async () => {
    const events: DyeLogEvent[] = [];
    setLogger({ warn: (event) => events.push(event) });
    const guardOnly = createTenantPool({ ...MYSQL, database }, { enforcement: 'guard-only' });
    setLogger({ warn: () => {} });
    try {
      expect(events.map((event) => event.code)).toContain('dye.mysql.guard-only');
      const row = first<{ db: string }>(await withTenant('shadow', () => guardOnly.query('SELECT DATABASE() AS db')));
      expect(row.db).toBe(`${database}_shadow`);
      await expect(withTenant('shadow', () => guardOnly.query(`DELETE FROM ${database}.stock`))).rejects.toBeInstanceOf(IsolationError);
    } finally {
      await guardOnly.end();
    }
    expect(await productionState(admin, database)).toEqual(before);
  });
});

describe('connections and transactions are bound to their tenant', () => {
  it('commit and rollback act in the shadow database only', async () => {
    await withTenant('shadow', async () => {
      const connection = await pool.getConnection();
      try {
        await connection.beginTransaction();
        await connection.query("INSERT INTO orders (customer_id, sku, tenant) VALUES (2, 'committed', 'shadow')");
        await connection.commit();
        await connection.beginTransaction();
        await connection.query("INSERT INTO orders (customer_id, sku, tenant) VALUES (2, 'rolled-back', 'shadow')");
        await connection.rollback();
      } finally {
        connection.release();
      }
    });
    const [rows] = (await admin.query(
      `SELECT sku FROM \`${database}_shadow\`.orders WHERE sku IN ('committed', 'rolled-back')`,
    )) as unknown as [Array<{ sku: string }>];
    expect(rows.map((row) => row.sku)).toEqual(['committed']);
    expect(await productionState(admin, database)).toEqual(before);
  });

  it('a shadow connection used from baseline throws, and the reverse', async () => {
    const shadowConnection = await withTenant('shadow', () => pool.getConnection());
    const baselineConnection = await pool.getConnection();
    try {
      await expect(shadowConnection.query('SELECT 1')).rejects.toBeInstanceOf(IsolationError);
      await expect(withTenant('shadow', () => baselineConnection.query('DELETE FROM stock'))).rejects.toBeInstanceOf(IsolationError);
      await expect(withTenant('shadow', () => baselineConnection.beginTransaction())).rejects.toBeInstanceOf(IsolationError);
      await expect(withTenant('shadow', () => baselineConnection.execute('DELETE FROM stock'))).rejects.toBeInstanceOf(IsolationError);
      expect(() => withTenant('shadow', () => baselineConnection.connection.query('DELETE FROM stock'))).not.toThrow();
    } finally {
      shadowConnection.release();
      baselineConnection.release();
    }
    expect(await productionState(admin, database)).toEqual(before);
  });
});

describe("mysql2's callback API (Kysely, Drizzle's iterator)", () => {
  const callbackConnection = () =>
    new Promise<TenantCallbackConnection>((resolve, reject) =>
      pool.getConnection((error, connection) => (error ? reject(error) : resolve(connection))),
    );
  const callbackQuery = (connection: TenantCallbackConnection, sql: string, values: unknown[] = []) =>
    new Promise<unknown>((resolve, reject) => connection.query(sql, values, (error, rows) => (error ? reject(error) : resolve(rows))));

  it('getConnection(callback) gives a connection of the caller tenant; query(sql, values, callback) runs there', async () => {
    const rows = await withTenant('shadow', async () => {
      const connection = await callbackConnection();
      try {
        expect(connection.tenant.name).toBe('shadow');
        return await callbackQuery(connection, 'SELECT DATABASE() AS db WHERE ? = 1', [1]);
      } finally {
        connection.release();
      }
    });
    expect(rows).toEqual([{ db: `${database}_shadow` }]);
  });

  it('refuses through the callback and through stream(), sending nothing', async () => {
    await withTenant('shadow', async () => {
      const connection = await callbackConnection();
      try {
        await expect(callbackQuery(connection, `DELETE FROM ${database}.stock`)).rejects.toBeInstanceOf(IsolationError);
        const stream = connection.query(`SELECT * FROM ${database}.stock`, []).stream({ objectMode: true }) as Readable;
        const streamed = await (async () => {
          for await (const _row of stream) return 'row';
          return 'end';
        })().catch((error: unknown) => error);
        expect(streamed).toBeInstanceOf(IsolationError);
      } finally {
        connection.release();
      }
    });
    expect(await productionState(admin, database)).toEqual(before);
  });

  it('streams rows of the shadow database', async () => {
    const skus = await withTenant('shadow', async () => {
      const connection = await callbackConnection();
      try {
        const rows: string[] = [];
        for await (const row of connection.query('SELECT sku FROM stock ORDER BY sku', []).stream({ objectMode: true }) as AsyncIterable<{
          sku: string;
        }>) {
          rows.push(row.sku);
        }
        return rows;
      } finally {
        connection.release();
      }
    });
    expect(skus).toEqual(['apple', 'pear']);
  });

  it('nothing a caller is handed reaches a raw mysql2 connection: query handles, streams, results, errors', async () => {
    const Raw = (await import('mysql2')).default as unknown as Record<string, unknown>;
    const rawClasses = [Raw.Connection, Raw.PoolConnection, Raw.Pool].filter(Boolean) as Array<new (...args: never[]) => unknown>;
    // Every object reachable through own properties (and a listener's `this`), breadth first.
    const reachable = (roots: unknown[]): unknown[] => {
      const seen = new Set<unknown>();
      const queue = [...roots];
      while (queue.length > 0 && seen.size < 20_000) {
        const value = queue.shift();
        if (value === null || (typeof value !== 'object' && typeof value !== 'function') || seen.has(value)) continue;
        seen.add(value);
        for (const key of Reflect.ownKeys(value as object)) {
          try {
            queue.push((value as Record<PropertyKey, unknown>)[key]);
          } catch {
            // a getter that throws reaches nothing
          }
        }
      }
      return [...seen];
    };
    await withTenant('shadow', async () => {
      const connection = await callbackConnection();
      try {
        let listenerThis: unknown;
        const handle = connection.query('SELECT sku FROM stock', [], () => {});
        handle.on('fields', function (this: unknown) {
          listenerThis = this;
        });
        const stream = connection.query('SELECT sku FROM stock', []).stream({ objectMode: true });
        for await (const _row of stream as AsyncIterable<unknown>) {
          // drain
        }
        const refused = connection.query(`SELECT * FROM ${database}.stock`, [], () => {});
        const error = await withTenant('shadow', () => pool.query(`DELETE FROM ${database}.stock`)).catch((e: unknown) => e);
        const denied = await withTenant('shadow', () => pool.query('SELECT * FROM mysql.user WHERE 0')).catch((e: unknown) => e);
        const results = await withTenant('shadow', () => pool.execute('SELECT sku FROM stock WHERE sku = ?', ['apple']));
        await new Promise((resolve) => setTimeout(resolve, 20));
        expect(listenerThis).toBe(handle);
        const found = reachable([connection, handle, stream, refused, error, denied, results, listenerThis]).filter((value) =>
          rawClasses.some((Class) => value instanceof Class),
        );
        expect(found).toEqual([]);
      } finally {
        connection.release();
      }
    });
  });

  it('end(callback) ends the pool', async () => {
    const short = createTenantPool({ ...MYSQL, database });
    await short.query('SELECT 1');
    await new Promise<void>((resolve, reject) => short.end((error) => (error ? reject(error) : resolve())));
  });
});

describe('what a shadow request leaves on a pooled connection', () => {
  // What the shadow account's sessions hold now, as the server sees it. (Not
  // information_schema.INNODB_TRX: InnoDB refreshes it at most every 100 ms.)
  const held = async () => {
    const [threads] = (await admin.query('SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = ?', [
      account.user,
    ])) as unknown as [Array<{ id: number }>];
    const ids = new Set(threads.map((thread) => Number(thread.id)));
    const [[status]] = (await admin.query('SHOW ENGINE INNODB STATUS')) as unknown as [[{ Status: string }]];
    const active = status.Status.split('---TRANSACTION ')
      .filter((chunk) => /^\S+, ACTIVE/.test(chunk))
      .map((chunk) => Number(/(?:MySQL|MariaDB) thread id (\d+)/.exec(chunk)?.[1]))
      .filter((id) => ids.has(id));
    const [locked] = (await admin.query('SHOW OPEN TABLES FROM ?? WHERE In_use > 0', [`${database}_shadow`])) as unknown as [unknown[]];
    return { transactions: active.length, lockedTables: locked.length };
  };
  // Release cleans up before the connection goes back to the pool: a round trip later, nothing is held.
  const settled = async () => {
    const deadline = Date.now() + 2_000;
    let state = await held();
    while ((state.transactions > 0 || state.lockedTables > 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      state = await held();
    }
    return state;
  };

  it.each([
    ['a consistent snapshot', ['START TRANSACTION WITH CONSISTENT SNAPSHOT']],
    ['an open transaction with a write', ['BEGIN', "UPDATE stock SET available = available WHERE sku = 'apple'"]],
    ['table locks', ['LOCK TABLES orders WRITE']],
    ['autocommit off, then a write', ['SET autocommit = 0', "UPDATE stock SET available = available WHERE sku = 'pear'"]],
    ['COMMIT AND CHAIN', ['COMMIT AND CHAIN', "UPDATE stock SET available = available WHERE sku = 'apple'"]],
    ['ROLLBACK AND CHAIN', ['ROLLBACK AND CHAIN', "UPDATE stock SET available = available WHERE sku = 'apple'"]],
  ])('%s on a held connection is gone once it is released', async (_name, statements) => {
    await withTenant('shadow', async () => {
      const connection = await pool.getConnection();
      for (const sql of statements) await connection.query(sql);
      expect(await held()).not.toEqual({ transactions: 0, lockedTables: 0 });
      connection.release();
    });
    expect(await settled()).toEqual({ transactions: 0, lockedTables: 0 });
  });

  it('beginTransaction() without commit, and statements through pool.query, leave nothing either', async () => {
    await withTenant('shadow', async () => {
      const connection = await pool.getConnection();
      await connection.beginTransaction();
      await connection.query("UPDATE stock SET available = available WHERE sku = 'apple'");
      connection.release();
      await pool.query('LOCK TABLES customers READ');
      await pool.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
    });
    expect(await settled()).toEqual({ transactions: 0, lockedTables: 0 });
  });

  it('a connection released with a stream nobody reads is closed, and its transaction with it', async () => {
    await withTenant('shadow', async () => {
      const connection = await pool.getConnection();
      await connection.beginTransaction();
      await connection.query("UPDATE stock SET available = available WHERE sku = 'apple'");
      connection.connection.query('SELECT seq FROM seq_1_to_100000', []).stream({ objectMode: true }); // never read
      await new Promise((resolve) => setTimeout(resolve, 50));
      connection.release();
    });
    expect(await settled()).toEqual({ transactions: 0, lockedTables: 0 });
  });

  it('variables, temporary tables and session settings do not reach the next request on the same connection', async () => {
    const single = createTenantPool({ ...MYSQL, database, connectionLimit: 1 }, { isolatedConfig: account.isolatedConfig });
    try {
      await withTenant('shadow', async () => {
        const connection = await single.getConnection();
        await connection.query("SET @leftover = REPEAT('x', 1000000)");
        await connection.query('SET innodb_lock_wait_timeout = 999');
        await connection.query('CREATE TEMPORARY TABLE tmp_left (id INT)');
        connection.release();
        await single.query("SELECT 'x' INTO @through_pool");
      });
      const next = await withTenant('shadow', () =>
        single.query(
          'SELECT @leftover AS leftover, @through_pool AS pooled, @@innodb_lock_wait_timeout = @@GLOBAL.innodb_lock_wait_timeout AS reset',
        ),
      );
      expect(first(next)).toEqual({ leftover: null, pooled: null, reset: 1 });
      await expect(withTenant('shadow', () => single.query('SELECT * FROM tmp_left'))).rejects.toMatchObject({ code: 'ER_NO_SUCH_TABLE' });
    } finally {
      await single.end();
    }
  });

  it('a released connection refuses further use; a shadow request may not end the pool', async () => {
    const connection = await withTenant('shadow', () => pool.getConnection());
    connection.release();
    connection.release(); // twice is harmless
    await expect(withTenant('shadow', () => connection.query('SELECT 1'))).rejects.toThrow('already released');
    await expect(withTenant('shadow', () => pool.end())).rejects.toBeInstanceOf(IsolationError);
    expect(first<{ n: number }>(await pool.query('SELECT 1 AS n')).n).toBe(1);
  });

  it(`an isolated pool opens at most ${ISOLATED_CONNECTION_LIMIT} connections, whatever production's pool size`, async () => {
    const big = createTenantPool({ ...MYSQL, database, connectionLimit: 40 }, { isolatedConfig: account.isolatedConfig });
    try {
      await withTenant('shadow', async () => {
        const connections = await Promise.all(Array.from({ length: ISOLATED_CONNECTION_LIMIT }, () => big.getConnection()));
        const extra = big.getConnection();
        const [[count]] = (await admin.query('SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE USER = ? AND DB = ?', [
          account.user,
          `${database}_shadow`,
        ])) as unknown as [[{ n: number }]];
        expect(count.n).toBeLessThanOrEqual(ISOLATED_CONNECTION_LIMIT + 4); // the suite's other pools use a few too
        for (const connection of connections) connection.release();
        (await extra).release();
      });
    } finally {
      await big.end();
    }
  });
});

describe('no deadlock, no leaked connection', () => {
  it('connectionLimit 1: a first isolated use, concurrent queries and held connections all finish', async () => {
    const single = createTenantPool(
      { ...MYSQL, database, connectionLimit: 1 },
      { isolatedConfig: account.isolatedConfig, databaseListTtl: 1 },
    );
    try {
      const outcomes = await withTenant('shadow', () =>
        Promise.race([
          Promise.all(
            Array.from({ length: 20 }, async (_, i) => {
              if (i % 5 === 0) {
                const connection = await single.getConnection();
                try {
                  await new Promise((resolve) => setTimeout(resolve, 5));
                  return first<{ n: number }>(await connection.query('SELECT 1 AS n')).n;
                } finally {
                  connection.release();
                }
              }
              return first<{ n: number }>(await single.query('SELECT 1 AS n')).n;
            }),
          ),
          new Promise((_, reject) => setTimeout(() => reject(new Error('hung: no answer in 10 s')), 10_000)),
        ]),
      );
      expect(outcomes).toEqual(Array(20).fill(1));
    } finally {
      await single.end();
    }
  });

  it('a pool at its limit, every connection held, the database list expired: queries queue and finish', async () => {
    const full = createTenantPool(
      { ...MYSQL, database, connectionLimit: 2 },
      { isolatedConfig: account.isolatedConfig, databaseListTtl: 1 },
    );
    try {
      await withTenant('shadow', async () => {
        await full.query('SELECT 1');
        const held = await Promise.all([full.getConnection(), full.getConnection()]);
        await new Promise((resolve) => setTimeout(resolve, 20)); // the list is stale now
        const queued = full.query('SELECT 2 AS n');
        // A held connection still queries (it needs no free slot for the list).
        expect(first<{ n: number }>(await held[0].query('SELECT 3 AS n')).n).toBe(3);
        for (const connection of held) connection.release();
        const result = await Promise.race([queued, new Promise((_, reject) => setTimeout(() => reject(new Error('hung')), 10_000))]);
        expect(first<{ n: number }>(result).n).toBe(2);
      });
    } finally {
      await full.end();
    }
  });
});

describe('10,000 interleaved statements of four tenants', () => {
  it('run each in its own tenant database, as its own account (0 misrouted), through queued connections', async () => {
    const busy = createTenantPool({ ...MYSQL, database, connectionLimit: 3 }, { isolatedConfig: account.isolatedConfig });
    const tenants = ['baseline', 'red', 'shadow', 'shadow-lt1'];
    const expectedDb = (tenant: string) =>
      tenant === 'shadow' ? `${database}_shadow` : tenant === 'shadow-lt1' ? `${database}_shadow_lt1` : database;
    const sql = 'SELECT DATABASE() AS db, CURRENT_USER() AS account, ? AS n';
    type Row = { db: string; account: string; n: number };
    try {
      const results = await Promise.all(
        Array.from({ length: 10_000 }, (_, i) =>
          withTenant(tenants[i % 4] as string, async () => {
            const sent = tenants[i % 4] as string;
            let row: Row;
            if (i % 10 === 0) {
              // Waits in the pool's queue behind other tenants' statements.
              const connection = await busy.getConnection();
              try {
                row = first<Row>(await connection.execute(sql, [i]));
                if (connection.tenant.name !== sent) return `${i}: connection of ${connection.tenant.name}`;
              } finally {
                connection.release();
              }
            } else {
              row = first<Row>(await (i % 3 === 0 ? busy.execute(sql, [i]) : busy.query(sql, [i])));
            }
            const isolatedAccount = sent.startsWith('shadow');
            if (row.db !== expectedDb(sent)) return `${i}: ${sent} ran in ${row.db}`;
            if (Number(row.n) !== i) return `${i}: got the answer of ${row.n}`;
            if ((row.account === `${account.user}@%`) !== isolatedAccount) return `${i}: ${sent} ran as ${row.account}`;
            if (currentTenant().name !== sent) return `${i}: continued in ${currentTenant().name}`;
            return 'ok';
          }),
        ),
      );
      expect(results.filter((result) => result !== 'ok')).toEqual([]);
    } finally {
      await busy.end();
    }
    expect(await productionState(admin, database)).toEqual(before);
  }, 60_000);
});

describe('every entry point of mysql2 is covered or refused', () => {
  // The tenant pool exposes these and nothing else; every other mysql2 method is
  // absent, so it cannot be reached around the guard. A new mysql2 method fails
  // this test until it is listed as handled or deliberately absent.
  const HANDLED_POOL = new Set(['query', 'execute', 'getConnection', 'end']);
  const ABSENT_POOL: Record<string, string> = {
    constructor: 'not a method of the pool',
    releaseConnection: 'connections are released through their own release()',
    escape: 'pure function, use mysql2.escape',
    escapeId: 'pure function, use mysql2.escapeId',
    format: 'pure function, use mysql2.format',
    on: 'pool events are the baseline pool’s (baselinePool)',
    promise: 'already promise-based; Drizzle must not unwrap it',
  };
  const HANDLED_CONNECTION = new Set(['query', 'execute', 'beginTransaction', 'commit', 'rollback', 'release', 'connection']);
  const ABSENT_CONNECTION: Record<string, string> = {
    constructor: 'not a method',
    changeUser: 'would switch account or database under the guard',
    prepare: 'statements are prepared by execute(), whose text is checked',
    unprepare: 'see prepare',
    ping: 'not a statement; baseline code may use baselinePool',
    end: 'pool connections are released, not ended',
    destroy: 'pool connections are released, not destroyed',
    pause: 'stream control of the raw connection',
    resume: 'stream control of the raw connection',
    escape: 'pure function',
    escapeId: 'pure function',
    format: 'pure function',
    serverHandshake: 'server side of the protocol',
    reset: 'COM_RESET_CONNECTION is not exposed',
    close: 'pool connections are released',
    connect: 'pool connections are connected by the pool',
    createBinlogStream: 'a replication stream reads every database',
  };

  const methods = (prototype: object): string[] => {
    const names = new Set<string>();
    for (
      let p: object | null = prototype;
      p && p !== Object.prototype && p !== (Object.getPrototypeOf(Function) as object);
      p = Object.getPrototypeOf(p)
    ) {
      for (const name of Object.getOwnPropertyNames(p)) if (!name.startsWith('_')) names.add(name);
    }
    return [...names];
  };

  it('the tenant pool hands out nothing unguarded: its members are exactly these', () => {
    expect(Object.keys(pool).sort()).toEqual(['end', 'execute', 'getConnection', 'query', 'verifyIsolation']);
  });

  it('serves at most MAX_ISOLATED_TENANTS isolated tenants, so made-up names cannot pile up pools', async () => {
    const many = createTenantPool({ ...MYSQL, database }, { isolatedConfig: account.isolatedConfig });
    try {
      const outcomes = await Promise.all(
        Array.from({ length: MAX_ISOLATED_TENANTS + 5 }, (_, i) =>
          withTenant(`shadow-n${i}`, () => many.query('SELECT 1')).then(
            () => 'ran',
            (error: IsolationError) => (error.reason.includes('at most') ? 'capped' : 'missing database'),
          ),
        ),
      );
      expect(outcomes.filter((outcome) => outcome === 'capped')).toHaveLength(5);
      expect(outcomes.filter((outcome) => outcome === 'ran')).toHaveLength(0);
    } finally {
      await many.end();
    }
  });

  it('a statement too long to read is refused before anything is sent', async () => {
    const long = `SELECT '${'x'.repeat(16 * 1024 * 1024)}'`;
    const error = await withTenant('shadow', () => pool.query(long)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IsolationError);
    expect((error as Error).message).toContain('characters');
  });

  it("mysql2/promise Pool: each method is the tenant pool's own or deliberately absent", async () => {
    const raw = mysql.createPool({ ...MYSQL });
    try {
      const eventEmitter = new Set(methods((await import('node:events')).EventEmitter.prototype));
      const unlisted = methods(Object.getPrototypeOf(raw)).filter(
        (name) => !eventEmitter.has(name) && !HANDLED_POOL.has(name) && !(name in ABSENT_POOL),
      );
      expect(unlisted).toEqual([]);
      for (const name of HANDLED_POOL) expect(typeof (pool as unknown as Record<string, unknown>)[name]).toBe('function');
      for (const name of Object.keys(ABSENT_POOL)) if (name !== 'constructor') expect(name in pool, name).toBe(false);
    } finally {
      await raw.end();
    }
  });

  it("mysql2/promise PoolConnection: each method is the bound connection's own or deliberately absent", async () => {
    const rawPool = mysql.createPool({ ...MYSQL });
    const raw = await rawPool.getConnection();
    const bound = await withTenant('shadow', () => pool.getConnection());
    try {
      const eventEmitter = new Set(methods((await import('node:events')).EventEmitter.prototype));
      const unlisted = methods(Object.getPrototypeOf(raw)).filter(
        (name) =>
          !eventEmitter.has(name) &&
          !HANDLED_CONNECTION.has(name) &&
          !(name in ABSENT_CONNECTION) &&
          !['threadId', 'config'].includes(name),
      );
      expect(unlisted).toEqual([]);
      for (const name of Object.keys(ABSENT_CONNECTION)) if (name !== 'constructor') expect(name in bound, name).toBe(false);
      expect(Object.keys(bound.connection).sort()).toEqual(['end', 'execute', 'query', 'release', 'tenant']);
    } finally {
      bound.release();
      raw.release();
      await rawPool.end();
    }
  });
});
