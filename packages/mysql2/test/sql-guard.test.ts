import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkIsolatedSql, DEFAULT_DIALECT, type SqlDialect } from '../src/index.js';

const options = {
  productionDatabase: 'shop',
  isolatedDatabase: 'shop_shadow',
  otherDatabases: ['shop', 'shop_shadow', 'shop_shadow_lt1', 'analytics', 'mysql', 'information_schema', 'performance_schema'],
};
// The normal setup: the shadow account is confined by the server.
const judge = (sql: string, dialect: SqlDialect = DEFAULT_DIALECT, serverConfines = true) =>
  checkIsolatedSql(sql, { ...options, dialect, serverConfines });
const reason = (sql: string, dialect?: SqlDialect) => {
  const verdict = judge(sql, dialect);
  return verdict.ok ? 'allowed' : verdict.reason;
};

describe('what isolated tenants may run (the allowlist)', () => {
  it.each([
    // queries and writes
    'SELECT * FROM orders',
    'select o.id, c.name from orders o join customers c on c.id = o.customer_id where o.id = 1 for update',
    '(SELECT 1) UNION (SELECT 2)',
    'WITH recent AS (SELECT * FROM orders) SELECT * FROM recent',
    "INSERT INTO orders (sku) VALUES ('apple') ON DUPLICATE KEY UPDATE quantity = quantity + 1",
    'INSERT INTO archive SELECT * FROM orders WHERE id < 10',
    "REPLACE INTO stock VALUES ('apple', 3)",
    'UPDATE stock SET available = available - 1 WHERE sku = ? AND available > 0',
    'DELETE FROM orders WHERE id = 1',
    'SELECT * FROM shop_shadow.orders',
    'SELECT * FROM `shop_shadow`.`orders`',
    'SELECT * FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()',
    'SELECT 1 INTO @x',
    // strings and comments hold data, not names
    "SELECT 'shop.orders' AS note FROM orders",
    "INSERT INTO notes (text) VALUES ('see shop.orders; USE shop')",
    "INSERT INTO notes (text) VALUES ('it''s shop.orders')",
    "INSERT INTO notes (text) VALUES ('back\\'slash shop.orders')",
    'SELECT "shop.orders" FROM orders',
    'SELECT 1 -- shop.orders in a comment',
    'SELECT 1 # shop.orders in a comment',
    'SELECT /* shop.orders in a comment */ 1',
    "SELECT X'73686f70', B'0101', N'shop'",
    'SELECT shopkeeper FROM staff',
    // transactions
    'BEGIN',
    'begin work',
    'START TRANSACTION',
    'START TRANSACTION READ ONLY',
    'START TRANSACTION WITH CONSISTENT SNAPSHOT, READ WRITE',
    'COMMIT',
    'COMMIT WORK AND NO CHAIN',
    'ROLLBACK',
    'ROLLBACK TO SAVEPOINT sp1',
    'ROLLBACK WORK TO sp1',
    'SAVEPOINT sp1',
    'RELEASE SAVEPOINT sp1',
    'SET TRANSACTION ISOLATION LEVEL READ COMMITTED',
    'SET SESSION TRANSACTION READ ONLY',
    'LOCK TABLES orders WRITE',
    'UNLOCK TABLES',
    // table DDL inside the shadow database
    'CREATE TABLE t (id INT PRIMARY KEY, engine VARCHAR(10)) ENGINE=InnoDB',
    'CREATE TEMPORARY TABLE tmp (id INT)',
    "CREATE TABLE names (name VARCHAR(20) CHECK (name LIKE 'a%'))",
    'CREATE TABLE IF NOT EXISTS t3 AS SELECT * FROM orders',
    'CREATE UNIQUE INDEX by_sku ON stock (sku)',
    'ALTER TABLE orders ADD COLUMN note VARCHAR(20), ENGINE = Aria',
    'ALTER TABLE cars ADD engine VARCHAR(20)',
    'DROP TABLE IF EXISTS tmp',
    'DROP TEMPORARY TABLE tmp',
    'DROP INDEX by_sku ON stock',
    'TRUNCATE TABLE orders',
    'TRUNCATE orders',
    'RENAME TABLE a TO b',
    // reading the schema
    'SHOW TABLES',
    'SHOW FULL COLUMNS FROM orders',
    'SHOW INDEX FROM orders',
    'SHOW CREATE TABLE orders',
    'SHOW TABLE STATUS',
    'SHOW SESSION VARIABLES LIKE "sql_mode"',
    'SHOW WARNINGS',
    'DESCRIBE orders',
    'DESC orders sku',
    'EXPLAIN SELECT * FROM orders',
    'EXPLAIN FORMAT=JSON UPDATE orders SET quantity = 1',
    // session settings
    "SET time_zone = '+00:00'",
    'SET SESSION autocommit = 0, @@session.innodb_lock_wait_timeout = 5',
    'SET @@innodb_lock_wait_timeout = 5',
    'SET @a = 1, @b := (SELECT COUNT(*) FROM orders)',
    "SET @`x` = 'shop'",
    'SET LOCAL foreign_key_checks = 0',
    // several statements
    'SELECT 1; SELECT 2;',
  ])('allows %s', (sql) => {
    expect(reason(sql)).toBe('allowed');
  });
});

