import { randomBytes } from 'node:crypto';
import { IsolationError, setLogger, withTenant } from '@dye/core';
import { createTenantPool, escapeGrantDatabase, grantShadowAccess, inspectShadowAccount, isolatedDatabasePredicate } from '@dye/mysql2';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MYSQL, uniqueName } from '../../../test/support/services.js';
import {
  adminConnection,
  createShadowAccount,
  createShadowedDatabase,
  dropDatabases,
  productionState,
  type ShadowAccount,
} from './support.js';

let admin: mysql.Connection;
let database: string;
let account: ShadowAccount;

beforeAll(async () => {
  setLogger({ warn: () => {} });
  admin = await adminConnection();
  database = await createShadowedDatabase(admin, 'dye_enforce');
  await admin.query(`CREATE TABLE \`${database}_shadow\`.notes (text VARCHAR(255))`);
  account = await createShadowAccount(admin, database);
});

afterAll(async () => {
  await account.drop();
  await dropDatabases(admin, database);
  await admin.end();
});

describe('defence in depth: the guard switched off, the shadow account alone', () => {
  // A plain mysql2 pool as the shadow account: no Dye between it and the server.
  let raw: mysql.Pool;
  beforeAll(() => {
    raw = mysql.createPool({
      ...MYSQL,
      ...account.isolatedConfig,
      database: `${database}_shadow`,
      multipleStatements: true,
      connectionLimit: 2,
    });
  });
  afterAll(async () => {
    await raw.end();
    // What the attacks could make in the shadow database runs with their account's rights: not left for the next tests.
    await admin.query(`DROP TRIGGER IF EXISTS \`${database}_shadow\`.tr`);
  });

  const half = (db: string) => [db.slice(0, 5), db.slice(5)] as const;
  const attacks: Array<[string, (db: string) => string]> = [
    ['EXECUTE IMMEDIATE of a production DELETE', (db) => `EXECUTE IMMEDIATE 'DELETE FROM ${db}.stock'`],
    [
      'PREPARE/EXECUTE of CONCAT',
      (db) => `SET @q = CONCAT('DELETE FROM ${half(db)[0]}', '${half(db)[1]}.stock'); PREPARE s FROM @q; EXECUTE s`,
    ],
    ["EXECUTE IMMEDIATE 'USE <production>'", (db) => `EXECUTE IMMEDIATE 'USE ${db}'`],
    ['a procedure deleting production', (db) => `CREATE PROCEDURE p() BEGIN DELETE FROM ${db}.stock; END`],
    // A trigger it creates runs with its own rights: made, then fired, it cannot delete production.
    [
      'a trigger writing production, fired',
      (db) => `CREATE TRIGGER tr BEFORE INSERT ON notes FOR EACH ROW DELETE FROM ${db}.stock; INSERT INTO notes VALUES ('fire')`,
    ],
    ['a view over production', (db) => `CREATE VIEW v AS SELECT * FROM ${db}.stock`],
    ['an event deleting production', (db) => `CREATE EVENT e ON SCHEDULE AT CURRENT_TIMESTAMP DO DELETE FROM ${db}.stock`],
    ['a compound statement', (db) => `BEGIN NOT ATOMIC DELETE FROM ${db}.stock; END`],
    ['DELETE from production', (db) => `DELETE FROM ${db}.stock`],
    ['UPDATE of production through a join', (db) => `UPDATE stock s JOIN ${db}.stock p ON p.sku = s.sku SET p.available = 0`],
    ['reading production', (db) => `SELECT * FROM ${db}.customers`],
    ['RENAME TABLE into production', (db) => `RENAME TABLE notes TO ${db}.notes`],
    ['CREATE OR REPLACE DATABASE <production>', (db) => `CREATE OR REPLACE DATABASE ${db}`],
    ['DROP DATABASE <production>', (db) => `DROP DATABASE ${db}`],
    ['SET GLOBAL', () => 'SET GLOBAL read_only = 1'],
    ['FLUSH', () => 'FLUSH TABLES WITH READ LOCK'],
    ['LOAD DATA INFILE (a server file)', () => "LOAD DATA INFILE '/etc/hostname' INTO TABLE notes"],
    ['INTO OUTFILE', () => `SELECT 1 INTO OUTFILE '/tmp/dye-enforce-${randomBytes(4).toString('hex')}'`],
    ['CREATE USER', () => `CREATE USER 'dye_evil_${randomBytes(4).toString('hex')}'@'%'`],
    ['GRANT', () => "GRANT ALL ON *.* TO 'root'@'127.0.0.1'"],
    ['SET PASSWORD for another account', () => "SET PASSWORD FOR 'root'@'127.0.0.1' = PASSWORD('x')"],
    ['INSTALL SONAME', () => "INSTALL SONAME 'ha_connect'"],
    ['SHUTDOWN', () => 'SHUTDOWN'],
    ['KILL of another session', () => 'KILL 1'],
    ['mysql.user', () => 'SELECT * FROM mysql.user'],
  ];

  it.each(attacks)('%s: the server refuses it, and production is unchanged', async (_name, attack) => {
    const before = await productionState(admin, database);
    const outcome = await raw.query(attack(database)).then(
      () => 'ran',
      (error: { code?: string }) => error.code ?? 'error',
    );
    expect(outcome).not.toBe('ran');
    expect(await productionState(admin, database)).toEqual(before);
  });

  it('LOAD_FILE returns nothing without the FILE privilege', async () => {
    const [[row]] = (await raw.query("SELECT LOAD_FILE('/etc/hostname') AS content")) as unknown as [[{ content: unknown }]];
    expect(row.content).toBeNull();
  });
});

