/**
 * A point query through a bare mysql2 pool vs the tenant pool, in baseline and
 * in shadow (the shadow account, the guard on), in one run against
 * 127.0.0.1:3306; and what the guard costs per statement kind.
 *
 *   npm run bench -- mysql2
 */
import { randomBytes } from 'node:crypto';
import { setLogger, withTenant } from '@dye/core';
import { createSqlGuard, createTenantPool, DEFAULT_DIALECT, grantShadowAccess, syncShadowSchema } from '@dye/mysql2';
import mysql from 'mysql2/promise';
import { compare, compareThroughput, printResults, printThroughput } from './harness.js';

setLogger({ warn: () => {} });
const server = {
  host: process.env.DYE_BENCH_MYSQL_HOST ?? '127.0.0.1',
  port: Number(process.env.DYE_BENCH_MYSQL_PORT ?? 3306),
  user: 'root',
  password: '',
};

async function throughput() {
  const suffix = randomBytes(4).toString('hex');
  const database = `dye_bench_${suffix}`;
  const shadowUser = `dye_bench_sh_${suffix}`;
  const shadowPassword = randomBytes(12).toString('hex');
  const admin = await mysql.createConnection(server);
  await admin.query(`CREATE DATABASE \`${database}\``);
  await admin.query(`CREATE TABLE \`${database}\`.stock (sku VARCHAR(32) PRIMARY KEY, available INT NOT NULL)`);
  await admin.query(`INSERT INTO \`${database}\`.stock VALUES ('apple', 10), ('pear', 5)`);
  await syncShadowSchema({ connection: admin, database, apply: true, copyTables: ['stock'] });
  await grantShadowAccess(admin, { database, user: shadowUser, password: shadowPassword, apply: true });
  const bare = mysql.createPool({ ...server, database, connectionLimit: 8 });
  // The same bare pool as the shadow account on the shadow database: what shadow costs without Dye.
  const bareShadow = mysql.createPool({
    ...server,
    user: shadowUser,
    password: shadowPassword,
    database: `${database}_shadow`,
    connectionLimit: 8,
  });
  const tenant = createTenantPool(
    { ...server, database, connectionLimit: 8 },
    { isolatedConfig: { user: shadowUser, password: shadowPassword } },
  );
  const sql = 'SELECT available FROM stock WHERE sku = ?';
  try {
    await withTenant('shadow', () => tenant.execute(sql, ['apple'])); // the first-use check, outside the timing
    const rounds = { rounds: 8, durationMs: 1500 };
    const executed = await compareThroughput(
      'mysql2',
      [
        { name: 'bare mysql2 pool', run: () => bare.execute(sql, ['apple']) },
        { name: 'tenant pool, baseline', run: () => tenant.execute(sql, ['apple']) },
        { name: 'tenant pool, shadow (shadow account, guard on)', run: () => withTenant('shadow', () => tenant.execute(sql, ['apple'])) },
        { name: 'bare mysql2 pool as the shadow account (reference)', run: () => bareShadow.execute(sql, ['apple']) },
        { name: 'bare mysql2 pool again (noise control)', run: () => bare.execute(sql, ['apple']) },
      ],
      rounds,
    );
    printThroughput('Point query with execute() (queries/s, 16 in flight)', executed);
    // query() formats values into the text: every call is new text for the guard (no verdict cache hit).
    const queried = await compareThroughput(
      'mysql2',
      [
        { name: 'bare mysql2 pool', run: () => bare.query(sql, ['apple']) },
        { name: 'tenant pool, baseline', run: () => tenant.query(sql, ['apple']) },
        {
          name: 'tenant pool, shadow (guard reads each formatted text)',
          run: () => withTenant('shadow', () => tenant.query(sql, [randomSku()])),
        },
        { name: 'bare mysql2 pool again (noise control)', run: () => bare.query(sql, ['apple']) },
      ],
      rounds,
    );
    printThroughput('Point query with query() and a value formatted in (queries/s, 16 in flight)', queried);
    return [...executed, ...queried];
  } finally {
    await bare.end();
    await bareShadow.end();
    await tenant.end();
    await admin.query(`DROP USER '${shadowUser}'@'%'`);
    await admin.query(`DROP DATABASE \`${database}\``);
    await admin.query(`DROP DATABASE \`${database}_shadow\``);
    await admin.end();
  }
}

function randomSku(): string {
  return `sku-${Math.floor(Math.random() * 1e9)}`;
}

/**
 * The guard alone on a verdict-cache miss, per statement kind (what an
 * isolated pool pays for a text it has not seen: query() with values formatted
 * in), next to what mysql2 spends formatting the same statement.
 */
async function guardCost() {
  const guard = createSqlGuard({
    productionDatabase: 'shop',
    isolatedDatabase: 'shop_shadow',
    otherDatabases: ['shop', 'shop_shadow', 'mysql', 'information_schema', 'performance_schema', 'sys'],
    serverConfines: true,
  });
  const rows = Array.from({ length: 100 }, (_, i) => [i, `sku-${i}`, `note with 'quotes' and \\ backslashes ${i}`]);
  const kinds: Array<[string, string, unknown[]]> = [
    ['point SELECT', 'SELECT available FROM stock WHERE sku = ?', ['apple']],
    [
      'SELECT with a join',
      'SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.sku = ? AND o.quantity > ?',
      ['apple', 2],
    ],
    ['INSERT of one row', 'INSERT INTO orders (customer_id, sku, quantity) VALUES (?, ?, ?)', [1, 'apple', 2]],
    ['UPDATE', 'UPDATE stock SET available = available - ? WHERE sku = ? AND available >= ?', [1, 'apple', 1]],
    ['BEGIN / COMMIT', 'COMMIT', []],
    ['SET session variable', 'SET time_zone = ?', ['+00:00']],
    ['CREATE TEMPORARY TABLE', 'CREATE TEMPORARY TABLE t (id INT PRIMARY KEY, note VARCHAR(64)) ENGINE=InnoDB', []],
    ['INSERT of 100 rows (~7 KB)', 'INSERT INTO notes (id, sku, note) VALUES ?', [rows]],
  ];
  const results = await compare(
    'mysql2-guard',
    kinds.map(([name, sql, values]) => {
      return {
        name,
        bare: () => mysql.format(sql, values as never),
        dye: () => guard(mysql.format(sql, values as never), DEFAULT_DIALECT),
      };
    }),
    { batch: 100 },
  );
  printResults('The SQL guard per statement on a cache miss (mysql2.format vs format + guard, ns/op)', results);
  return results;
}

export async function run() {
  return [...(await throughput()), ...(await guardCost())];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
  await run();
}