describe('what isolated tenants may not run', () => {
  it.each([
    // production and other databases
    ['SELECT * FROM shop.orders', 'production database'],
    ['SELECT * FROM `SHOP`.`orders`', 'production database'],
    ['SELECT * FROM shop . orders', 'production database'],
    ['SELECT * FROM shop/**/.orders', 'production database'],
    ['INSERT INTO orders SELECT * FROM shop.orders', 'production database'],
    ['SELECT 1; DELETE FROM shop.orders', 'production database'],
    ['SELECT * FROM analytics.events', 'another database'],
    ['UPDATE mysql.user SET x = 1', 'another database'],
    ['SELECT * FROM shop_shadow_lt1.orders', 'another database'],
    ['SHOW TABLES FROM analytics', 'another database'],
    ['DESCRIBE analytics.events', 'another database'],
    ['CREATE TABLE t LIKE analytics.events', 'LIKE'],
    ['RENAME TABLE orders TO analytics.orders', 'another database'],
    ['SELECT * FROM performance_schema.threads', 'another database'],
    // statement kinds off the list
    ['USE shop_shadow', 'USE'],
    ["PREPARE s FROM 'DELETE FROM t'", 'dynamic SQL'],
    ['EXECUTE s', 'dynamic SQL'],
    ["EXECUTE IMMEDIATE 'DELETE FROM t'", 'dynamic SQL'],
    ['DEALLOCATE PREPARE s', 'dynamic SQL'],
    ['CALL cleanup()', 'procedure'],
    ["XA COMMIT 'xid'", 'XA'],
    ['XA RECOVER', 'XA'],
    ['KILL 42', 'KILL'],
    ['KILL QUERY 42', 'KILL'],
    ['FLUSH TABLES', 'FLUSH'],
    ['FLUSH TABLES WITH READ LOCK', 'FLUSH'],
    ["LOAD DATA INFILE '/tmp/x' INTO TABLE t", 'LOAD'],
    ["LOAD DATA LOCAL INFILE '/tmp/x' INTO TABLE t", 'LOAD'],
    ["LOAD XML INFILE '/tmp/x' INTO TABLE t", 'LOAD'],
    ["CREATE USER x IDENTIFIED BY 'y'", 'account'],
    ['GRANT ALL ON *.* TO x', 'account'],
    ["SET PASSWORD = PASSWORD('x')", 'PASSWORD'],
    ["INSTALL SONAME 'ha_connect'", 'plugins'],
    ["INSTALL PLUGIN x SONAME 'y'", 'plugins'],
    ['UNINSTALL SONAME "ha_connect"', 'plugins'],
    ['SHUTDOWN', 'SHUTDOWN'],
    ['RESET MASTER', 'RESET'],
    ["CHANGE MASTER TO MASTER_HOST='x'", 'CHANGE'],
    ['PURGE BINARY LOGS BEFORE NOW()', 'PURGE'],
    ["BINLOG 'AAAA'", 'BINLOG'],
    ['DO GET_LOCK("x", 1)', 'DO'],
    ['DO 1', 'DO'],
    ['HANDLER orders OPEN', 'HANDLER'],
    ['BEGIN NOT ATOMIC DELETE FROM t; END', 'compound'],
    ['CHECKSUM TABLE orders', 'not on the list'],
    ['OPTIMIZE TABLE orders', 'not on the list'],
    ['ANALYZE SELECT * FROM orders', 'not on the list'],
    // database, view, routine, trigger, event DDL
    ['CREATE DATABASE other', 'database DDL'],
    ['CREATE OR REPLACE DATABASE shop_shadow', 'database DDL'],
    ['DROP DATABASE shop_shadow', 'database DDL'],
    ['ALTER DATABASE shop_shadow CHARACTER SET latin1', 'database DDL'],
    ['CREATE VIEW v AS SELECT * FROM orders', 'only table DDL'],
    ['CREATE DEFINER=root@localhost VIEW v AS SELECT 1', 'only table DDL'],
    ['CREATE PROCEDURE p() BEGIN DELETE FROM t; END', 'only table DDL'],
    ['CREATE FUNCTION f() RETURNS INT RETURN 1', 'only table DDL'],
    ['CREATE TRIGGER tr BEFORE INSERT ON orders FOR EACH ROW SET NEW.sku = 1', 'only table DDL'],
    ['CREATE EVENT e ON SCHEDULE EVERY 1 SECOND DO DELETE FROM t', 'only table DDL'],
    ['CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (HOST "x")', 'another server'],
    ['ALTER USER root IDENTIFIED BY "x"', 'account'],
    ['RENAME USER a TO b', 'account'],
    // engines and table options that leave the database
    ["CREATE TABLE f (id INT) ENGINE=FEDERATED CONNECTION='mysql://root@127.0.0.1/shop/stock'", 'ENGINE FEDERATED'],
    ["CREATE TABLE f (id INT) CONNECTION='mysql://root@127.0.0.1/shop/stock'", 'CONNECTION'],
    ['CREATE TABLE f (id INT) ENGINE=CONNECT', 'ENGINE CONNECT'],
    ['CREATE TABLE f (id INT) ENGINE SPIDER', 'ENGINE SPIDER'],
    ['CREATE TABLE f (id INT) ENGINE=MRG_MyISAM UNION=(a,b)', 'ENGINE MRG_MYISAM'],
    ['ALTER TABLE orders ENGINE=FEDERATED', 'ENGINE FEDERATED'],
    ["CREATE TABLE f (id INT) DATA DIRECTORY='/tmp'", 'DIRECTORY'],
    ["CREATE TABLE f (id INT) INDEX DIRECTORY = '/tmp'", 'DIRECTORY'],
    // files, locks, replication
    ["SELECT * FROM orders INTO OUTFILE '/tmp/x'", 'OUTFILE'],
    ["SELECT 1 INTO DUMPFILE '/tmp/x'", 'DUMPFILE'],
    ["SELECT LOAD_FILE('/etc/passwd')", 'LOAD_FILE'],
    ["SELECT `load_file`('/etc/passwd')", 'LOAD_FILE'],
    ["INSERT INTO notes SELECT load_file ('/etc/passwd')", 'LOAD_FILE'],
    ["SELECT GET_LOCK('orders', 10)", 'named locks'],
    ["SELECT RELEASE_LOCK('orders')", 'named locks'],
    ["SELECT MASTER_POS_WAIT('log', 4)", 'replication'],
    ['SELECT * FROM orders PROCEDURE ANALYSE()', 'PROCEDURE'],
    // session settings off the list
    ['SET GLOBAL max_connections = 1', 'SET GLOBAL'],
    ['SET @@global.sql_mode = ""', 'SET GLOBAL'],
    ['SET PERSIST max_connections = 1', 'SET PERSIST'],
    ['SET @@persist_only.x = 1', 'SET PERSIST_ONLY'],
    ["SET sql_mode = 'NO_BACKSLASH_ESCAPES'", 'sql_mode'],
    ["SET SESSION sql_mode = 'ANSI_QUOTES'", 'sql_mode'],
    ["SET @@SESSION.sql_mode = ''", 'sql_mode'],
    ['SET NAMES gbk', 'NAMES'],
    ['SET CHARACTER SET gbk', 'CHARACTER SET'],
    ['SET character_set_client = gbk', 'character sets'],
    ['SET default_storage_engine = FEDERATED', 'storage engine'],
    ['SET ROLE admin', 'ROLE'],
    ['SET DEFAULT ROLE admin FOR x', 'ROLE'],
    ['SET STATEMENT max_statement_time=1 FOR DELETE FROM t', 'STATEMENT'],
    ['SET sql_log_bin = 0', 'logs'],
    ['SET pseudo_thread_id = 5', 'not on the list'],
    ['SET max_statement_time = 0', 'DBA'],
    ['SET SESSION tmp_table_size = 4294967296', 'DBA'],
    ['SET max_heap_table_size = 4294967296, tmp_table_size = 4294967296', 'DBA'],
    ['SET @@sort_buffer_size = 1073741824', 'DBA'],
    ['SET max_recursive_iterations = 4294967295', 'DBA'],
    ['SET sql_big_selects = 1', 'DBA'],
    ['SET wait_timeout = 31536000', 'DBA'],
    ['CREATE TABLE hog (id INT) ENGINE=MEMORY', 'ENGINE MEMORY'],
    ['CREATE TABLE m1 LIKE information_schema.ENGINES', 'LIKE'],
    ['CREATE TABLE IF NOT EXISTS m2 LIKE sessions', 'LIKE'],
    ['CREATE TABLE m3 (LIKE sessions)', 'LIKE'],
    ['SELECT BENCHMARK(100000000, MD5(1))', 'CPU'],
    ['SET optimizer_search_depth = 62', 'DBA'],
    ["SET optimizer_switch = 'index_merge=off'", 'DBA'],
    ['CREATE TEMPORARY TABLE hog (id INT) ENGINE = HEAP', 'ENGINE HEAP'],
    ['SET time_zone = 0, sql_mode = ""', 'sql_mode'],
    ['SET GLOBAL TRANSACTION ISOLATION LEVEL SERIALIZABLE', 'SET GLOBAL'],
    // SHOW and EXPLAIN of other sessions or the server
    ['SHOW ENGINE INNODB STATUS', 'not on the list'],
    ['SHOW MASTER STATUS', 'not on the list'],
    ['SHOW BINLOG EVENTS', 'not on the list'],
    ['SHOW CREATE PROCEDURE p', 'tables and views'],
    ['EXPLAIN FOR CONNECTION 42', 'another session'],
    ['SHOW EXPLAIN FOR 42', 'not on the list'],
  ])('refuses %s (%s)', (sql, expected) => {
    expect(reason(sql)).toContain(expected);
  });
});

