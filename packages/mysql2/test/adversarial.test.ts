import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { currentTenant, IsolationError, setLogger, withTenant } from '@dye/core';
import { createTenantPool, type TenantPool } from '@dye/mysql2';
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

// An attacker's and a careless user's shadow traffic, in every form we know of
// each class, against the normal setup (the shadow account and the guard) and
// against the guard alone (enforcement: 'guard-only', production's root
// account). After each form the world is compared: production's tables by
// checksum, accounts, databases, plugins, files, server variables, and a
// prepared XA transaction of production's.

let admin: mysql.Connection;
let database: string;
let account: ShadowAccount;
let adminThread: number;
const tag = randomBytes(4).toString('hex');
const evilUser = `dye_evil_${tag}`;
const outfile = `/tmp/dye-outfile-${tag}`;
const xid = `dye-xa-${tag}`;
let xaConnection: mysql.Connection;

interface World {
  production: Record<string, string>;
  xaProbe: number;
  databases: string[];
  evilUsers: number;
  plugins: string;
  globals: string;
  adminAlive: boolean;
  outfileExists: boolean;
}

async function world(): Promise<World> {
  const one = async <T>(sql: string): Promise<T> => ((await admin.query(sql)) as unknown as [[Record<string, T>]])[0][0]?.v as T;
  return {
    production: await productionState(admin, database),
    xaProbe: await one<number>(`SELECT COUNT(*) AS v FROM \`${database}\`.xa_probe`),
    databases: ((await admin.query('SHOW DATABASES')) as unknown as [Array<{ Database: string }>])[0]
      .map((row) => row.Database)
      .filter((name) => name.startsWith(database) || name === 'shop'),
    evilUsers: await one<number>(`SELECT COUNT(*) AS v FROM mysql.user WHERE User LIKE 'dye\\_evil\\_${tag}%'`),
    plugins: await one<string>(
      "SELECT GROUP_CONCAT(PLUGIN_NAME ORDER BY PLUGIN_NAME) AS v FROM information_schema.PLUGINS WHERE PLUGIN_STATUS = 'ACTIVE'",
    ),
    globals: await one<string>(
      'SELECT CONCAT_WS(",", @@GLOBAL.read_only, @@GLOBAL.sql_mode, @@GLOBAL.max_connections, @@GLOBAL.event_scheduler) AS v',
    ),
    adminAlive: await admin.query('SELECT 1').then(
      () => true,
      () => false,
    ),
    outfileExists: existsSync(outfile),
  };
}

beforeAll(async () => {
  setLogger({ warn: () => {} });
  admin = await adminConnection();
  database = await createShadowedDatabase(admin, 'dye_attack', ['shadow', 'shadow-lt1']);
  await admin.query(`CREATE TABLE \`${database}\`.xa_probe (id INT PRIMARY KEY) ENGINE=InnoDB`);
  await admin.query(`INSERT INTO \`${database}\`.xa_probe VALUES (1), (2)`);
  await admin.query(`CREATE TABLE \`${database}_shadow\`.notes (text VARCHAR(255))`);
  account = await createShadowAccount(admin, database, ['shadow', 'shadow-lt1']);
  [[{ id: adminThread }]] = (await admin.query('SELECT CONNECTION_ID() AS id')) as unknown as [[{ id: number }]];
  // A production transaction prepared and not yet committed: a shadow XA COMMIT must not finish it.
  xaConnection = await mysql.createConnection({ ...MYSQL, database });
  await xaConnection.query(`XA START '${xid}'`);
  await xaConnection.query('DELETE FROM xa_probe WHERE id = 1');
  await xaConnection.query(`XA END '${xid}'`);
  await xaConnection.query(`XA PREPARE '${xid}'`);
});

afterAll(async () => {
  // Only the session that prepared it may end it while that session lives.
  await xaConnection.query(`XA ROLLBACK '${xid}'`).catch(() => admin.query(`XA ROLLBACK '${xid}'`));
  await xaConnection.end().catch(() => {});
  await admin.query(`DROP USER IF EXISTS '${evilUser}'@'%'`);
  await account.drop();
  await dropDatabases(admin, database, ['shadow', 'shadow-lt1']);
  await admin.end();
});

