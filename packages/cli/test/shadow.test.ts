import { IsolationError, setLogger, withTenant } from '@dye/core';
import { createTenantPool } from '@dye/mysql2';
import { Kafka, logLevel } from 'kafkajs';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KAFKA_BROKERS, MYSQL, uniqueName } from '../../../test/support/services.js';
import { dye } from './run-cli.js';

describe('dye shadow sync / check', () => {
  const database = uniqueName('cli_shop');
  const topic = uniqueName('cli_orders');
  const mysqlUrl = `mysql://${encodeURIComponent(MYSQL.user)}:${encodeURIComponent(MYSQL.password)}@${MYSQL.host}:${MYSQL.port}`;
  const kafka = new Kafka({ clientId: 'cli-shadow-test', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  let db: mysql.Connection;
  const both = ['--mysql', mysqlUrl, '--db', database, '--kafka', KAFKA_BROKERS.join(','), '--topic', topic];

  beforeAll(async () => {
    db = await mysql.createConnection({ ...MYSQL });
    await db.query(`CREATE DATABASE \`${database}\``);
    await db.query(`CREATE TABLE \`${database}\`.stock (sku VARCHAR(64) PRIMARY KEY, qty INT NOT NULL)`);
    await db.query(`INSERT INTO \`${database}\`.stock VALUES ('apple', 5), ('pear', 7)`);
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: 3, configEntries: [{ name: 'retention.ms', value: '3600000' }] }],
    });
  });

  afterAll(async () => {
    await db.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await db.query(`DROP DATABASE IF EXISTS \`${database}_shadow\``);
    await db.end();
    await admin.deleteTopics({ topics: [topic, `${topic}_shadow`] }).catch(() => {});
    await admin.disconnect();
  });

  it('sync without --apply is a dry run: it reports and creates nothing', async () => {
    const run = await dye(['shadow', 'sync', ...both]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`database ${database}_shadow does not exist`);
    expect(run.stdout).toContain(`topic ${topic}_shadow missing`);
    expect(run.stdout).toContain('dry run: nothing changed');
    const [rows] = await db.query('SHOW DATABASES LIKE ?', [`${database}_shadow`]);
    expect(rows).toEqual([]);
    expect(await admin.listTopics()).not.toContain(`${topic}_shadow`);
  });

  it('check exits 1 while shadow resources are missing; sync --apply creates them; check then exits 0', async () => {
    expect((await dye(['shadow', 'check', ...both])).code).toBe(1);
    const synced = await dye(['shadow', 'sync', ...both, '--apply', '--copy-table', 'stock']);
    expect(synced.code, synced.stderr).toBe(0);
    expect(synced.stdout).toContain('copied 2 rows of stock');
    expect(synced.stdout).toContain(`created ${topic}_shadow`);
    const [rows] = await db.query(`SELECT sku, qty FROM \`${database}_shadow\`.stock ORDER BY sku`);
    expect(rows).toEqual([
      { sku: 'apple', qty: 5 },
      { sku: 'pear', qty: 7 },
    ]);
    const [metadata] = (await admin.fetchTopicMetadata({ topics: [`${topic}_shadow`] })).topics;
    expect(metadata?.partitions).toHaveLength(3);
    const check = await dye(['shadow', 'check', ...both]);
    expect(check.code, check.stdout).toBe(0);
    expect(check.stdout).toContain('no drift');
  });

  it('check finds a drift the test made, names it readably, and exits 1; --json carries it too', async () => {
    await db.query(`ALTER TABLE \`${database}_shadow\`.stock MODIFY qty BIGINT NOT NULL`);
    await db.query(`ALTER TABLE \`${database}\`.stock ADD COLUMN price INT NULL`);
    await admin.createPartitions({ topicPartitions: [{ topic: `${topic}_shadow`, count: 4 }] });
    const check = await dye(['shadow', 'check', ...both]);
    expect(check.code).toBe(1);
    expect(check.stdout).toMatch(/✗ stock\.qty: column type — production int\(11\), shadow bigint\(20\)/);
    expect(check.stdout).toMatch(/✗ stock\.price: column missing/);
    expect(check.stdout).toContain(`✗ ${topic}_shadow: 4 partitions, production ${topic} has 3`);
    expect(check.stdout).toContain('drift found');
    const json = await dye(['shadow', 'check', ...both, '--json']);
    expect(json.code).toBe(1);
    const outcome = JSON.parse(json.stdout);
    expect(outcome.inSync).toBe(false);
    expect(outcome.mysql.drift.map((d: { name: string; kind: string }) => `${d.name}:${d.kind}`).sort()).toEqual([
      'price:column-missing',
      'qty:column-type',
    ]);
    expect(outcome.kafka.drift).toEqual([expect.objectContaining({ kind: 'partitions', production: 3, shadow: 4 })]);
  });

  it('check names a view that reaches another database, and sync --apply refuses it, changing nothing', async () => {
    const other = `${database}_other`;
    await db.query(`CREATE DATABASE \`${other}\``);
    await db.query(`CREATE TABLE \`${other}\`.events (sku VARCHAR(64))`);
    await db.query(`CREATE VIEW \`${database}\`.event_skus AS SELECT sku FROM \`${other}\`.events`);
    try {
      const check = await dye(['shadow', 'check', '--mysql', mysqlUrl, '--db', database]);
      expect(check.code).toBe(1);
      expect(check.stdout).toMatch(new RegExp(`✗ view event_skus cannot be copied: it names \`${other}\``));
      const sync = await dye(['shadow', 'sync', '--mysql', mysqlUrl, '--db', database, '--apply']);
      expect(sync.code).toBe(1);
      expect(sync.stderr).toContain('Nothing was changed');
      const [views] = await db.query('SHOW FULL TABLES FROM ?? WHERE Table_type = ?', [`${database}_shadow`, 'VIEW']);
      expect(views).toEqual([]);
    } finally {
      await db.query(`DROP VIEW \`${database}\`.event_skus`);
      await db.query(`DROP DATABASE \`${other}\``);
    }
  });

  it('refuses bad usage with exit 2 and one line', async () => {
    for (const [args, message] of [
      [['shadow', 'check'], /name what to sync/],
      [['shadow', 'check', '--mysql', 'postgres://x'], /must start with mysql:\/\//],
      [['shadow', 'check', '--mysql', mysqlUrl], /name the production database/],
      [['shadow', 'check', '--kafka', '127.0.0.1:9092'], /at least one --topic/],
      [['shadow', 'sync', '--mysql', mysqlUrl, '--db', database, '--copy-table', 'stock'], /needs --apply/],
      [['shadow', 'check', '--mysql', mysqlUrl, '--db', database, '--tenant', 'baseline'], /baseline/],
    ] as const) {
      const run = await dye(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(run.stderr, args.join(' ')).toMatch(message);
    }
  });
});

