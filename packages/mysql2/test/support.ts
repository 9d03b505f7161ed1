import { randomBytes } from 'node:crypto';
import { grantShadowAccess, syncShadowSchema } from '@dye/mysql2';
import mysql from 'mysql2/promise';
import { MYSQL, uniqueName } from '../../../test/support/services.js';

/** A production database of the test's own with two tables and rows. */
export async function createProductionDatabase(admin: mysql.Connection, prefix: string): Promise<string> {
  const database = uniqueName(prefix);
  await admin.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
  await admin.query(`CREATE TABLE \`${database}\`.customers (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL) ENGINE=InnoDB`);
  await admin.query(
    `CREATE TABLE \`${database}\`.orders (
       id INT AUTO_INCREMENT PRIMARY KEY,
       customer_id INT NOT NULL,
       sku VARCHAR(32) NOT NULL,
       quantity INT NOT NULL DEFAULT 1,
       tenant VARCHAR(32) NULL,
       KEY by_sku (sku),
       CONSTRAINT fk_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
     ) ENGINE=InnoDB`,
  );
  await admin.query(`CREATE TABLE \`${database}\`.stock (sku VARCHAR(32) PRIMARY KEY, available INT NOT NULL) ENGINE=InnoDB`);
  await admin.query(`CREATE VIEW \`${database}\`.big_orders AS SELECT id, sku FROM \`${database}\`.orders WHERE quantity > 5`);
  await admin.query(`INSERT INTO \`${database}\`.customers VALUES (1, 'alice'), (2, 'bob')`);
  await admin.query(
    `INSERT INTO \`${database}\`.orders (customer_id, sku, quantity, tenant) VALUES (1, 'apple', 2, 'baseline'), (2, 'pear', 7, 'baseline')`,
  );
  await admin.query(`INSERT INTO \`${database}\`.stock VALUES ('apple', 10), ('pear', 5)`);
  return database;
}

/** Row counts and CHECKSUM TABLE of every production table: equal before and after means untouched. */
export async function productionState(admin: mysql.Connection, database: string): Promise<Record<string, string>> {
  const state: Record<string, string> = {};
  for (const table of ['customers', 'orders', 'stock']) {
    const [[count]] = (await admin.query(`SELECT COUNT(*) AS n FROM \`${database}\`.\`${table}\``)) as unknown as [[{ n: number }]];
    const [[checksum]] = (await admin.query(`CHECKSUM TABLE \`${database}\`.\`${table}\``)) as unknown as [[{ Checksum: number }]];
    state[table] = `${count.n} rows, checksum ${checksum.Checksum}`;
  }
  return state;
}

export function adminConnection(): Promise<mysql.Connection> {
  return mysql.createConnection({ ...MYSQL, multipleStatements: true });
}

export interface ShadowAccount {
  readonly user: string;
  readonly password: string;
  /** The pool options isolated tenants connect with. */
  readonly isolatedConfig: { user: string; password: string };
  drop(): Promise<void>;
}

/** A shadow account of the test's own, confined by grantShadowAccess to `<db>_<tenant>` for `tenants`. */
export async function createShadowAccount(
  admin: mysql.Connection,
  database: string,
  tenants: readonly string[] = ['shadow'],
): Promise<ShadowAccount> {
  const user = uniqueName('dye_sh');
  const password = randomBytes(12).toString('hex');
  await grantShadowAccess(admin, { database, tenants, user, password, apply: true });
  return {
    user,
    password,
    isolatedConfig: { user, password },
    drop: async () => {
      await admin.query(`DROP USER IF EXISTS ${mysql.escape(user)}@'%'`);
    },
  };
}

/** A production database with its `_shadow` twin synced (reference rows copied), as a test starts from. */
export async function createShadowedDatabase(
  admin: mysql.Connection,
  prefix: string,
  tenants: readonly string[] = ['shadow'],
): Promise<string> {
  const database = await createProductionDatabase(admin, prefix);
  for (const tenant of tenants)
    await syncShadowSchema({ connection: admin, database, tenant, apply: true, copyTables: ['customers', 'stock'] });
  return database;
}

/** Drops a test's production database and its isolated twins. */
export async function dropDatabases(admin: mysql.Connection, database: string, tenants: readonly string[] = ['shadow']): Promise<void> {
  await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
  for (const tenant of tenants) await admin.query(`DROP DATABASE IF EXISTS \`${database}_${tenant.replaceAll('-', '_')}\``);
}
