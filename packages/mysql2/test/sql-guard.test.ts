import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkIsolatedSql } from '../src/index.js';

const options = {
  productionDatabase: 'shop',
  isolatedDatabase: 'shop_shadow',
  otherDatabases: ['shop', 'shop_shadow', 'analytics', 'mysql', 'information_schema'],
};
const verdict = (sql: string) => checkIsolatedSql(sql, options).ok;

describe('SQL guard for isolated tenants', () => {
  it.each([
    'SELECT * FROM shop.orders',
    'SELECT * FROM `shop`.`orders`',
    'select * from SHOP.Orders',
    'SELECT * FROM `SHOP`.orders',
    'SELECT * FROM shop . orders',
    'SELECT o.id FROM orders o JOIN shop.customers c ON c.id = o.customer_id',
    'SELECT * FROM analytics.events',
    'UPDATE mysql.user SET x = 1',
    'INSERT INTO orders SELECT * FROM shop.orders',
    'SELECT 1; DELETE FROM shop.orders',
    'SELECT 1; USE shop',
    'USE shop_shadow',
    '  use `anything`',
    'SHOW TABLES FROM shop',
    'DROP DATABASE shop',
    'DROP DATABASE IF EXISTS analytics',
    'CREATE DATABASE other',
    'SELECT * FROM "shop"."orders"',
    'SELECT /*!50000 shop.orders.id, */ 1 FROM orders',
    'SELECT /*M!100000 * FROM shop.orders -- */ 1',
  ])('refuses %s', (sql) => {
    expect(verdict(sql)).toBe(false);
  });

  it.each([
    'SELECT * FROM orders',
    'SELECT * FROM shop_shadow.orders',
    'SELECT * FROM `shop_shadow`.`orders`',
    "SELECT 'shop.orders' AS note FROM orders",
    "INSERT INTO notes (text) VALUES ('see shop.orders; USE shop')",
    "INSERT INTO notes (text) VALUES ('it''s shop.orders')",
    "INSERT INTO notes (text) VALUES ('back\\'slash shop.orders')",
    'SELECT 1 -- shop.orders in a comment',
    'SELECT 1 # shop.orders in a comment',
    'SELECT /* shop.orders in a comment */ 1',
    'SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id',
    'SELECT orders.id FROM orders',
    'SELECT * FROM information_schema.tables',
    'SELECT "shop.orders" FROM orders',
    'CREATE DATABASE IF NOT EXISTS shop_shadow',
    'SELECT shopkeeper FROM staff',
  ])('allows %s', (sql) => {
    expect(verdict(sql)).toBe(true);
  });

  it('never throws on arbitrary input, and refuses any text that spells the production schema as a word', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (sql) => {
        const result = checkIsolatedSql(sql, options);
        expect(typeof result.ok).toBe('boolean');
      }),
      { numRuns: 10_000 },
    );
    fc.assert(
      fc.property(
        fc.constantFrom('', 'SELECT 1;', "SELECT 'x';", 'SELECT /* c */ 1;'),
        fc.constantFrom('shop', 'SHOP', '`shop`', '`Shop`'),
        (before, name) => {
          expect(checkIsolatedSql(`${before} SELECT * FROM ${name}.orders`, options).ok).toBe(false);
        },
      ),
    );
  });
});
