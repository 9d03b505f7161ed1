import { currentTenant, IsolationError, setLogger, withTenant } from '@dye/core';
import { createTenantPool, type TenantPool } from '@dye/mysql2';
import { eq, sql } from 'drizzle-orm';
import { int, mysqlTable, varchar } from 'drizzle-orm/mysql-core';
import { drizzle } from 'drizzle-orm/mysql2';
import { Kysely, sql as kyselySql, MysqlDialect } from 'kysely';
import type mysql from 'mysql2/promise';
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

// Drizzle and Kysely, the real packages, on the tenant pool: shadow work lands
// in <db>_shadow as the shadow account, baseline in production, lazy builders
// in the tenant they were built in.

let admin: mysql.Connection;
let database: string;
let account: ShadowAccount;
let pool: TenantPool;

beforeAll(async () => {
  setLogger({ warn: () => {} });
  admin = await adminConnection();
  database = await createShadowedDatabase(admin, 'dye_orm');
  account = await createShadowAccount(admin, database);
  pool = createTenantPool({ ...MYSQL, database, connectionLimit: 3 }, { isolatedConfig: account.isolatedConfig });
});

afterAll(async () => {
  await pool.end();
  await account.drop();
  await dropDatabases(admin, database);
  await admin.end();
});

const skus = async (db: string) =>
  ((await admin.query(`SELECT sku FROM \`${db}\`.stock ORDER BY sku`)) as unknown as [Array<{ sku: string }>])[0].map((row) => row.sku);

describe('Drizzle', () => {
  const stock = mysqlTable('stock', { sku: varchar('sku', { length: 32 }).primaryKey(), available: int('available').notNull() });
  // Drizzle takes a mysql2 pool; the tenant pool has the part of its API Drizzle uses.
  const orm = () => drizzle({ client: pool as unknown as mysql.Pool });

  it('baseline writes production, shadow writes the shadow database, as the shadow account', async () => {
    const db = orm();
    await db.insert(stock).values({ sku: 'drizzle-baseline', available: 1 });
    await withTenant('shadow', async () => {
      await db.insert(stock).values({ sku: 'drizzle-shadow', available: 1 });
      const [[who]] = (await db.execute(sql`SELECT CURRENT_USER() AS account`)) as unknown as [[{ account: string }]];
      expect(who.account).toBe(`${account.user}@%`);
    });
    expect(await skus(database)).toContain('drizzle-baseline');
    expect(await skus(database)).not.toContain('drizzle-shadow');
    expect(await skus(`${database}_shadow`)).toContain('drizzle-shadow');
  });

  it('a builder returned from withTenant and awaited outside it still runs in shadow', async () => {
    const db = orm();
    const before = await productionState(admin, database);
    const insert = withTenant('shadow', () => db.insert(stock).values({ sku: 'drizzle-lazy', available: 2 }));
    expect(currentTenant().name).toBe('baseline');
    await insert;
    const update = withTenant('shadow', () => db.update(stock).set({ available: 0 }).where(eq(stock.sku, 'apple')));
    await update;
    expect(await skus(`${database}_shadow`)).toContain('drizzle-lazy');
    expect(await productionState(admin, database)).toEqual(before);
  });

  it('a builder from withTenant runs in shadow however it is run: execute(), prepare().execute(), iterator()', async () => {
    const db = orm();
    const before = await productionState(admin, database);
    await withTenant('shadow', () => db.insert(stock).values({ sku: 'drizzle-execute', available: 1 })).execute();
    await withTenant('shadow', () => db.insert(stock).values({ sku: 'drizzle-prepared', available: 1 }))
      .prepare()
      .execute();
    const rows: string[] = [];
    for await (const row of withTenant('shadow', () => db.select().from(stock).orderBy(stock.sku)).iterator()) rows.push(row.sku);
    const shadowSkus = await skus(`${database}_shadow`);
    expect(shadowSkus).toEqual(expect.arrayContaining(['drizzle-execute', 'drizzle-prepared']));
    expect(rows).toEqual(shadowSkus);
    expect(await productionState(admin, database)).toEqual(before);
  });

  it('transactions and savepoints stay in shadow; a failed one rolls back', async () => {
    const db = orm();
    const before = await productionState(admin, database);
    await withTenant('shadow', () =>
      db.transaction(async (tx) => {
        await tx.insert(stock).values({ sku: 'drizzle-tx', available: 3 });
        await tx
          .transaction(async (nested) => {
            await nested.insert(stock).values({ sku: 'drizzle-nested', available: 3 });
            throw new Error('roll back the savepoint');
          })
          .catch(() => {});
      }),
    );
    await withTenant('shadow', () =>
      db
        .transaction(async (tx) => {
          await tx.insert(stock).values({ sku: 'drizzle-failed', available: 3 });
          throw new Error('roll back');
        })
        .catch(() => {}),
    );
    const shadowSkus = await skus(`${database}_shadow`);
    expect(shadowSkus).toContain('drizzle-tx');
    expect(shadowSkus).not.toContain('drizzle-nested');
    expect(shadowSkus).not.toContain('drizzle-failed');
    expect(await productionState(admin, database)).toEqual(before);
  });

  it('iterator() streams shadow rows', async () => {
    const db = orm();
    const rows = await withTenant('shadow', async () => {
      const seen: string[] = [];
      for await (const row of db.select().from(stock).orderBy(stock.sku).iterator()) seen.push(row.sku);
      return seen;
    });
    expect(rows).toEqual(await skus(`${database}_shadow`));
  });

  it('raw SQL naming production is refused; production unchanged', async () => {
    const db = orm();
    const before = await productionState(admin, database);
    // Drizzle wraps driver errors: the IsolationError is the cause.
    const refusal = (run: () => Promise<unknown>) =>
      run().then(
        () => 'ran',
        (error: Error) => error.cause,
      );
    expect(await withTenant('shadow', () => refusal(() => db.execute(sql.raw(`DELETE FROM ${database}.stock`))))).toBeInstanceOf(
      IsolationError,
    );
    expect(await withTenant('shadow', () => refusal(() => db.execute(sql`DELETE FROM ${sql.identifier(database)}.stock`)))).toBeInstanceOf(
      IsolationError,
    );
    expect(
      await withTenant('shadow', () =>
        refusal(() => db.delete(stock).where(sql`1 = 1 OR EXISTS (SELECT 1 FROM ${sql.raw(database)}.stock)`)),
      ),
    ).toBeInstanceOf(IsolationError);
    expect(await productionState(admin, database)).toEqual(before);
  });
});

