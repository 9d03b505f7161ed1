import { isolatedSuffix } from '@dye/core';
import type mysql from 'mysql2/promise';
import { likeAnywhere, type MarkerSearch } from './marker-search.js';

/** Column types that can hold the marker as text. */
const TEXT_TYPES = [
  'char',
  'varchar',
  'tinytext',
  'text',
  'mediumtext',
  'longtext',
  'json',
  'binary',
  'varbinary',
  'tinyblob',
  'blob',
  'mediumblob',
  'longblob',
];

const quote = (identifier: string) => `\`${identifier.replaceAll('`', '``')}\``;

/**
 * Searches the text columns of every table of `databases` for `marker`: the
 * newest `maxRows` rows of each table (by primary key, where it has one), one
 * query per table. A database named `<db>_<tenant>` is the run's own.
 */
export async function searchMysql(
  connection: mysql.Connection,
  databases: readonly string[],
  marker: string,
  tenant: string,
  maxRows: number,
): Promise<MarkerSearch> {
  const result: MarkerSearch = { findings: [], searched: [] };
  if (databases.length === 0) return result;
  const [columns] = (await connection.query(
    // Every table that holds rows: base tables and MariaDB's system-versioned
    // ones (TABLE_TYPE 'SYSTEM VERSIONED'), whose history is searched too. Views
    // hold none of their own.
    `SELECT c.TABLE_SCHEMA AS db, c.TABLE_NAME AS tbl, c.COLUMN_NAME AS col, c.COLUMN_KEY AS colKey, t.TABLE_TYPE AS kind
       FROM information_schema.COLUMNS c JOIN information_schema.TABLES t
         ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
      WHERE c.TABLE_SCHEMA IN (?) AND t.TABLE_TYPE <> 'VIEW' AND t.TABLE_TYPE <> 'SYSTEM VIEW'
      ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION`,
    [databases],
  )) as unknown as [Array<{ db: string; tbl: string; col: string; colKey: string; kind: string }>];
  const [types] = (await connection.query(
    'SELECT TABLE_SCHEMA AS db, TABLE_NAME AS tbl, COLUMN_NAME AS col, DATA_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN (?)',
    [databases],
  )) as unknown as [Array<{ db: string; tbl: string; col: string; type: string }>];
  const typeOf = new Map(types.map((row) => [`${row.db}\0${row.tbl}\0${row.col}`, String(row.type).toLowerCase()]));
  const tables = new Map<string, { db: string; tbl: string; text: string[]; key: string[]; versioned: boolean }>();
  for (const row of columns) {
    const id = `${row.db}\0${row.tbl}`;
    let table = tables.get(id);
    if (!table) {
      table = { db: row.db, tbl: row.tbl, text: [], key: [], versioned: row.kind === 'SYSTEM VERSIONED' };
      tables.set(id, table);
    }
    if (row.colKey === 'PRI') table.key.push(row.col);
    if (TEXT_TYPES.includes(typeOf.get(`${row.db}\0${row.tbl}\0${row.col}`) ?? '')) table.text.push(row.col);
  }
  const pattern = likeAnywhere(marker);
  const suffix = isolatedSuffix(tenant);
  // information_schema lists only what the account may see: without SELECT on
  // a whole database, tables and columns it cannot read are missing unseen.
  for (const db of databases) {
    if (db.endsWith(suffix)) continue;
    if (!(await mayReadWholeDatabase(connection, db)))
      result.searched.push({
        store: 'mysql',
        place: `${db}.*`,
        scanned: 0,
        truncated: false,
        isolated: false,
        unread: `the account may not read every table of ${db}: grant it SELECT ON ${quote(db)}.*`,
      });
  }
  for (const table of tables.values()) {
    const isolated = table.db.endsWith(suffix);
    const name = `${table.db}.${table.tbl}`;
    if (table.text.length === 0) {
      result.searched.push({ store: 'mysql', place: name, scanned: 0, truncated: false, isolated });
      continue;
    }
    const order = table.key.length > 0 ? ` ORDER BY ${table.key.map((column) => `${quote(column)} DESC`).join(', ')}` : '';
    // The newest rows only: production tables can be large, and a run's rows are recent.
    const sums = table.text.map((column, index) => `SUM(${quote(column)} LIKE ? ESCAPE '!') AS c${index}`).join(', ');
    let rows: Array<Record<string, unknown>>;
    try {
      [rows] = (await connection.query(
        `SELECT COUNT(*) AS scanned, ${sums} FROM (SELECT ${table.text.map(quote).join(', ')} FROM ${quote(table.db)}.${quote(table.tbl)}${table.versioned ? ' FOR SYSTEM_TIME ALL' : ''}${order} LIMIT ?) AS recent`,
        [...table.text.map(() => pattern), maxRows],
      )) as unknown as [Array<Record<string, unknown>>];
    } catch (error) {
      // A lock held past the session's lock_wait_timeout, a statement past its time
      // limit, a privilege missing: this table is not searched, and the result says so.
      result.searched.push({ store: 'mysql', place: name, scanned: 0, truncated: false, isolated, unread: (error as Error).message });
      continue;
    }
    const counts = rows[0] ?? {};
    const scanned = Number(counts.scanned ?? 0);
    result.searched.push({ store: 'mysql', place: name, scanned, truncated: scanned >= maxRows, isolated });
    table.text.forEach((column, index) => {
      const count = Number(counts[`c${index}`] ?? 0);
      if (count > 0) result.findings.push({ store: 'mysql', place: `${name}.${column}`, count, isolated });
    });
  }
  return result;
}

/**
 * Whether the current account (or its current role) has SELECT on every table
 * of `db`: globally, or on the database. Grants by pattern (`shop\_%`) are not
 * read: such an account is reported as unable, which fails closed.
 */
async function mayReadWholeDatabase(connection: mysql.Connection, db: string): Promise<boolean> {
  const [[who]] = (await connection.query('SELECT CURRENT_USER() AS user')) as unknown as [[{ user: string }]];
  let role: string | null = null;
  try {
    [[{ role }]] = (await connection.query('SELECT CURRENT_ROLE() AS role')) as unknown as [[{ role: string | null }]];
  } catch {
    // MySQL before 8 has no roles.
  }
  const grantees = [who.user, ...(role && role !== 'NONE' ? role.split(',') : [])].map(granteeOf);
  const [global] = (await connection.query(
    "SELECT 1 FROM information_schema.USER_PRIVILEGES WHERE GRANTEE IN (?) AND PRIVILEGE_TYPE = 'SELECT' LIMIT 1",
    [grantees],
  )) as unknown as [unknown[]];
  if (global.length > 0) return true;
  const [schema] = (await connection.query(
    "SELECT 1 FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE IN (?) AND TABLE_SCHEMA = ? AND PRIVILEGE_TYPE = 'SELECT' LIMIT 1",
    [grantees, db],
  )) as unknown as [unknown[]];
  return schema.length > 0;
}

/** `user@host` (CURRENT_USER) as information_schema writes a grantee: `'user'@'host'`; a role has no host. */
function granteeOf(account: string): string {
  const at = account.lastIndexOf('@');
  const user = at === -1 ? account : account.slice(0, at);
  const host = at === -1 ? '' : account.slice(at + 1);
  return at === -1 ? `'${user}'` : `'${user}'@'${host}'`;
}
