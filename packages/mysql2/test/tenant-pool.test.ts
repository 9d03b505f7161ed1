import { currentTenant, IsolationError, setLogger, withTenant } from '@dye/core';
import { createTenantPool, syncShadowSchema, type TenantPool } from '@dye/mysql2';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MYSQL } from '../../../test/support/services.js';
import { adminConnection, createProductionDatabase, productionState } from './support.js';

let admin: mysql.Connection;
let database: string;
let pool: TenantPool;
let before: Record<string, string>;

beforeAll(async () => {
  setLogger({ warn: () => {} });
  admin = await adminConnection();
  database = await createProductionDatabase(admin, 'dye_pool');
  await syncShadowSchema({ connection: admin, database, apply: true, copyTables: ['customers', 'stock'] });
  pool = createTenantPool({ ...MYSQL, database, connectionLimit: 4, multipleStatements: true });
  before = await productionState(admin, database);
});

afterAll(async () => {
  await pool.end();
  await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await admin.query(`DROP DATABASE IF EXISTS \`${database}_shadow\``);
  await admin.end();
});

async function refusedWith(run: () => Promise<unknown>): Promise<unknown> {
  return run().then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe('routing by tenant', () => {
  it('baseline and colors use the production database, shadow its own', async () => {
    const [[baseline]] = (await pool.query('SELECT DATABASE() AS db')) as unknown as [[{ db: string }]];
    const [[red]] = (await withTenant('red', () => pool.query('SELECT DATABASE() AS db'))) as unknown as [[{ db: string }]];
    const [[shadow]] = (await withTenant('shadow', () => pool.execute('SELECT DATABASE() AS db'))) as unknown as [[{ db: string }]];
    expect([baseline.db, red.db, shadow.db]).toEqual([database, database, `${database}_shadow`]);
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
});

describe('refusals: IsolationError, and production unchanged', () => {
  const cases: Array<[string, string]> = [
    ['a qualified production table', 'SELECT * FROM {db}.orders'],
    ['a backticked, mixed-case production table', 'DELETE FROM `{DB}`.`orders`'],
    ['a join across schemas', 'SELECT * FROM orders o JOIN {db}.customers c ON c.id = o.customer_id'],
    ['INSERT … SELECT from production', 'INSERT INTO orders (customer_id, sku) SELECT customer_id, sku FROM {db}.orders'],
    ['a multi-statement query with a production statement', "SELECT 1; UPDATE {db}.stock SET available = 0 WHERE sku = 'apple'"],
    ['USE', 'USE {db}'],
    ['DROP DATABASE of production', 'DROP DATABASE {db}'],
  ];

  it.each(cases)('%s', async (_name, template) => {
    const sql = template.replaceAll('{db}', database).replaceAll('{DB}', database.toUpperCase());
    const error = await refusedWith(() => withTenant('shadow', () => pool.query(sql)));
    expect(error).toBeInstanceOf(IsolationError);
    expect(await productionState(admin, database)).toEqual(before);
  });

  it('allows production names inside strings and comments', async () => {
    await withTenant('shadow', () =>
      pool.query(`INSERT INTO orders (customer_id, sku, tenant) VALUES (1, '${database}.orders', 'shadow') -- ${database}.orders`),
    );
    expect(await productionState(admin, database)).toEqual(before);
  });

  it('refuses when the isolated database does not exist, and never creates it', async () => {
    const error = await refusedWith(() =>
      withTenant('shadow-lt9', () => pool.query("INSERT INTO orders (customer_id, sku) VALUES (1, 'x')")),
    );
    expect(error).toBeInstanceOf(IsolationError);
    expect((error as IsolationError).message).toContain(`${database}_shadow_lt9`);
    const [exists] = (await admin.query('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [
      `${database}_shadow_lt9`,
    ])) as unknown as [unknown[]];
    expect(exists).toEqual([]);
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
      expect(await refusedWith(() => shadowConnection.query('SELECT 1'))).toBeInstanceOf(IsolationError);
      expect(await refusedWith(() => withTenant('shadow', () => baselineConnection.query('SELECT 1')))).toBeInstanceOf(IsolationError);
      expect(await refusedWith(() => withTenant('shadow', () => baselineConnection.beginTransaction()))).toBeInstanceOf(IsolationError);
    } finally {
      shadowConnection.release();
      baselineConnection.release();
    }
  });
});

describe('one connection, 300 interleaved queries of three tenants', () => {
  it('runs each query in its own tenant database (0 misattributed), and queued getConnection keeps its caller tenant', async () => {
    const single = createTenantPool({ ...MYSQL, database, connectionLimit: 1 });
    try {
      const tenants = ['baseline', 'red', 'shadow'];
      const results = await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          withTenant(tenants[i % 3] as string, async () => {
            if (i % 10 === 0) {
              // Waits in the pool's queue behind other tenants' queries.
              const connection = await single.getConnection();
              try {
                const [[row]] = (await connection.query('SELECT DATABASE() AS db')) as unknown as [[{ db: string }]];
                return { sent: tenants[i % 3], db: row.db, tenant: connection.tenant.name, context: currentTenant().name };
              } finally {
                connection.release();
              }
            }
            const [[row]] = (await single.query('SELECT DATABASE() AS db')) as unknown as [[{ db: string }]];
            return { sent: tenants[i % 3], db: row.db, tenant: tenants[i % 3], context: currentTenant().name };
          }),
        ),
      );
      const expectedDb = (tenant: string) => (tenant === 'shadow' ? `${database}_shadow` : database);
      const wrong = results.filter(
        (result) => result.db !== expectedDb(result.sent as string) || result.tenant !== result.sent || result.context !== result.sent,
      );
      expect(wrong).toEqual([]);
    } finally {
      await single.end();
    }
  });
});
