import { IsolationError, setLogger, withTenant } from '@dye/core';
import {
  checkShadowSchema,
  createTenantPool,
  escapeGrantDatabase,
  grantShadowAccess,
  ISOLATED_PREPARED_STATEMENTS,
  syncShadowSchema,
} from '@dye/mysql2';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OwnMariaDb } from '../../../test/support/mariadb-server.js';
import { freePort } from '../../../test/support/redis-server.js';
import { createProductionDatabase, createShadowAccount, productionState, type ShadowAccount } from './support.js';

// A MariaDB of this test's own whose sessions read SQL differently: global
// sql_mode ANSI_QUOTES and NO_BACKSLASH_ESCAPES, as an operator may set them
// (isolated tenants cannot: the guard refuses SET sql_mode). Also where PUBLIC
// may be granted something, which would reach every account.
let server: OwnMariaDb;
let config: { host: string; port: number; user: string; password: string };
let admin: mysql.Connection;
let database: string;
let account: ShadowAccount;
let pool: ReturnType<typeof createTenantPool>;

beforeAll(async () => {
  setLogger({ warn: () => {} });
  server = new OwnMariaDb(await freePort(), ['--sql-mode=ANSI_QUOTES,NO_BACKSLASH_ESCAPES,STRICT_TRANS_TABLES']);
  await server.start();
  config = { host: '127.0.0.1', port: server.port, user: 'root', password: '' };
  admin = await mysql.createConnection({ ...config, multipleStatements: true });
  database = await createProductionDatabase(admin, 'dye_modes');
  await syncShadowSchema({ connection: admin, database, apply: true, copyTables: ['customers'] });
  await admin.query(`CREATE TABLE \`${database}_shadow\`.notes (text VARCHAR(255))`);
  account = await createShadowAccount(admin, database);
  pool = createTenantPool({ ...config, database, multipleStatements: true }, { isolatedConfig: account.isolatedConfig });
}, 60_000);

afterAll(async () => {
  await pool?.end();
  await admin?.end();
  await server?.destroy();
});

describe('a server reading SQL with ANSI_QUOTES and NO_BACKSLASH_ESCAPES', () => {
  it('the shadow database works as usual (execute binds values; query formats them)', async () => {
    await withTenant('shadow', async () => {
      await pool.execute('INSERT INTO notes VALUES (?)', ["O'Brien \\ back"]);
      await pool.query('INSERT INTO notes VALUES (?)', ['plain']);
    });
    const [rows] = (await admin.query(`SELECT text FROM \`${database}_shadow\`.notes ORDER BY text`)) as unknown as [
      Array<{ text: string }>,
    ];
    expect(rows.map((row) => row.text)).toEqual(["O'Brien \\ back", 'plain']);
  });

  it.each([
    ['a backslash that does not escape here', "SELECT 'a\\'; DELETE FROM {db}.stock; -- '"],
    ['double quotes that are names here', 'SELECT * FROM "{db}"."stock"'],
    ['a double-quoted "string" that is a name', 'DELETE FROM "{db}".stock'],
    ['a versioned comment skipped here', "SELECT 1 /*!99999 ' */; DELETE FROM {db}.stock; -- '"],
  ])('refuses %s; production unchanged', async (_name, template) => {
    const before = await productionState(admin, database);
    const error = await withTenant('shadow', () => pool.query(template.replaceAll('{db}', database))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IsolationError);
    expect(await productionState(admin, database)).toEqual(before);
  });

  it('a value formatted by mysql2 (backslash-escaped) cannot become SQL: the guard reads it as the server does', async () => {
    const before = await productionState(admin, database);
    // mysql2 escapes the quote as \', which this server reads as a backslash and the end of the string.
    const value = `'; DELETE FROM ${database}.stock; -- `;
    const error = await withTenant('shadow', () => pool.query('INSERT INTO notes VALUES (?)', [value])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IsolationError);
    expect(await productionState(admin, database)).toEqual(before);
    // The same value as a bound parameter is just a value.
    await withTenant('shadow', () => pool.execute('INSERT INTO notes VALUES (?)', [value]));
    expect(await productionState(admin, database)).toEqual(before);
  });
});