type Outcome = 'refused' | 'shadow';
interface Form {
  readonly name: string;
  /** What must happen: refused (IsolationError), or run inside the shadow database. */
  readonly expect: Outcome;
  run(pool: TenantPool, db: string): Promise<unknown>;
  /** After a 'shadow' form: where the effect must be seen. */
  check?(db: string): Promise<void>;
  /** Refused by the server's grants only: a guard-only pool is not expected to stop it. */
  readonly accountOnly?: boolean;
  /** What must happen with the guard alone, when it differs (the server no longer filters what it shows). */
  readonly guardOnly?: Outcome;
}

const q = (sql: string, values?: unknown) => (pool: TenantPool, db: string) =>
  pool.query(sql.replaceAll('{db}', db), values === undefined ? undefined : JSON.parse(JSON.stringify(values).replaceAll('{db}', db)));
const half = (db: string) => [db.slice(0, 4), db.slice(4)] as const;
const shadowNotes = async (db: string) =>
  ((await admin.query(`SELECT text FROM \`${db}_shadow\`.notes`)) as unknown as [Array<{ text: string }>])[0].map((row) => row.text);

const forms: Form[] = [
  // Dynamic SQL: text built at run time.
  { name: 'EXECUTE IMMEDIATE of a production DELETE', expect: 'refused', run: q("EXECUTE IMMEDIATE 'DELETE FROM {db}.stock'") },
  {
    name: 'EXECUTE IMMEDIATE of a DELETE spelled with CONCAT',
    expect: 'refused',
    run: (pool, db) => pool.query(`EXECUTE IMMEDIATE CONCAT('DELETE FROM ${half(db)[0]}', '${half(db)[1]}.stock')`),
  },
  {
    name: 'SET @q = CONCAT(…); PREPARE s FROM @q; EXECUTE s (three queries)',
    expect: 'refused',
    run: async (pool, db) => {
      await pool.query(`SET @q = CONCAT('DELETE FROM ${half(db)[0]}', '${half(db)[1]}.stock')`);
      await pool.query('PREPARE s FROM @q');
      await pool.query('EXECUTE s');
    },
  },
  {
    name: 'the same as one multi-statement query',
    expect: 'refused',
    run: (pool, db) => pool.query(`SET @q = CONCAT('DELETE FROM ${half(db)[0]}', '${half(db)[1]}.stock'); PREPARE s FROM @q; EXECUTE s`),
  },
  {
    name: 'PREPARE of a shadow-only statement (dynamic SQL is refused as a kind)',
    expect: 'refused',
    run: q("PREPARE s FROM 'DELETE FROM stock'"),
  },
  { name: 'DEALLOCATE PREPARE', expect: 'refused', run: q('DEALLOCATE PREPARE s') },
  {
    name: "EXECUTE IMMEDIATE 'USE <production>', then an ordinary INSERT",
    expect: 'refused',
    run: async (pool, db) => {
      await pool.query(`EXECUTE IMMEDIATE 'USE ${db}'`).catch(() => {});
      await pool.query("INSERT INTO orders (customer_id, sku, tenant) VALUES (1, 'after-use', 'shadow')");
      throw new IsolationError({ tenant: 'shadow', refused: 'marker', reason: 'the INSERT ran; checked below' });
    },
    check: async (db) => {
      const [rows] = (await admin.query(`SELECT COUNT(*) AS n FROM \`${db}_shadow\`.orders WHERE sku = 'after-use'`)) as unknown as [
        [{ n: number }],
      ];
      expect(rows[0].n).toBeGreaterThan(0);
    },
  },
  {
    name: 'a procedure that deletes production, then CALL',
    expect: 'refused',
    run: q('CREATE PROCEDURE p1() BEGIN DELETE FROM {db}.stock; END'),
  },
  {
    name: 'a procedure with dynamic SQL inside, then CALL',
    expect: 'refused',
    run: async (pool, db) => {
      await pool
        .query(
          `CREATE PROCEDURE p2() BEGIN SET @q = CONCAT('DELETE FROM ${half(db)[0]}', '${half(db)[1]}.stock'); PREPARE s FROM @q; EXECUTE s; END`,
        )
        .catch(() => {});
      await pool.query('CALL p2()');
    },
  },
  { name: 'CALL of any procedure', expect: 'refused', run: q('CALL mysql.nothing()') },
  {
    name: 'a trigger planted to write production later',
    expect: 'refused',
    run: q('CREATE TRIGGER tr1 BEFORE INSERT ON orders FOR EACH ROW DELETE FROM {db}.stock'),
  },
  { name: 'a view over production', expect: 'refused', run: q('CREATE VIEW v1 AS SELECT * FROM {db}.stock') },
  {
    name: 'a view over production, quoted and mixed case',
    expect: 'refused',
    run: q('CREATE OR REPLACE VIEW `v2` AS SELECT * FROM `{DB}`.`stock`'.replace('{DB}', '{db}')),
  },
  {
    name: 'an event that deletes production',
    expect: 'refused',
    run: q('CREATE EVENT e1 ON SCHEDULE AT CURRENT_TIMESTAMP DO DELETE FROM {db}.stock'),
  },
  {
    name: 'a function that deletes production',
    expect: 'refused',
    run: q('CREATE FUNCTION f1() RETURNS INT BEGIN DELETE FROM {db}.stock; RETURN 1; END'),
  },
  { name: 'a compound statement', expect: 'refused', run: q('BEGIN NOT ATOMIC DELETE FROM {db}.stock; END') },
  {
    name: 'a compound statement, dynamic inside',
    expect: 'refused',
    run: q("BEGIN NOT ATOMIC EXECUTE IMMEDIATE 'DELETE FROM stock'; END"),
  },

  // Statements that reach outside without naming a database.
  { name: "XA COMMIT of production's prepared transaction", expect: 'refused', run: () => pool().query(`XA COMMIT '${xid}'`) },
  { name: 'XA ROLLBACK of it', expect: 'refused', run: () => pool().query(`XA ROLLBACK '${xid}'`) },
  { name: 'XA RECOVER', expect: 'refused', run: q('XA RECOVER') },
  { name: "KILL of production's connection", expect: 'refused', run: () => pool().query(`KILL ${adminThread}`) },
  { name: 'KILL QUERY', expect: 'refused', run: () => pool().query(`KILL QUERY ${adminThread}`) },
  { name: 'SET GLOBAL read_only', expect: 'refused', run: q('SET GLOBAL read_only = 1') },
  { name: 'SET @@GLOBAL.sql_mode', expect: 'refused', run: q("SET @@GLOBAL.sql_mode = 'NO_BACKSLASH_ESCAPES'") },
  { name: 'SET GLOBAL max_connections', expect: 'refused', run: q('SET GLOBAL max_connections = 5') },
  { name: 'SET GLOBAL event_scheduler', expect: 'refused', run: q('SET GLOBAL event_scheduler = ON') },
  { name: 'FLUSH TABLES WITH READ LOCK', expect: 'refused', run: q('FLUSH TABLES WITH READ LOCK') },
  { name: 'FLUSH PRIVILEGES', expect: 'refused', run: q('FLUSH PRIVILEGES') },
  { name: 'LOAD DATA INFILE', expect: 'refused', run: q("LOAD DATA INFILE '/etc/hostname' INTO TABLE notes") },
  { name: 'LOAD DATA LOCAL INFILE', expect: 'refused', run: q("LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE notes") },
  { name: 'SELECT … INTO OUTFILE', expect: 'refused', run: q(`SELECT * FROM stock INTO OUTFILE '${outfile}'`) },
  { name: 'SELECT … INTO DUMPFILE', expect: 'refused', run: q(`SELECT 'x' INTO DUMPFILE '${outfile}'`) },
  { name: 'LOAD_FILE()', expect: 'refused', run: q("INSERT INTO notes SELECT LOAD_FILE('/etc/passwd')") },
  { name: 'CREATE USER', expect: 'refused', run: q(`CREATE USER '${evilUser}'@'%' IDENTIFIED BY 'x'`) },
  { name: 'GRANT to itself', expect: 'refused', run: () => pool().query(`GRANT ALL ON *.* TO '${account.user}'@'%'`) },
  { name: 'SET PASSWORD', expect: 'refused', run: q("SET PASSWORD = PASSWORD('changed')") },
  { name: 'ALTER USER', expect: 'refused', run: () => pool().query(`ALTER USER '${account.user}'@'%' IDENTIFIED BY 'changed'`) },
  { name: 'INSTALL SONAME', expect: 'refused', run: q("INSTALL SONAME 'ha_connect'") },
  {
    name: 'a FEDERATED table onto production',
    expect: 'refused',
    run: q("CREATE TABLE fed (sku VARCHAR(32), available INT) ENGINE=FEDERATED CONNECTION='mysql://root@127.0.0.1:3306/{db}/stock'"),
  },
  {
    name: 'a CONNECT table onto production',
    expect: 'refused',
    run: q("CREATE TABLE con ENGINE=CONNECT TABLE_TYPE=MYSQL CONNECTION='mysql://root@127.0.0.1:3306/{db}/stock'"),
  },
  { name: 'a table with its files elsewhere', expect: 'refused', run: q("CREATE TABLE elsewhere (id INT) DATA DIRECTORY = '/tmp'") },
  {
    name: 'SET default_storage_engine, then an innocent CREATE TABLE',
    expect: 'refused',
    run: q('SET default_storage_engine = FEDERATED'),
  },
  { name: 'CREATE OR REPLACE DATABASE <production>', expect: 'refused', run: q('CREATE OR REPLACE DATABASE {db}') },
  { name: 'DROP DATABASE <production>', expect: 'refused', run: q('DROP DATABASE {db}') },
  { name: 'DROP DATABASE of its own shadow database', expect: 'refused', run: (pool, db) => pool.query(`DROP DATABASE \`${db}_shadow\``) },
  { name: 'CREATE DATABASE', expect: 'refused', run: (pool, db) => pool.query(`CREATE DATABASE \`${db}_x\``) },
  { name: 'SHUTDOWN', expect: 'refused', accountOnly: true, run: q('SHUTDOWN') },
  { name: 'GET_LOCK on a production lock name', expect: 'refused', run: q("SELECT GET_LOCK('{db}.orders', 0)") },
  { name: 'SET ROLE', expect: 'refused', run: q('SET ROLE NONE') },
  { name: 'RENAME TABLE into production', expect: 'refused', run: q('RENAME TABLE notes TO {db}.notes') },
  { name: 'ALTER TABLE … RENAME into production', expect: 'refused', run: q('ALTER TABLE notes RENAME {db}.notes') },
  { name: 'CREATE TABLE in production', expect: 'refused', run: q('CREATE TABLE {db}.evil (id INT)') },
  { name: 'USE <production>, then an ordinary INSERT', expect: 'refused', run: q('USE {db}') },

  // The guard must read what the server runs: values, placeholders, objects.
  { name: "?? with 'prod.stock'", expect: 'refused', run: q('DELETE FROM ??', ['{db}.stock']) },
  { name: '{ sql, values } with ??', expect: 'refused', run: (pool, db) => pool.query({ sql: 'DELETE FROM ??', values: [`${db}.stock`] }) },
  { name: '?? for the database only', expect: 'refused', run: q('DELETE FROM ??.stock', ['{db}']) },
  { name: 'mysql.raw as a value', expect: 'refused', run: (pool, db) => pool.query('DELETE FROM ?', [mysql.raw(`${db}.stock`)]) },
  {
    name: 'a value whose toSqlString() returns SQL',
    expect: 'refused',
    run: (pool, db) => pool.query('DELETE FROM ?', [{ toSqlString: () => `${db}.stock` }]),
  },
  {
    name: 'a value whose toSqlString() smuggles a statement',
    expect: 'refused',
    run: (pool, db) => pool.query('SELECT ?', [{ toSqlString: () => `1; DELETE FROM ${db}.stock` }]),
  },
  {
    name: 'mysql.raw inside an IN list',
    expect: 'refused',
    run: (pool, db) => pool.query('SELECT * FROM stock WHERE sku IN (?)', [[mysql.raw(`'x') UNION SELECT * FROM ${db}.stock -- `)]]),
  },
  {
    name: 'a { sql } whose text changes between reads',
    expect: 'refused',
    run: (pool, db) => {
      let reads = 0;
      const query = {
        get sql() {
          reads++;
          return reads === 1 ? `DELETE FROM ${db}.stock` : 'SELECT 1';
        },
      };
      return pool.query(query as never);
    },
  },
  {
    name: 'a { sql } whose text changes the other way',
    expect: 'shadow',
    run: (pool, db) => {
      let reads = 0;
      const query = {
        get sql() {
          reads++;
          return reads === 1 ? "INSERT INTO notes VALUES ('first read')" : `DELETE FROM ${db}.stock`;
        },
      };
      return pool.query(query as never);
    },
    check: async (db) => expect(await shadowNotes(db)).toContain('first read'),
  },
  { name: 'a String object', expect: 'refused', run: (pool, db) => pool.query(new String(`DELETE FROM ${db}.stock`) as never) },
  { name: 'a prebuilt mysql2 Query-like object', expect: 'refused', run: (pool) => pool.query({ sql: undefined } as never) },
  {
    name: 'a quote-laden value stays a value',
    expect: 'shadow',
    run: (pool, db) => pool.query('INSERT INTO notes VALUES (?)', [`'); DELETE FROM ${db}.stock; -- \\' " \``]),
    check: async (db) => expect((await shadowNotes(db)).some((text) => text.includes('DELETE FROM'))).toBe(true),
  },
  {
    name: 'execute() with production in the prepared text',
    expect: 'refused',
    run: (pool, db) => pool.execute(`DELETE FROM ${db}.stock WHERE sku = ?`, ['apple']),
  },
  {
    name: 'execute() with a value that looks like SQL',
    expect: 'shadow',
    run: (pool, db) => pool.execute('INSERT INTO notes VALUES (?)', [`x'; DELETE FROM ${db}.stock; -- `]),
    check: async (db) => expect((await shadowNotes(db)).some((text) => text.startsWith("x'; DELETE"))).toBe(true),
  },
  { name: 'a custom object as the query', expect: 'refused', run: (pool) => pool.query(42 as never) },

  // Text the server reads otherwise than a naive lexer.
  { name: 'a skipped versioned comment hiding a quote', expect: 'refused', run: q("SELECT 1 /*!99999 ' */; DELETE FROM {db}.stock; -- '") },
  { name: 'an executed versioned comment', expect: 'refused', run: q('SELECT 1 /*!50000 , (SELECT COUNT(*) FROM {db}.stock) */') },
  { name: 'a MariaDB-only executed comment', expect: 'refused', run: q('DELETE s FROM stock x /*M!100000 JOIN {db}.stock s */') },
  { name: 'a skipped MariaDB comment hiding a quote', expect: 'refused', run: q("SELECT 1 /*M!999999 '*/; DELETE FROM {db}.stock; -- '") },
  { name: '-- followed by a no-break space', expect: 'refused', run: q('SELECT 1 --\u00a0; DELETE FROM {db}.stock') },
  { name: 'a backslash-escaped quote (one harmless statement)', expect: 'shadow', run: q("SELECT '\\'; DELETE FROM {db}.stock; -- '") },
  {
    name: 'a backslash in a double-quoted string (one harmless statement)',
    expect: 'shadow',
    run: q('SELECT "\\"; DELETE FROM {db}.stock; -- "'),
  },
  { name: 'a doubled backtick (one harmless statement)', expect: 'shadow', run: q('SELECT 1 AS `a``; DELETE FROM {db}.stock; -- `') },
  { name: "X'…' with a backslash", expect: 'refused', run: q("SELECT X'\\'; DELETE FROM {db}.stock; -- '") },
  {
    name: '# comment ended by a carriage return (one harmless statement)',
    expect: 'shadow',
    run: q('SELECT 1 #\r; DELETE FROM {db}.stock'),
  },
  { name: 'a comment that opens with /*/', expect: 'refused', run: q('DELETE FROM stock WHERE 1 = 0 /*/ ; DELETE FROM {db}.stock /*/') },
  { name: 'dollar quotes', expect: 'refused', run: q('SELECT $$ ; DELETE FROM {db}.stock; $$') },
  { name: 'a tab between FROM and the name', expect: 'refused', run: q('SELECT 1; DELETE FROM\t{db}.stock') },
  { name: 'a NUL byte', expect: 'refused', run: q('SELECT 1\u0000; DELETE FROM {db}.stock') },
  { name: '\\N outside a string', expect: 'refused', run: q("SELECT \\'; DELETE FROM {db}.stock; -- '") },

  // Session settings that change how SQL is read.
  { name: 'SET NAMES gbk', expect: 'refused', run: q('SET NAMES gbk') },
  { name: 'SET character_set_client', expect: 'refused', run: q('SET character_set_client = gbk') },
  { name: 'SET sql_mode to NO_BACKSLASH_ESCAPES', expect: 'refused', run: q("SET sql_mode = 'NO_BACKSLASH_ESCAPES'") },
  { name: 'SET SESSION sql_mode to ANSI_QUOTES', expect: 'refused', run: q("SET SESSION sql_mode = 'ANSI_QUOTES'") },
  { name: 'SET STATEMENT … FOR', expect: 'refused', run: q("SET STATEMENT sql_mode = 'ANSI_QUOTES' FOR SELECT 1") },

  // Other databases.
  { name: 'mysql.user', expect: 'refused', run: q('SELECT * FROM mysql.user') },
  {
    name: "the other shadow tenant's database",
    expect: 'refused',
    run: (pool, db) => pool.query(`DELETE FROM \`${db}_shadow_lt1\`.orders`),
  },
  { name: 'SHOW TABLES FROM <production>', expect: 'refused', run: q('SHOW TABLES FROM {db}') },
  { name: 'SHOW CREATE TABLE <production>.stock', expect: 'refused', run: q('SHOW CREATE TABLE {db}.stock') },
  { name: 'DESCRIBE <production>.stock', expect: 'refused', run: q('DESCRIBE {db}.stock') },
  { name: 'writing information_schema', expect: 'refused', accountOnly: true, run: q('DELETE FROM information_schema.PROCESSLIST') },
  {
    name: "other sessions' SQL in information_schema.PROCESSLIST",
    expect: 'shadow',
    guardOnly: 'refused',
    run: async (pool) => {
      const [rows] = (await pool.query('SELECT USER AS user, INFO AS info FROM information_schema.PROCESSLIST')) as unknown as [
        Array<{ user: string }>,
      ];
      expect(new Set(rows.map((row) => row.user))).toEqual(new Set([account.user]));
    },
  },
  {
    name: "other sessions' SQL in SHOW FULL PROCESSLIST",
    expect: 'shadow',
    guardOnly: 'refused',
    run: async (pool) => {
      const [rows] = (await pool.query('SHOW FULL PROCESSLIST')) as unknown as [Array<{ User: string }>];
      expect(new Set(rows.map((row) => row.User))).toEqual(new Set([account.user]));
    },
  },
  { name: "another account's password hash", expect: 'refused', run: q("SHOW GRANTS FOR 'root'@'localhost'") },
  {
    name: "production's tables, row counts and AUTO_INCREMENT in information_schema.TABLES",
    expect: 'shadow',
    guardOnly: 'refused',
    run: async (pool, db) => {
      const [rows] = await pool.query(
        'SELECT TABLE_NAME, TABLE_ROWS, AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?',
        [db],
      );
      expect(rows).toEqual([]);
    },
  },
  {
    name: 'every database name in SHOW DATABASES',
    expect: 'shadow',
    guardOnly: 'refused',
    run: async (pool, db) => {
      const [rows] = (await pool.query('SHOW DATABASES')) as unknown as [Array<{ Database: string }>];
      expect(rows.map((row) => row.Database).filter((name) => name === db)).toEqual([]);
    },
  },
  { name: 'performance_schema', expect: 'refused', run: q('SELECT * FROM performance_schema.threads') },
];

