import { setLogger } from '@dye/core';
import { checkShadowSchema, syncShadowSchema } from '@dye/mysql2';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminConnection, createProductionDatabase, createShadowAccount, productionState, type ShadowAccount } from './support.js';

let admin: mysql.Connection;
let database: string;
let shadow: string;

beforeAll(async () => {
  setLogger({ warn: () => {} });
  admin = await adminConnection();
  database = await createProductionDatabase(admin, 'dye_schema');
  shadow = `${database}_shadow`;
});

afterAll(async () => {
  await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await admin.query(`DROP DATABASE IF EXISTS \`${shadow}\``);
  await admin.end();
});

const q = (sql: string) => admin.query(sql.replaceAll('{db}', `\`${database}\``).replaceAll('{shadow}', `\`${shadow}\``));

describe('syncShadowSchema', () => {
  it('reports a missing shadow database without creating it unless asked', async () => {
    const report = await checkShadowSchema({ connection: admin, database });
    expect(report).toMatchObject({ shadowDatabase: shadow, shadowDatabaseExists: false, inSync: false });
    expect([...report.missingTables].sort()).toEqual(['customers', 'orders', 'stock']);
    expect(report.missingViews).toEqual(['big_orders']);
    const dryRun = await syncShadowSchema({ connection: admin, database });
    expect(dryRun.applied).toEqual([]);
    expect((await checkShadowSchema({ connection: admin, database })).shadowDatabaseExists).toBe(false);
  });

  it('creates the database, tables (with keys and foreign keys) and views, copies reference data, and a second run changes nothing', async () => {
    const production = await productionState(admin, database);
    const first = await syncShadowSchema({ connection: admin, database, apply: true, copyTables: ['stock'] });
    expect(first.inSync).toBe(true);
    expect(first.applied[0]).toMatch(/^CREATE DATABASE/);
    expect(first.copied).toEqual([{ table: 'stock', rows: 2 }]);
    const [views] = (await q('SELECT * FROM {shadow}.big_orders')) as unknown as [unknown[]];
    expect(views).toEqual([]); // the view reads shadow orders, not production ones
    const [[stock]] = (await q('SELECT COUNT(*) AS n FROM {shadow}.stock')) as unknown as [[{ n: number }]];
    expect(stock.n).toBe(2);
    const [[orders]] = (await q('SELECT COUNT(*) AS n FROM {shadow}.orders')) as unknown as [[{ n: number }]];
    expect(orders.n).toBe(0);

    const [[checksumBefore]] = (await q('CHECKSUM TABLE {shadow}.stock')) as unknown as [[{ Checksum: number }]];
    const second = await syncShadowSchema({ connection: admin, database, apply: true, copyTables: ['stock'] });
    expect(second.applied).toEqual([]);
    expect(second.drift).toEqual([]);
    const [[checksumAfter]] = (await q('CHECKSUM TABLE {shadow}.stock')) as unknown as [[{ Checksum: number }]];
    expect(checksumAfter.Checksum).toBe(checksumBefore.Checksum);
    expect(await productionState(admin, database)).toEqual(production);
  });

  it('detects each kind of drift as a structured diff', async () => {
    // A migration ran on production only.
    await q('ALTER TABLE {db}.orders ADD COLUMN note VARCHAR(100) NULL, ADD KEY by_tenant (tenant)');
    await q('ALTER TABLE {db}.customers MODIFY name VARCHAR(128) NOT NULL');
    await q('ALTER TABLE {db}.stock MODIFY available INT NOT NULL DEFAULT 0');
    await q("ALTER TABLE {db}.orders MODIFY tenant VARCHAR(32) NOT NULL DEFAULT 'baseline'");
    // And the shadow schema was changed by hand.
    await q('ALTER TABLE {shadow}.customers ADD COLUMN legacy INT NULL');
    await q('ALTER TABLE {shadow}.stock ENGINE=MyISAM');
    await q('ALTER TABLE {shadow}.stock CONVERT TO CHARACTER SET latin1');
    await q('ALTER TABLE {shadow}.orders DROP KEY by_sku, ADD KEY by_sku (sku, quantity)');
    await q('CREATE TABLE {shadow}.leftover (id INT PRIMARY KEY)');

    const report = await checkShadowSchema({ connection: admin, database });
    const kinds = report.drift.map((drift) => `${drift.table}.${drift.name ?? ''}:${drift.kind}`).sort();
    expect(kinds).toEqual(
      [
        'customers.legacy:column-extra',
        'customers.name:column-type',
        'orders.by_sku:index-changed',
        'orders.by_tenant:index-missing',
        'orders.note:column-missing',
        'orders.tenant:column-default',
        'orders.tenant:column-nullability',
        'stock.:charset',
        'stock.:engine',
        'stock.available:column-default',
        'stock.sku:column-type',
      ].sort(),
    );
    expect(report.extraTables).toEqual(['leftover']);
    expect(report.inSync).toBe(false);
    const missing = report.drift.find((drift) => drift.kind === 'column-missing');
    expect(missing).toEqual({
      table: 'orders',
      kind: 'column-missing',
      name: 'note',
      production: 'varchar(100) COLLATE utf8mb4_general_ci',
      shadow: null,
      additive: true,
    });
  });

  it('applies additive changes, leaves the rest unresolved, and recreates only when asked', async () => {
    const additive = await syncShadowSchema({ connection: admin, database, apply: true });
    expect(additive.applied.some((sql) => /ADD `note`/.test(sql))).toBe(true);
    expect(additive.applied.some((sql) => /ADD KEY `by_tenant`/.test(sql))).toBe(true);
    expect(additive.drift.some((drift) => drift.additive)).toBe(false);
    expect(additive.unresolved.length).toBeGreaterThan(0);
    expect(additive.inSync).toBe(false);

    const recreated = await syncShadowSchema({ connection: admin, database, apply: true, recreate: true, copyTables: ['stock'] });
    expect(recreated.drift).toEqual([]);
    expect(recreated.unresolved).toEqual([]);
    expect(recreated.inSync).toBe(true);
    expect(recreated.extraTables).toEqual(['leftover']); // never dropped
    const again = await syncShadowSchema({ connection: admin, database, apply: true, recreate: true });
    expect(again.applied).toEqual([]);
  });
});