describe('grants to PUBLIC reach every account', () => {
  it('refuses isolated traffic while PUBLIC holds a production privilege; grantShadowAccess leaves PUBLIC to the DBA', async () => {
    await admin.query(`GRANT DELETE ON \`${escapeGrantDatabase(database)}\`.* TO PUBLIC`);
    const before = await productionState(admin, database);
    const fresh = createTenantPool({ ...config, database }, { isolatedConfig: account.isolatedConfig });
    try {
      const error = await withTenant('shadow', () => fresh.query('SELECT 1')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(IsolationError);
      expect((error as Error).message).toContain(`DELETE on \`${database}\``);
      // The account itself is in order: nothing for grantShadowAccess to change.
      expect((await grantShadowAccess(admin, { database, user: account.user })).statements).toEqual([]);
    } finally {
      await fresh.end();
      await admin.query(`REVOKE DELETE ON \`${escapeGrantDatabase(database)}\`.* FROM PUBLIC`);
    }
    expect(await productionState(admin, database)).toEqual(before);
    const after = createTenantPool({ ...config, database }, { isolatedConfig: account.isolatedConfig });
    try {
      await withTenant('shadow', () => after.query('SELECT 1'));
    } finally {
      await after.end();
    }
  });
});

describe('server-wide resources', () => {
  it(`an isolated pool keeps at most ${ISOLATED_PREPARED_STATEMENTS} prepared statements per connection, so shadow cannot use up the server's limit`, async () => {
    const pool = createTenantPool({ ...config, database, connectionLimit: 1 }, { isolatedConfig: account.isolatedConfig });
    try {
      await withTenant('shadow', async () => {
        for (let i = 0; i < ISOLATED_PREPARED_STATEMENTS + 300; i++)
          await pool.execute(`SELECT id FROM customers WHERE id = ? /* ${i} */`, [1]);
      });
      const [[status]] = (await admin.query("SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'")) as unknown as [[{ Value: string }]];
      expect(Number(status.Value)).toBeLessThanOrEqual(ISOLATED_PREPARED_STATEMENTS + 5);
    } finally {
      await pool.end();
    }
  });
});

describe('privileges from outside the account’s own grants', () => {
  it('a grant to the anonymous account reaches every account: refused at first use until it is gone', async () => {
    await admin.query("CREATE USER IF NOT EXISTS ''@'%'");
    await admin.query(`GRANT SELECT, UPDATE ON \`${escapeGrantDatabase(database)}\`.* TO ''@'%'`);
    const before = await productionState(admin, database);
    try {
      const fresh = createTenantPool({ ...config, database }, { isolatedConfig: account.isolatedConfig });
      try {
        const error = await withTenant('shadow', () => fresh.query('SELECT 1')).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(IsolationError);
        expect((error as Error).message).toContain(`reach \`${database}\``);
        await expect(fresh.verifyIsolation('shadow')).rejects.toBeInstanceOf(IsolationError);
      } finally {
        await fresh.end();
      }
      // The server really does let the shadow account in through it: this is not a false alarm.
      const raw = await mysql.createConnection({ ...config, ...account.isolatedConfig });
      try {
        const [rows] = (await raw.query(`SELECT COUNT(*) AS n FROM \`${database}\`.customers`)) as unknown as [[{ n: number }]];
        expect(rows[0].n).toBe(2);
      } finally {
        await raw.end();
      }
    } finally {
      await admin.query("DROP USER ''@'%'");
    }
    expect(await productionState(admin, database)).toEqual(before);
    const after = createTenantPool({ ...config, database }, { isolatedConfig: account.isolatedConfig });
    try {
      await withTenant('shadow', () => after.query('SELECT 1'));
    } finally {
      await after.end();
    }
  });
});

describe('a storage engine that reaches other servers (FEDERATED) loaded on the server', () => {
  beforeAll(async () => {
    await admin.query('SET SESSION sql_mode = ""');
    await admin.query("INSTALL SONAME 'ha_federatedx'");
  });
  afterAll(async () => {
    await admin.query(`DROP TABLE IF EXISTS \`${database}\`.remote_stock`);
    await admin.query("UNINSTALL SONAME 'ha_federatedx'");
  });

  it('the shadow account alone could read production through it: grants do not stop a CONNECTION string', async () => {
    const raw = await mysql.createConnection({ ...config, ...account.isolatedConfig, database: `${database}_shadow` });
    try {
      await raw.query(
        `CREATE TABLE through (sku VARCHAR(32), available INT) ENGINE=FEDERATED CONNECTION='mysql://root@127.0.0.1:${config.port}/${database}/stock'`,
      );
      const [rows] = (await raw.query('SELECT COUNT(*) AS n FROM through')) as unknown as [[{ n: number }]];
      expect(rows[0].n).toBe(2);
      await raw.query('DROP TABLE through');
    } finally {
      await raw.end();
    }
  });

  it('so isolated traffic is refused at first use until it is unloaded; the guard refuses the engine in SQL anyway', async () => {
    const fresh = createTenantPool({ ...config, database }, { isolatedConfig: account.isolatedConfig });
    try {
      const error = await withTenant('shadow', () => fresh.query('SELECT 1')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(IsolationError);
      expect((error as Error).message).toContain('FEDERATED engine loaded');
    } finally {
      await fresh.end();
    }
    const guardOnly = createTenantPool({ ...config, database }, { enforcement: 'guard-only' });
    try {
      const before = await productionState(admin, database);
      const error = await withTenant('shadow', () =>
        guardOnly.query(
          `CREATE TABLE t2 (sku VARCHAR(32)) ENGINE=FEDERATED CONNECTION='mysql://root@127.0.0.1:${config.port}/${database}/stock'`,
        ),
      ).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(IsolationError);
      expect(await productionState(admin, database)).toEqual(before);
    } finally {
      await guardOnly.end();
    }
  });

  it('syncShadowSchema refuses to copy a production table that lives on another server', async () => {
    await admin.query(
      `CREATE TABLE \`${database}\`.remote_stock (sku VARCHAR(32), available INT) ENGINE=FEDERATED CONNECTION='mysql://root@127.0.0.1:${config.port}/${database}/stock'`,
    );
    const report = await checkShadowSchema({ connection: admin, database });
    expect(report.foreignReferences.map((reference) => `${reference.kind} ${reference.name}`)).toEqual(['table remote_stock']);
    await expect(syncShadowSchema({ connection: admin, database, apply: true })).rejects.toThrow(/remote_stock.*FEDERATED/);
    const [shadowTables] = (await admin.query('SHOW TABLES FROM ?? LIKE ?', [`${database}_shadow`, 'remote_stock'])) as unknown as [
      unknown[],
    ];
    expect(shadowTables).toEqual([]);
  });
});