describe('dye shadow grant', () => {
  const database = uniqueName('cli_grant');
  const user = uniqueName('cli_sh');
  const mysqlUrl = `mysql://${encodeURIComponent(MYSQL.user)}:${encodeURIComponent(MYSQL.password)}@${MYSQL.host}:${MYSQL.port}/${database}`;
  const account = `'${user}'@'%'`;
  let db: mysql.Connection;
  const env = { DYE_SHADOW_PASSWORD: 'cli-grant-secret' };

  beforeAll(async () => {
    setLogger({ warn: () => {} });
    db = await mysql.createConnection({ ...MYSQL });
    await db.query(`CREATE DATABASE \`${database}\``);
    await db.query(`CREATE DATABASE \`${database}_shadow\``);
  });

  afterAll(async () => {
    await db.query(`DROP USER IF EXISTS ${account}`);
    await db.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await db.query(`DROP DATABASE IF EXISTS \`${database}_shadow\``);
    await db.end();
  });

  const users = async () => ((await db.query('SELECT User FROM mysql.user WHERE User = ?', [user])) as unknown as [unknown[]])[0].length;

  it('is a dry run without --apply: it prints each statement, password hidden, and creates nothing', async () => {
    const run = await dye(['shadow', 'grant', '--mysql', mysqlUrl, '--user', user], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`CREATE USER ${account} IDENTIFIED BY '***' WITH MAX_USER_CONNECTIONS 50`);
    expect(run.stdout).toContain(`ON \`${database.replaceAll('_', '\\_')}\\_shadow\`.* TO ${account}`);
    expect(run.stdout).toContain('dry run: nothing changed');
    expect(run.stdout).not.toContain(env.DYE_SHADOW_PASSWORD);
    expect(await users()).toBe(0);
  });

  it('--apply creates the account; running it again has nothing to do', async () => {
    const applied = await dye(['shadow', 'grant', '--mysql', mysqlUrl, '--user', user, '--apply'], env);
    expect(applied.code, applied.stderr).toBe(0);
    expect(await users()).toBe(1);
    const again = await dye(['shadow', 'grant', '--mysql', mysqlUrl, '--user', user, '--apply'], env);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('nothing to do');
    const login = await mysql.createConnection({ ...MYSQL, user, password: env.DYE_SHADOW_PASSWORD });
    await login.end();
  });

  it('an over-privileged account is refused at first use; grant --apply takes it back to its shadow database (--json lists the statements)', async () => {
    await db.query(`GRANT FILE ON *.* TO ${account}`);
    await db.query(`GRANT DELETE ON \`${database}\`.* TO ${account}`);
    const pool = () => createTenantPool({ ...MYSQL, database }, { isolatedConfig: { user, password: env.DYE_SHADOW_PASSWORD } });
    const refused = pool();
    try {
      const error = await withTenant('shadow', () => refused.query('SELECT 1')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(IsolationError);
      expect((error as Error).message).toContain('server-wide privileges FILE');
    } finally {
      await refused.end();
    }
    const fixed = await dye(['shadow', 'grant', '--mysql', mysqlUrl, '--user', user, '--apply', '--json'], env);
    expect(fixed.code, fixed.stderr).toBe(0);
    const result = JSON.parse(fixed.stdout);
    expect(result.statements).toEqual([`REVOKE FILE ON *.* FROM ${account}`, `REVOKE DELETE ON \`${database}\`.* FROM ${account}`]);
    const [grants] = (await db.query(`SHOW GRANTS FOR ${account}`)) as unknown as [Array<Record<string, string>>];
    expect(grants.map((row) => Object.values(row)[0]).join('\n')).not.toMatch(/FILE|ON `[^`]*`\.\* .*DELETE/);
    const accepted = pool();
    try {
      await withTenant('shadow', () => accepted.query('SELECT 1'));
    } finally {
      await accepted.end();
    }
    const again = await dye(['shadow', 'grant', '--mysql', mysqlUrl, '--user', user], env);
    expect(again.stdout).toContain('nothing to do');
  });

  it('never takes the password from the command line, and says which variable to set', async () => {
    const argv = await dye(['shadow', 'grant', '--mysql', mysqlUrl, '--user', user, '--password', 'x']);
    expect(argv.code).toBe(2);
    const missing = await dye(['shadow', 'grant', '--mysql', mysqlUrl, '--user', uniqueName('cli_new')], { DYE_SHADOW_PASSWORD: '' });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('set DYE_SHADOW_PASSWORD');
  });
});