let currentPool: TenantPool;
const pool = () => currentPool;

describe.each([
  ['the shadow account and the guard', 'account'],
  ['the guard alone', 'guard-only'],
] as const)('an attacker in shadow, against %s', (_name, enforcement) => {
  beforeAll(() => {
    currentPool = createTenantPool(
      { ...MYSQL, database, connectionLimit: 3, multipleStatements: true, namedPlaceholders: false },
      enforcement === 'account' ? { isolatedConfig: account.isolatedConfig } : { enforcement: 'guard-only' },
    );
  });
  afterAll(() => currentPool.end());

  it(`has at least 80 forms`, () => {
    expect(forms.length).toBeGreaterThanOrEqual(80);
  });

  it.each(forms.filter((form) => enforcement === 'account' || !form.accountOnly).map((form) => [form.name, form] as const))(
    '%s',
    async (_formName, form) => {
      const before = await world();
      const outcome = await withTenant('shadow', async () => {
        expect(currentTenant().name).toBe('shadow');
        return form.run(currentPool, database).then(
          () => 'shadow' as const,
          (error: unknown) => (error instanceof IsolationError ? ('refused' as const) : error),
        );
      });
      const expected = enforcement === 'guard-only' ? (form.guardOnly ?? form.expect) : form.expect;
      if (outcome !== expected) throw new Error(`expected ${expected}, got ${outcome instanceof Error ? outcome.stack : String(outcome)}`);
      if (outcome === 'shadow') await form.check?.(database);
      expect(await world()).toEqual(before);
    },
  );

  it('named placeholders (::tbl and :value) are read after conversion', async () => {
    const named = createTenantPool(
      { ...MYSQL, database, namedPlaceholders: true },
      enforcement === 'account' ? { isolatedConfig: account.isolatedConfig } : { enforcement: 'guard-only' },
    );
    try {
      const before = await world();
      const attempts = await withTenant('shadow', () =>
        Promise.all([
          named.query('DELETE FROM ::tbl', { tbl: `${database}.stock` }).catch((error: unknown) => error),
          named.query('DELETE FROM stock WHERE sku = :sku OR 1 = :one', { sku: 'x', one: 1, extra: `${database}.stock` }).then(() => 'ran'),
          named.execute('INSERT INTO notes VALUES (:text)', { text: `${database}.stock` }).then(() => 'ran'),
          named.execute(`DELETE FROM ${database}.stock WHERE sku = :sku`, { sku: 'apple' }).catch((error: unknown) => error),
        ]),
      );
      expect(attempts[0]).toBeInstanceOf(IsolationError);
      expect(attempts.slice(1, 3)).toEqual(['ran', 'ran']);
      expect(attempts[3]).toBeInstanceOf(IsolationError);
      expect(await world()).toEqual(before);
    } finally {
      await named.end();
    }
  });

  it('a verdict for shadow is not reused for shadow-lt1, nor the reverse', async () => {
    const sql = (tenantDb: string) => `SELECT COUNT(*) AS n FROM \`${tenantDb}\`.orders`;
    const shadowDb = `${database}_shadow`;
    const lt1Db = `${database}_shadow_lt1`;
    expect(await withTenant('shadow', () => currentPool.query(sql(shadowDb)).then(() => 'ran'))).toBe('ran');
    await expect(withTenant('shadow-lt1', () => currentPool.query(sql(shadowDb)))).rejects.toBeInstanceOf(IsolationError);
    expect(await withTenant('shadow-lt1', () => currentPool.query(sql(lt1Db)).then(() => 'ran'))).toBe('ran');
    await expect(withTenant('shadow', () => currentPool.query(sql(lt1Db)))).rejects.toBeInstanceOf(IsolationError);
  });

  it('connection character sets that split quotes differently, and custom query formats, are refused', async () => {
    const isolated = enforcement === 'account' ? { isolatedConfig: account.isolatedConfig } : { enforcement: 'guard-only' as const };
    const gbk = createTenantPool({ ...MYSQL, database, charset: 'GBK_CHINESE_CI' }, isolated);
    const formatted = createTenantPool(
      { ...MYSQL, database, queryFormat: (sql: string) => sql.replace('notes', `${database}.stock`) },
      isolated,
    );
    try {
      const before = await world();
      await expect(withTenant('shadow', () => gbk.query('SELECT 1'))).rejects.toThrow(/gbk/);
      await expect(withTenant('shadow', () => formatted.query('DELETE FROM notes'))).rejects.toThrow(/queryFormat/);
      expect(await world()).toEqual(before);
    } finally {
      await gbk.end();
      await formatted.end();
    }
  });
});