describe('the account check at first use', () => {
  it('passes for an account made by grantShadowAccess, and reads its grants', async () => {
    const connection = await mysql.createConnection({ ...MYSQL, ...account.isolatedConfig });
    try {
      const report = await inspectShadowAccount(connection, isolatedDatabasePredicate(database, 'shadow'));
      expect(report.problems).toEqual([]);
      expect(report.account).toBe(`${account.user}@%`);
      expect(report.grants.some((line) => line.includes(escapeGrantDatabase(`${database}_shadow`)))).toBe(true);
    } finally {
      await connection.end();
    }
  });

  it('refuses isolated traffic on the production account, saying how to fix it; production unchanged', async () => {
    const pool = createTenantPool({ ...MYSQL, database });
    const before = await productionState(admin, database);
    try {
      const error = await withTenant('shadow', () => pool.query("INSERT INTO orders (customer_id, sku) VALUES (1, 'x')")).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(IsolationError);
      expect((error as Error).message).toMatch(/server-wide privileges/);
      expect((error as Error).message).toContain('dye shadow grant');
      await expect(pool.verifyIsolation('shadow')).rejects.toBeInstanceOf(IsolationError);
    } finally {
      await pool.end();
    }
    expect(await productionState(admin, database)).toEqual(before);
  });

  it('refuses an over-privileged account in every way it can reach production; grantShadowAccess fixes it; a second run changes nothing', async () => {
    const user = uniqueName('dye_over');
    const password = randomBytes(8).toString('hex');
    const role = uniqueName('dye_role');
    const shadowDb = `${database}_shadow`;
    const accountName = `'${user}'@'%'`;
    await admin.query(`CREATE USER ${accountName} IDENTIFIED BY '${password}'`);
    // Each grant alone reaches beyond the shadow database.
    const exact = (name: string) => `\`${escapeGrantDatabase(name)}\``;
    const overreach = [
      `GRANT SELECT, INSERT ON ${exact(shadowDb)}.* TO ${accountName}`,
      `GRANT DELETE ON ${exact(database)}.* TO ${accountName}`,
      `GRANT SELECT (sku) ON \`${database}\`.stock TO ${accountName}`,
      `GRANT FILE, PROCESS ON *.* TO ${accountName}`,
      // Unescaped, \`_\` is a wildcard: this pattern matches more than the shadow database.
      `GRANT UPDATE ON \`${shadowDb}\`.* TO ${accountName}`,
      `GRANT UPDATE ON \`${escapeGrantDatabase(database)}%\`.* TO ${accountName}`,
      `GRANT SELECT ON ${exact(shadowDb)}.* TO ${accountName} WITH GRANT OPTION`,
      `GRANT PROXY ON 'root'@'127.0.0.1' TO ${accountName}`,
      `CREATE ROLE ${role}`,
      `GRANT ALTER ON ${exact(database)}.* TO ${role}`,
      `GRANT ${role} TO ${accountName}`,
    ];
    for (const statement of overreach) await admin.query(statement);
    const before = await productionState(admin, database);
    try {
      const connect = () => createTenantPool({ ...MYSQL, database }, { isolatedConfig: { user, password } });
      const refusedPool = connect();
      const error = await withTenant('shadow', () => refusedPool.query('SELECT 1')).catch((e: unknown) => e);
      await refusedPool.end();
      expect(error).toBeInstanceOf(IsolationError);
      const message = (error as Error).message;
      for (const expected of [
        `DELETE on \`${database}\``,
        `ALTER on \`${database}\``,
        `\`${shadowDb}\` is a pattern`,
        `\`${escapeGrantDatabase(database)}%\` is a pattern`,
        'SELECT (`sku`)',
        'server-wide privileges PROCESS, FILE',
        'is a pattern',
        'WITH GRANT OPTION',
        'PROXY',
      ]) {
        expect(message).toContain(expected);
      }
      expect(await productionState(admin, database)).toEqual(before);

      const fix = await grantShadowAccess(admin, { database, user, apply: true });
      expect(fix.statements.join('\n')).toContain(`REVOKE \`${role}\``);
      const again = await grantShadowAccess(admin, { database, user, password });
      expect(again.statements).toEqual([]);

      const fixedPool = connect();
      try {
        await withTenant('shadow', () =>
          fixedPool.query("INSERT INTO orders (customer_id, sku, tenant) VALUES (1, 'after-fix', 'shadow')"),
        );
        await fixedPool.verifyIsolation('shadow');
      } finally {
        await fixedPool.end();
      }
      const [[row]] = (await admin.query(`SELECT COUNT(*) AS n FROM \`${shadowDb}\`.orders WHERE sku = 'after-fix'`)) as unknown as [
        [{ n: number }],
      ];
      expect(row.n).toBe(1);
      expect(await productionState(admin, database)).toEqual(before);
    } finally {
      await admin.query(`DROP USER IF EXISTS ${accountName}`);
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
    }
  });

  it('refuses while the shadow database holds an object that runs with another account’s rights (a migration run there as root)', async () => {
    const before = await productionState(admin, database);
    await admin.query(`CREATE DEFINER=root@localhost VIEW \`${database}_shadow\`.order_report AS SELECT * FROM \`${database}\`.orders`);
    try {
      const pool = createTenantPool({ ...MYSQL, database }, { isolatedConfig: account.isolatedConfig });
      try {
        const error = await withTenant('shadow', () => pool.query('SELECT * FROM order_report')).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(IsolationError);
        expect((error as Error).message).toContain(`view order_report in ${database}_shadow runs with the rights of root@localhost`);
      } finally {
        await pool.end();
      }
    } finally {
      await admin.query(`DROP VIEW \`${database}_shadow\`.order_report`);
    }
    expect(await productionState(admin, database)).toEqual(before);
  });

  it('refuses while a sibling isolated database it can reach holds such an object (a view there reading production)', async () => {
    const sibling = `${database}_analytics_shadow`;
    const user = uniqueName('dye_sib');
    const password = randomBytes(8).toString('hex');
    await admin.query(`CREATE DATABASE \`${sibling}\``);
    await grantShadowAccess(admin, { database: [database, `${database}_analytics`], user, password, apply: true });
    await admin.query(`CREATE DEFINER=root@localhost VIEW \`${sibling}\`.summary AS SELECT * FROM \`${database}\`.customers`);
    try {
      const pool = createTenantPool({ ...MYSQL, database }, { isolatedConfig: { user, password } });
      try {
        const error = await withTenant('shadow', () => pool.query(`SELECT * FROM \`${sibling}\`.summary`)).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(IsolationError);
        expect((error as Error).message).toContain(`view summary in ${sibling} runs with the rights of root@localhost`);
      } finally {
        await pool.end();
      }
    } finally {
      await admin.query(`DROP DATABASE \`${sibling}\``);
      await admin.query(`DROP USER IF EXISTS '${user}'@'%'`);
    }
  });

  it('a shadow statement holding a metadata lock the check waits for fails the check (closed), instead of stalling it', async () => {
    const user = uniqueName('dye_mdl');
    const password = randomBytes(8).toString('hex');
    await grantShadowAccess(admin, { database, user, password, apply: true });
    const pool = createTenantPool(
      { ...MYSQL, database },
      { isolatedConfig: { user, password }, accountRecheckInterval: 200, accountCheckTimeout: 2_000 },
    );
    try {
      await withTenant('shadow', () => pool.query('SELECT 1'));
      // Holds a metadata lock on its new table for 8 s: the check's information_schema reads wait for it.
      const holding = withTenant('shadow', () => pool.query('CREATE TABLE mdl_hold SELECT SLEEP(8) AS s')).catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 300));
      const deadline = Date.now() + 15_000;
      let outcome: unknown = 'ran';
      while (outcome === 'ran' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        outcome = await withTenant('shadow', () => pool.query('SELECT 1')).then(
          () => 'ran',
          (error: unknown) => error,
        );
      }
      expect(outcome).toBeInstanceOf(IsolationError);
      expect((outcome as Error).message).toContain('did not finish within 2000 ms');
      await holding;
    } finally {
      await pool.end();
      await admin.query(`DROP TABLE IF EXISTS \`${database}_shadow\`.mdl_hold`);
      await admin.query(`DROP USER IF EXISTS '${user}'@'%'`);
    }
  }, 40_000);

  it('the account holds at most maxUserConnections connections: the server refuses more', async () => {
    const user = uniqueName('dye_conn');
    const password = randomBytes(8).toString('hex');
    await grantShadowAccess(admin, { database, user, password, maxUserConnections: 2, apply: true });
    expect((await grantShadowAccess(admin, { database, user, password, maxUserConnections: 2 })).statements).toEqual([]);
    const connections: mysql.Connection[] = [];
    try {
      for (let i = 0; i < 2; i++) connections.push(await mysql.createConnection({ ...MYSQL, user, password }));
      await expect(mysql.createConnection({ ...MYSQL, user, password })).rejects.toThrow(/max_user_connections/);
    } finally {
      for (const connection of connections) await connection.end();
      await admin.query(`DROP USER IF EXISTS '${user}'@'%'`);
    }
  });

  it('checks the account again while running: a grant added later refuses isolated traffic from then on', async () => {
    const user = uniqueName('dye_later');
    const password = randomBytes(8).toString('hex');
    await grantShadowAccess(admin, { database, user, password, apply: true });
    const pool = createTenantPool({ ...MYSQL, database }, { isolatedConfig: { user, password }, accountRecheckInterval: 200 });
    try {
      await withTenant('shadow', () => pool.query('SELECT 1'));
      // A connection taken before the grant: statements on it are checked again too.
      const held = await withTenant('shadow', () => pool.getConnection());
      await admin.query(`GRANT SELECT ON \`${escapeGrantDatabase(database)}\`.* TO '${user}'@'%'`);
      const deadline = Date.now() + 5_000;
      let outcome: unknown = 'ran';
      while (outcome === 'ran' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        outcome = await withTenant('shadow', () => pool.query('SELECT 1')).then(
          () => 'ran',
          (error: unknown) => error,
        );
      }
      expect(outcome).toBeInstanceOf(IsolationError);
      expect((outcome as Error).message).toContain(`SELECT on \`${database}\``);
      await expect(withTenant('shadow', () => held.query(`SELECT * FROM \`${database}\`.customers`))).rejects.toBeInstanceOf(
        IsolationError,
      );
      await expect(withTenant('shadow', () => held.query('SELECT 1'))).rejects.toBeInstanceOf(IsolationError);
      held.release();
    } finally {
      await pool.end();
      await admin.query(`DROP USER IF EXISTS '${user}'@'%'`);
    }
  });

  it('grantShadowAccess: a dry run changes nothing; apply creates; re-running changes nothing; a new password is set', async () => {
    const user = uniqueName('dye_grant');
    const accountName = `'${user}'@'%'`;
    try {
      const dry = await grantShadowAccess(admin, { database, tenants: ['shadow', 'shadow-lt1'], user, password: 'first-pw' });
      expect(dry.applied).toBe(false);
      expect(dry.statements[0]).toBe(`CREATE USER ${accountName} IDENTIFIED BY '***' WITH MAX_USER_CONNECTIONS 50`);
      expect(dry.statements.slice(1)).toEqual([
        expect.stringContaining(`ON \`${database.replaceAll('_', '\\_')}\\_shadow\`.* TO ${accountName}`),
        expect.stringContaining(`ON \`${database.replaceAll('_', '\\_')}\\_shadow\\_lt1\`.* TO ${accountName}`),
      ]);
      const [users] = (await admin.query('SELECT User FROM mysql.user WHERE User = ?', [user])) as unknown as [unknown[]];
      expect(users).toEqual([]);

      const applied = await grantShadowAccess(admin, {
        database,
        tenants: ['shadow', 'shadow-lt1'],
        user,
        password: 'first-pw',
        apply: true,
      });
      expect(applied.statements).toEqual(dry.statements);
      expect(
        (await grantShadowAccess(admin, { database, tenants: ['shadow', 'shadow-lt1'], user, password: 'first-pw' })).statements,
      ).toEqual([]);

      const changed = await grantShadowAccess(admin, {
        database,
        tenants: ['shadow', 'shadow-lt1'],
        user,
        password: 'second-pw',
        apply: true,
      });
      expect(changed.statements).toEqual([`ALTER USER ${accountName} IDENTIFIED BY '***'`]);
      const login = await mysql.createConnection({ ...MYSQL, user, password: 'second-pw' });
      await login.end();
      // Narrowing to one tenant revokes the other's database.
      const narrowed = await grantShadowAccess(admin, { database, tenants: ['shadow'], user, apply: true });
      expect(narrowed.statements).toEqual([expect.stringMatching(/^REVOKE .* ON `.*\\_shadow\\_lt1`\.\* FROM /)]);
    } finally {
      await admin.query(`DROP USER IF EXISTS ${accountName}`);
    }
  });
});
