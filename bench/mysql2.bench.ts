/**
 * A point query through a bare mysql2 pool vs the tenant pool, in baseline and
 * in shadow (SQL guard cache warm), in one run against 127.0.0.1:3306.
 *
 *   npm run bench -- mysql2
 */
import { randomBytes } from 'node:crypto';
import { setLogger, withTenant } from '@dye/core';
import { createTenantPool, syncShadowSchema } from '@dye/mysql2';
import mysql from 'mysql2/promise';
import { compareThroughput, printThroughput } from './harness.js';

setLogger({ warn: () => {} });
const server = {
  host: process.env.DYE_BENCH_MYSQL_HOST ?? '127.0.0.1',
  port: Number(process.env.DYE_BENCH_MYSQL_PORT ?? 3306),
  user: 'root',
  password: '',
};

export async function run() {
  const database = `dye_bench_${randomBytes(4).toString('hex')}`;
  const admin = await mysql.createConnection(server);
  await admin.query(`CREATE DATABASE \`${database}\``);
  await admin.query(`CREATE TABLE \`${database}\`.stock (sku VARCHAR(32) PRIMARY KEY, available INT NOT NULL)`);
  await admin.query(`INSERT INTO \`${database}\`.stock VALUES ('apple', 10), ('pear', 5)`);
  await syncShadowSchema({ connection: admin, database, apply: true, copyTables: ['stock'] });
  const bare = mysql.createPool({ ...server, database, connectionLimit: 8 });
  const tenant = createTenantPool({ ...server, database, connectionLimit: 8 });
  const sql = 'SELECT available FROM stock WHERE sku = ?';
  try {
    const results = await compareThroughput('mysql2', [
      { name: 'bare mysql2 pool', run: () => bare.execute(sql, ['apple']) },
      { name: 'tenant pool, baseline', run: () => tenant.execute(sql, ['apple']) },
      { name: 'tenant pool, shadow (guard cache warm)', run: () => withTenant('shadow', () => tenant.execute(sql, ['apple'])) },
      { name: 'bare mysql2 pool again (noise control)', run: () => bare.execute(sql, ['apple']) },
    ]);
    printThroughput('Point query (queries/s, 16 in flight)', results);
    return results;
  } finally {
    await bare.end();
    await tenant.end();
    await admin.query(`DROP DATABASE \`${database}\``);
    await admin.query(`DROP DATABASE \`${database}_shadow\``);
    await admin.end();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
  await run();
}
