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