describe('Kysely', () => {
  interface Database {
    stock: { sku: string; available: number };
  }
  let kysely: Kysely<Database>;
  beforeAll(() => {
    // MysqlDialect takes mysql2's callback pool API: getConnection(callback), query(sql, values, callback).
    kysely = new Kysely<Database>({ dialect: new MysqlDialect({ pool }) });
  });

  it('baseline writes production, shadow writes the shadow database', async () => {
    await kysely.insertInto('stock').values({ sku: 'kysely-baseline', available: 1 }).execute();
    await withTenant('shadow', () => kysely.insertInto('stock').values({ sku: 'kysely-shadow', available: 1 }).execute());
    expect(await skus(database)).toContain('kysely-baseline');
    expect(await skus(database)).not.toContain('kysely-shadow');
    expect(await skus(`${database}_shadow`)).toContain('kysely-shadow');
  });

  it('transactions stay in shadow; streaming reads shadow rows', async () => {
    const before = await productionState(admin, database);
    await withTenant('shadow', () =>
      kysely.transaction().execute(async (trx) => {
        await trx.updateTable('stock').set({ available: 42 }).where('sku', '=', 'pear').execute();
        await trx.insertInto('stock').values({ sku: 'kysely-tx', available: 1 }).execute();
      }),
    );
    const streamed = await withTenant('shadow', async () => {
      const seen: string[] = [];
      for await (const row of kysely.selectFrom('stock').select('sku').orderBy('sku').stream()) seen.push(row.sku);
      return seen;
    });
    expect(streamed).toEqual(await skus(`${database}_shadow`));
    expect(streamed).toContain('kysely-tx');
    expect(await productionState(admin, database)).toEqual(before);
  });

  it('a query naming production is refused; production unchanged; connections are not leaked', async () => {
    const before = await productionState(admin, database);
    for (let i = 0; i < 10; i++) {
      await expect(
        withTenant('shadow', () => kyselySql`DELETE FROM ${kyselySql.raw(`${database}.stock`)}`.execute(kysely)),
      ).rejects.toBeInstanceOf(IsolationError);
    }
    // A pool of 3 still serves after 10 refusals: every refused query released its connection.
    expect(await withTenant('shadow', () => kysely.selectFrom('stock').select('sku').execute())).not.toEqual([]);
    expect(await productionState(admin, database)).toEqual(before);
  });
});
