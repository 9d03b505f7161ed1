import { setLogger } from '@dye/core';
import { checkShadowSchema, syncShadowSchema } from '@dye/mysql2';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminConnection, createProductionDatabase, productionState } from './support.js';

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