describe.each([
  ['LATIN1_SWEDISH_CI', 0xff],
  ['ASCII_GENERAL_CI', 0x7f],
] as const)('a %s connection, which writes a character it cannot hold as another one', (charset, highest) => {
  // mysql2 writes latin1 and ascii with Node's single-byte encoders, which keep
  // a character's low byte: U+0127 leaves as ' (0x27), U+015F as _, U+012E as .
  const as = (delimiter: string) => String.fromCharCode(0x100 + delimiter.charCodeAt(0));
  const modes = [
    ['the shadow account', () => ({ isolatedConfig: account.isolatedConfig })],
    ['the guard alone', () => ({ enforcement: 'guard-only' as const })],
  ] as const;

  it.each(modes)('refuses every character it cannot hold, with %s; production and its locks untouched', async (_mode, options) => {
    const pool = createTenantPool({ ...MYSQL, database, charset, connectionLimit: 2 }, options());
    const lock = `dye-lock-${tag}`;
    try {
      const before = await world();
      const hidden = database.replaceAll('_', as('_'));
      const attempts = [
        `UPDATE ${hidden}${as('.')}stock SET available = 0`,
        `SELECT 'a${as("'")}, (SELECT COUNT(*) FROM ${database}.customers) AS leak, ${as("'")}a'`,
        `SELECT GET${as('_')}LOCK('${lock}', 0)`,
        ...[...'\'"`\\;._#-/*()@'].flatMap((delimiter) => [
          `SELECT 'x${as(delimiter)}'`,
          `SELECT 1 ${as(delimiter)}`,
          `SELECT 'x${String.fromCharCode(0x7f00 + delimiter.charCodeAt(0))}'`,
        ]),
      ];
      for (const sql of attempts) {
        const error = await withTenant('shadow', () => pool.query(sql)).catch((e: unknown) => e);
        expect(error, sql).toBeInstanceOf(IsolationError);
        expect((error as Error).message).toContain('would reach the server as another one');
      }
      const [[free]] = (await admin.query('SELECT IS_FREE_LOCK(?) AS free', [lock])) as unknown as [[{ free: number }]];
      expect(free.free).toBe(1);
      expect(await world()).toEqual(before);
    } finally {
      await pool.end();
    }
  });

  it('text it can hold works as usual', async () => {
    const pool = createTenantPool({ ...MYSQL, database, charset }, { isolatedConfig: account.isolatedConfig });
    const text = highest === 0xff ? 'café crème' : 'plain ascii';
    try {
      await withTenant('shadow', () => pool.query('INSERT INTO notes VALUES (?)', [text]));
      expect(await shadowNotes(database)).toContain(text);
      if (highest === 0x7f) {
        await expect(withTenant('shadow', () => pool.query('INSERT INTO notes VALUES (?)', ['café']))).rejects.toBeInstanceOf(
          IsolationError,
        );
      }
    } finally {
      await pool.end();
    }
  });
});
