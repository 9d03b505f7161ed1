import { IsolationError, setLogger, withTenant } from '@dye/core';
import { createTenantPool, syncShadowSchema } from '@dye/mysql2';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OwnMariaDb } from '../../../test/support/mariadb-server.js';
import { freePort } from '../../../test/support/redis-server.js';
import { createProductionDatabase, createShadowAccount, productionState } from './support.js';

// A MariaDB of this test's own, killed and restarted while shadow queries run.
let server: OwnMariaDb;
let port: number;

beforeAll(async () => {
  setLogger({ warn: () => {} });
  port = await freePort();
  server = new OwnMariaDb(port);
  await server.start();
}, 60_000);
afterAll(() => server.destroy());

describe('server restart mid-run', () => {
  it('shadow queries fail or recover, and never reach production', async () => {
    const config = { host: '127.0.0.1', port, user: 'root', password: '' };
    const admin = await mysql.createConnection(config);
    const database = await createProductionDatabase(admin, 'dye_restart');
    await syncShadowSchema({ connection: admin, database, apply: true, copyTables: ['customers'] });
    const account = await createShadowAccount(admin, database);
    const before = await productionState(admin, database);
    await admin.end();

    const pool = createTenantPool(
      { ...config, database, connectionLimit: 2, connectTimeout: 2000 },
      { isolatedConfig: account.isolatedConfig },
    );
    const insert = (i: number) =>
      withTenant('shadow', () =>
        pool.execute('INSERT INTO orders (customer_id, sku, tenant) VALUES (1, ?, ?)', [`restart-${i}`, 'shadow']),
      ).then(
        () => 'ok',
        (error: unknown) =>
          error instanceof IsolationError ? 'refused' : `error ${(error as { code?: string }).code ?? (error as Error).message}`,
      );
    try {
      expect(await insert(0)).toBe('ok');
      const during = Promise.all(Array.from({ length: 20 }, (_, i) => insert(i + 1)));
      await server.kill();
      const outcomes = await during;
      expect(outcomes.every((outcome) => outcome === 'ok' || outcome === 'refused' || outcome.startsWith('error'))).toBe(true);
      // Down: refused as unreachable, never sent anywhere else.
      expect(await insert(100)).toBe('refused');

      await server.start();
      let recovered = 'not yet';
      for (let attempt = 0; attempt < 50 && recovered !== 'ok'; attempt++) {
        recovered = await insert(200 + attempt);
        if (recovered !== 'ok') await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(recovered).toBe('ok');
    } finally {
      await pool.end().catch(() => {});
    }
    const check = await mysql.createConnection(config);
    expect(await productionState(check, database)).toEqual(before);
    const [[shadowRows]] = (await check.query(
      `SELECT COUNT(*) AS n FROM \`${database}_shadow\`.orders WHERE sku LIKE 'restart-%'`,
    )) as unknown as [[{ n: number }]];
    expect(shadowRows.n).toBeGreaterThanOrEqual(2);
    await check.end();
  }, 60_000);
});