describe('views, triggers and routines', () => {
  let base: string;
  let other: string;
  let account: ShadowAccount;
  let definer: string;
  beforeAll(async () => {
    base = await createProductionDatabase(admin, 'dye_objects');
    account = await createShadowAccount(admin, base);
    definer = `'${account.user}'@'%'`;
    other = `${base}_analytics`;
    const b = (sql: string) => admin.query(sql.replaceAll('{db}', `\`${base}\``).replaceAll('{other}', `\`${other}\``));
    await b('CREATE TABLE {db}.audit (sku VARCHAR(32), note VARCHAR(64))');
    // Unqualified names, a string naming production, a function the trigger calls.
    await b(`CREATE FUNCTION {db}.doubled(x INT) RETURNS INT DETERMINISTIC RETURN x * 2`);
    await b(
      `CREATE TRIGGER {db}.stock_audit AFTER UPDATE ON {db}.stock FOR EACH ROW INSERT INTO {db}.audit VALUES (NEW.sku, CONCAT('${base}.stock ', doubled(NEW.available)))`,
    );
    await b('CREATE PROCEDURE {db}.restock(IN amount INT) UPDATE stock SET available = available + amount');
  });
  afterAll(async () => {
    await account.drop();
    await admin.query(`DROP DATABASE IF EXISTS \`${base}\``);
    await admin.query(`DROP DATABASE IF EXISTS \`${base}_shadow\``);
    await admin.query(`DROP DATABASE IF EXISTS \`${other}\``);
    await admin.query(`DROP DATABASE IF EXISTS \`${other}_shadow\``);
  });

  it('copies them pointed at the shadow database: a shadow update fires the shadow trigger, which writes shadow rows only', async () => {
    const report = await checkShadowSchema({ connection: admin, database: base });
    expect(report.missingTriggers).toEqual(['stock_audit']);
    expect([...report.missingRoutines].sort()).toEqual(['function doubled', 'procedure restock']);
    const production = await productionState(admin, base);
    // The definer goes into CREATE TRIGGER: anything but an account is refused before any change.
    await expect(
      syncShadowSchema({
        connection: admin,
        database: base,
        apply: true,
        definer: `${definer} TRIGGER x BEFORE INSERT ON t FOR EACH ROW SET @a = 1 #`,
      }),
    ).rejects.toThrow(/not an account/);
    // Triggers run as their definer: without the shadow account named, the sync refuses and changes nothing.
    await expect(syncShadowSchema({ connection: admin, database: base, apply: true })).rejects.toThrow(/pass definer.*Nothing was changed/);
    expect((await checkShadowSchema({ connection: admin, database: base })).shadowDatabaseExists).toBe(false);
    const synced = await syncShadowSchema({ connection: admin, database: base, apply: true, copyTables: ['stock'], definer });
    expect(synced.inSync).toBe(true);
    const [[trigger]] = (await admin.query('SELECT DEFINER AS definer FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?', [
      `${base}_shadow`,
    ])) as unknown as [[{ definer: string }]];
    expect(trigger.definer).toBe(`${account.user}@%`);
    await admin.query(`UPDATE \`${base}_shadow\`.stock SET available = 4 WHERE sku = 'apple'`);
    const [audit] = (await admin.query(`SELECT sku, note FROM \`${base}_shadow\`.audit`)) as unknown as [unknown[]];
    // The string naming production stayed a string; the function called is the shadow one.
    expect(audit).toEqual([{ sku: 'apple', note: `${base}.stock 8` }]);
    const [productionAudit] = (await admin.query(`SELECT * FROM \`${base}\`.audit`)) as unknown as [unknown[]];
    expect(productionAudit).toEqual([]);
    expect(await productionState(admin, base)).toEqual(production);
    // Routines run with the caller's rights, views too.
    const [routines] = (await admin.query(
      'SELECT ROUTINE_NAME AS name, SECURITY_TYPE AS security FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? ORDER BY ROUTINE_NAME',
      [`${base}_shadow`],
    )) as unknown as [unknown[]];
    expect(routines).toEqual([
      { name: 'doubled', security: 'INVOKER' },
      { name: 'restock', security: 'INVOKER' },
    ]);
    const [[view]] = (await admin.query('SELECT SECURITY_TYPE AS security FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?', [
      `${base}_shadow`,
    ])) as unknown as [[{ security: string }]];
    expect(view.security).toBe('INVOKER');
    expect((await syncShadowSchema({ connection: admin, database: base, apply: true })).applied).toEqual([]);
  });

  it('reports definition drift of views, triggers and routines, and sync replaces them', async () => {
    await admin.query(`CREATE OR REPLACE VIEW \`${base}\`.big_orders AS SELECT id, sku FROM \`${base}\`.orders WHERE quantity > 50`);
    await admin.query(`DROP PROCEDURE \`${base}\`.restock`);
    await admin.query(
      `CREATE PROCEDURE \`${base}\`.restock(IN amount INT, IN which VARCHAR(32)) UPDATE stock SET available = available + amount WHERE sku = which`,
    );
    await admin.query(`DROP TRIGGER \`${base}_shadow\`.stock_audit`);
    await admin.query(
      `CREATE TRIGGER \`${base}_shadow\`.stock_audit AFTER UPDATE ON \`${base}_shadow\`.stock FOR EACH ROW INSERT INTO \`${base}_shadow\`.audit VALUES ('changed', '')`,
    );
    const report = await checkShadowSchema({ connection: admin, database: base });
    expect(report.drift.map((drift) => `${drift.table}:${drift.kind}`).sort()).toEqual([
      'big_orders:view-definition',
      'restock:routine-definition',
      'stock_audit:trigger-definition',
    ]);
    expect(report.inSync).toBe(false);
    const synced = await syncShadowSchema({ connection: admin, database: base, apply: true, definer });
    expect(synced.drift).toEqual([]);
    expect(synced.inSync).toBe(true);
  });

  it('refuses, changing nothing, a view or routine naming another database; rewriteForeignDatabases points it at that database’s twin', async () => {
    await admin.query(`CREATE DATABASE \`${other}\``);
    await admin.query(`CREATE TABLE \`${other}\`.events (sku VARCHAR(32))`);
    await admin.query(`CREATE VIEW \`${base}\`.event_skus AS SELECT sku FROM \`${other}\`.events`);
    await admin.query(`CREATE PROCEDURE \`${base}\`.log_event(IN s VARCHAR(32)) INSERT INTO \`${other}\`.events VALUES (s)`);
    const report = await checkShadowSchema({ connection: admin, database: base });
    expect(
      report.foreignReferences.map((reference) => `${reference.kind} ${reference.name} → ${reference.databases.join(',')}`).sort(),
    ).toEqual([`procedure log_event → ${other}`, `view event_skus → ${other}`]);
    expect(report.inSync).toBe(false);
    const [[objectsBefore]] = (await admin.query(
      'SELECT (SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?) + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?) AS n',
      [`${base}_shadow`, `${base}_shadow`],
    )) as unknown as [[{ n: number }]];
    await expect(syncShadowSchema({ connection: admin, database: base, apply: true })).rejects.toThrow(
      /names `.*_analytics`.*Nothing was changed/,
    );
    const [[objectsAfter]] = (await admin.query(
      'SELECT (SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?) + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?) AS n',
      [`${base}_shadow`, `${base}_shadow`],
    )) as unknown as [[{ n: number }]];
    expect(objectsAfter.n).toBe(objectsBefore.n);

    await admin.query(`CREATE DATABASE \`${other}_shadow\``);
    await admin.query(`CREATE TABLE \`${other}_shadow\`.events (sku VARCHAR(32))`);
    const rewritten = await syncShadowSchema({ connection: admin, database: base, apply: true, rewriteForeignDatabases: true });
    expect(rewritten.foreignReferences).toEqual([]);
    expect(rewritten.inSync).toBe(true);
    await admin.query(`CALL \`${base}_shadow\`.log_event('shadow-event')`);
    const [events] = (await admin.query(`SELECT sku FROM \`${other}\`.events`)) as unknown as [unknown[]];
    const [shadowEvents] = (await admin.query(`SELECT sku FROM \`${base}_shadow\`.event_skus`)) as unknown as [unknown[]];
    expect(events).toEqual([]);
    expect(shadowEvents).toEqual([{ sku: 'shadow-event' }]);
  });

  it('reads each trigger and routine with the sql_mode it was made in: a production name in "double quotes" (ANSI_QUOTES) or after a backslash (NO_BACKSLASH_ESCAPES) is retargeted', async () => {
    const db = await createProductionDatabase(admin, 'dye_modes_obj');
    const shadowAccount = await createShadowAccount(admin, db);
    try {
      await admin.query(`CREATE TABLE \`${db}\`.audit (what VARCHAR(64))`);
      await admin.query(`CREATE TABLE \`${db}\`.secrets (v VARCHAR(64))`);
      await admin.query(`INSERT INTO \`${db}\`.secrets VALUES ('top')`);
      await admin.query("SET SESSION sql_mode = 'ANSI_QUOTES'");
      await admin.query(
        `CREATE TRIGGER "${db}".on_stock AFTER UPDATE ON "${db}".stock FOR EACH ROW INSERT INTO "${db}"."audit" (what) VALUES (CONCAT('update ', NEW.sku))`,
      );
      await admin.query("SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'");
      await admin.query(
        `CREATE FUNCTION \`${db}\`.bump() RETURNS INT BEGIN DECLARE d VARCHAR(10) DEFAULT 'C:\\'; UPDATE ${db}.secrets SET v = 'changed'; RETURN 1; END`,
      );
      await admin.query('SET SESSION sql_mode = DEFAULT');
      const production = await productionState(admin, db);
      const synced = await syncShadowSchema({
        connection: admin,
        database: db,
        apply: true,
        copyTables: ['stock'],
        definer: `'${shadowAccount.user}'@'%'`,
      });
      expect(synced.foreignReferences).toEqual([]);
      expect(synced.inSync).toBe(true);
      await admin.query(`UPDATE \`${db}_shadow\`.stock SET available = 1`);
      await admin.query(`SELECT \`${db}_shadow\`.bump()`);
      const [[audit]] = (await admin.query(`SELECT COUNT(*) AS n FROM \`${db}\`.audit`)) as unknown as [[{ n: number }]];
      const [[secret]] = (await admin.query(`SELECT v FROM \`${db}\`.secrets`)) as unknown as [[{ v: string }]];
      const [[shadowAudit]] = (await admin.query(`SELECT COUNT(*) AS n FROM \`${db}_shadow\`.audit`)) as unknown as [[{ n: number }]];
      expect([audit.n, secret.v, shadowAudit.n]).toEqual([0, 'top', 2]);
      expect(await productionState(admin, db)).toEqual(production);
    } finally {
      await admin.query('SET SESSION sql_mode = DEFAULT');
      await shadowAccount.drop();
      await admin.query(`DROP DATABASE IF EXISTS \`${db}\``);
      await admin.query(`DROP DATABASE IF EXISTS \`${db}_shadow\``);
    }
  });

  it('refuses a table whose foreign key names another database; points a sequence default at the shadow sequence', async () => {
    const db = await createProductionDatabase(admin, 'dye_tables');
    const common = `${db}_common`;
    try {
      await admin.query(`CREATE DATABASE \`${common}\``);
      await admin.query(`CREATE TABLE \`${common}\`.accounts (id INT PRIMARY KEY)`);
      await admin.query(`CREATE SEQUENCE \`${db}\`.invoice_numbers START WITH 1000`);
      await admin.query(`CREATE TABLE \`${db}\`.invoices (id INT DEFAULT nextval(\`${db}\`.invoice_numbers), note VARCHAR(10))`);
      await admin.query(
        `CREATE TABLE \`${db}\`.payments (id INT PRIMARY KEY, account_id INT, FOREIGN KEY (account_id) REFERENCES \`${common}\`.accounts (id))`,
      );
      const report = await checkShadowSchema({ connection: admin, database: db });
      expect(report.foreignReferences.map((reference) => `${reference.kind} ${reference.name} → ${reference.databases.join(',')}`)).toEqual(
        [`table payments → ${common}`],
      );
      await expect(syncShadowSchema({ connection: admin, database: db, apply: true })).rejects.toThrow(/payments.*Nothing was changed/);

      await admin.query(`DROP TABLE \`${db}\`.payments`);
      const synced = await syncShadowSchema({ connection: admin, database: db, apply: true });
      expect({ drift: synced.drift, missing: synced.missingTables, foreign: synced.foreignReferences, inSync: synced.inSync }).toEqual({
        drift: [],
        missing: [],
        foreign: [],
        inSync: true,
      });
      await admin.query(`INSERT INTO \`${db}_shadow\`.invoices (note) VALUES ('shadow'), ('shadow')`);
      const [[production]] = (await admin.query(`SELECT NEXTVAL(\`${db}\`.invoice_numbers) AS n`)) as unknown as [[{ n: number }]];
      const [shadowIds] = (await admin.query(`SELECT id FROM \`${db}_shadow\`.invoices ORDER BY id`)) as unknown as [Array<{ id: number }>];
      expect(production.n).toBe(1000);
      expect(shadowIds.map((row) => row.id)).toEqual([1000, 1001]);
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS \`${db}\``);
      await admin.query(`DROP DATABASE IF EXISTS \`${db}_shadow\``);
      await admin.query(`DROP DATABASE IF EXISTS \`${common}\``);
    }
  });

  it('refuses to copy views, triggers and routines that take server-wide named locks (or call anything the guard refuses)', async () => {
    const db = await createProductionDatabase(admin, 'dye_locks');
    try {
      await admin.query(`CREATE FUNCTION \`${db}\`.lock_stock(t INT) RETURNS INT RETURN GET_LOCK('stock', t)`);
      await admin.query(`CREATE VIEW \`${db}\`.batch_lock AS SELECT GET_LOCK('nightly-batch', 0) AS got`);
      await admin.query(
        `CREATE TRIGGER \`${db}\`.orders_bi BEFORE INSERT ON \`${db}\`.orders FOR EACH ROW SET @got = get_lock(CONCAT('order-', NEW.sku), 5)`,
      );
      await admin.query(`CREATE FUNCTION \`${db}\`.read_file() RETURNS TEXT RETURN LOAD_FILE('/etc/hostname')`);
      const report = await checkShadowSchema({ connection: admin, database: db });
      expect(
        report.foreignReferences.map((reference) => `${reference.kind} ${reference.name}: ${reference.reason.split(':')[0]}`).sort(),
      ).toEqual([
        'function lock_stock: it calls GET_LOCK()',
        'function read_file: it calls LOAD_FILE()',
        'trigger orders_bi: it calls GET_LOCK()',
        'view batch_lock: it calls GET_LOCK()',
      ]);
      await expect(syncShadowSchema({ connection: admin, database: db, apply: true, definer: 'root@localhost' })).rejects.toThrow(
        /GET_LOCK.*Nothing was changed/,
      );
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS \`${db}\``);
      await admin.query(`DROP DATABASE IF EXISTS \`${db}_shadow\``);
    }
  });

  it('reports shadow objects that run with another account’s rights, and replaces production’s own when they drifted to them', async () => {
    const db = await createProductionDatabase(admin, 'dye_elevated');
    const shadowAccount = await createShadowAccount(admin, db);
    const definer = `'${shadowAccount.user}'@'%'`;
    try {
      await syncShadowSchema({ connection: admin, database: db, apply: true, definer });
      // A migration run as root in the shadow database.
      await admin.query(
        `CREATE OR REPLACE DEFINER=root@localhost SQL SECURITY DEFINER VIEW \`${db}_shadow\`.big_orders AS SELECT id, sku FROM \`${db}_shadow\`.orders WHERE quantity > 5`,
      );
      await admin.query(`CREATE DEFINER=root@localhost VIEW \`${db}_shadow\`.report AS SELECT * FROM \`${db}\`.orders`);
      await admin.query(
        `CREATE DEFINER=root@localhost TRIGGER \`${db}_shadow\`.wipe AFTER INSERT ON \`${db}_shadow\`.orders FOR EACH ROW DELETE FROM \`${db}\`.orders`,
      );
      const report = await checkShadowSchema({ connection: admin, database: db, definer });
      expect(report.elevatedObjects.map((object) => `${object.kind} ${object.name} ${object.definer}`).sort()).toEqual([
        'trigger wipe root@localhost',
        'view report root@localhost',
      ]);
      expect(report.drift.map((drift) => `${drift.table}:${drift.kind}`)).toEqual(['big_orders:view-definition']);
      expect(report.inSync).toBe(false);
      const synced = await syncShadowSchema({ connection: admin, database: db, apply: true, definer });
      expect(synced.drift).toEqual([]);
      expect(synced.elevatedObjects).toHaveLength(2); // never dropped: reported until someone does
    } finally {
      await shadowAccount.drop();
      await admin.query(`DROP DATABASE IF EXISTS \`${db}\``);
      await admin.query(`DROP DATABASE IF EXISTS \`${db}_shadow\``);
    }
  });
});