describe('with the guard alone (no account the server confines)', () => {
  it.each([
    'SELECT * FROM information_schema.TABLES',
    "SELECT INFO FROM information_schema.PROCESSLIST WHERE INFO LIKE '%card%'",
    'SELECT * FROM `INFORMATION_SCHEMA`.columns',
    'SHOW FULL PROCESSLIST',
    'SHOW PROCESSLIST',
    "SHOW GRANTS FOR 'app'@'%'",
    'SHOW DATABASES',
    "SHOW OPEN TABLES LIKE '%payroll%'",
  ])('refuses server metadata: %s', (sql) => {
    expect(judge(sql, DEFAULT_DIALECT, true).ok).toBe(true);
    const verdict = judge(sql, DEFAULT_DIALECT, false);
    expect(verdict.ok).toBe(false);
    expect((verdict as { reason: string }).reason).toContain('guard-only');
  });
});

describe('reading SQL as the server does', () => {
  const mariadb = DEFAULT_DIALECT;
  const mysql8: SqlDialect = { flavor: 'mysql', version: 80036, ansiQuotes: false, noBackslashEscapes: false };
  const noBackslash: SqlDialect = { ...mariadb, noBackslashEscapes: true };
  const ansi: SqlDialect = { ...mariadb, ansiQuotes: true };

  it('reads a backslash as an escape only when the session does', () => {
    // With escapes, the string ends at the last quote: one harmless statement.
    const sql = "SELECT 'a\\'; DELETE FROM shop.stock; -- '";
    expect(reason(sql, mariadb)).toBe('allowed');
    // Under NO_BACKSLASH_ESCAPES the string ends after the backslash: DELETE runs.
    expect(reason(sql, noBackslash)).toContain('production database');
  });

  it('reads double quotes as names under ANSI_QUOTES, as strings otherwise', () => {
    expect(reason('SELECT * FROM "shop"."orders"', mariadb)).toBe('allowed');
    expect(reason('SELECT * FROM "shop"."orders"', ansi)).toContain('production database');
    // A double-quoted "string" hiding a statement is a name under ANSI_QUOTES, so the rest is code.
    expect(reason('SELECT "x\\"; DELETE FROM shop.stock; -- "', ansi)).toContain('production database');
  });

  it('treats -- as a comment only before ASCII whitespace or a control character', () => {
    expect(reason('SELECT 1 --\u00a0 , (SELECT 1 FROM shop.orders)', mariadb)).toContain('production database');
    // Non-ASCII characters are name characters to the server, as to the guard.
    expect(reason('SELECT 1 --\u2028 shop.orders', mariadb)).toContain('production database');
    expect(reason('SELECT 1 --\tshop.orders', mariadb)).toBe('allowed');
    expect(reason('SELECT 1 --', mariadb)).toBe('allowed');
    expect(reason('SELECT 1 --shop.orders', mariadb)).toContain('production database');
  });

  it('judges versioned comments against the server version and flavor', () => {
    const hidden = "SELECT 1 /*!99999 ' */; DELETE FROM shop.stock; -- '";
    // Skipped by the server: the quote inside is not code, so DELETE runs.
    expect(reason(hidden, mariadb)).toContain('production database');
    expect(reason(hidden, mysql8)).toContain('production database');
    // Executed: its content is code.
    expect(reason('SELECT /*!50000 shop.orders.id, */ 1 FROM orders', mariadb)).toContain('production database');
    expect(reason('SELECT /*M!100000 * FROM shop.orders -- */ 1', mariadb)).toContain('comment');
    // MariaDB skips MySQL 5.7+ comments; MySQL runs them; MySQL reads /*M! as a plain comment.
    expect(reason('SELECT 1 /*!80000 , (SELECT 1 FROM shop.orders) */', mariadb)).toBe('allowed');
    expect(reason('SELECT 1 /*!80000 , (SELECT 1 FROM shop.orders) */', mysql8)).toContain('production database');
    expect(reason('SELECT 1 /*M!100000 , (SELECT 1 FROM shop.orders) */', mysql8)).toBe('allowed');
    expect(reason('SELECT 1 /*M!100000 , (SELECT 1 FROM shop.orders) */', mariadb)).toContain('production database');
    expect(reason('SELECT 1 /*!100000 , 2 */', mysql8)).toContain('six-digit');
  });

  it('refuses what the two could read differently', () => {
    for (const sql of [
      "SELECT 'unterminated",
      'SELECT `unterminated',
      'SELECT 1 /* unterminated',
      'SELECT 1 /*!50000 unterminated',
      'SELECT 1 /* outer /* inner */ */',
      'SELECT 1 /*!50000 SELECT 2 /* inner */ */',
      'SELECT 1 /*!99999 /* nested */ DELETE FROM t */',
      'SELECT 1 /*!50000 ; DELETE FROM t */',
      'SELECT 1 /*!50000 # line comment */ */',
      "SELECT \\'",
      'SELECT \\N',
      'SELECT 1\u0000; DELETE FROM shop.stock',
      'SELECT `a\u0000b`',
      'SELECT $$ shop.x $$',
      "SELECT X'zz'",
      'SELECT 1\u007f',
    ]) {
      expect(judge(sql).ok, sql).toBe(false);
    }
  });

  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), fc.constantFrom(mariadb, mysql8, noBackslash, ansi), (sql, dialect) => {
        expect(typeof judge(sql, dialect).ok).toBe('boolean');
      }),
      { numRuns: 5_000 },
    );
  });

  it('never allows a production name as a token, wherever fragments of quotes and comments put it', () => {
    const fragment = fc.constantFrom(
      "'",
      '"',
      '`',
      '\\',
      '--',
      '-- ',
      '--\u00a0',
      '#',
      '/*',
      '*/',
      '/*!99999',
      '/*!50000',
      '/*M!100000',
      ';',
      '\n',
      ' ',
      'SELECT 1',
      'x',
    );
    fc.assert(
      fc.property(fc.array(fragment, { maxLength: 8 }), fc.constantFrom(mariadb, mysql8, noBackslash, ansi), (parts, dialect) => {
        const sql = `${parts.join('')} SELECT * FROM shop.orders`;
        // Whatever came before, the tail either is code (refused) or the text is unreadable (refused), unless
        // a quote or comment opened before it swallows it (then it is data, and allowed).
        const verdict = judge(sql, dialect);
        if (verdict.ok) expect(parts.some((part) => ["'", '"', '`', '--', '-- ', '#', '/*', '/*!99999'].includes(part))).toBe(true);
      }),
      { numRuns: 5_000 },
    );
  });
});
