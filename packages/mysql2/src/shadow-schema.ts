import { isolatedName } from '@dye/core';
import type { Connection, Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';

type Queryable = Connection | Pool | PoolConnection;

export interface ShadowSchemaOptions {
  /** An admin connection or pool (it needs CREATE, ALTER, DROP, SELECT, INSERT on both databases). */
  connection: Queryable;
  /** The production database (`shop`). */
  database: string;
  /** The isolated tenant whose database to sync. Default `shadow` → `<database>_shadow`. */
  tenant?: string;
}

export interface SyncShadowSchemaOptions extends ShadowSchemaOptions {
  /** Apply additive changes (missing database, tables, views, columns, indexes). Default false: report only. */
  apply?: boolean;
  /** With `apply`: drop and recreate tables whose drift is not additive (their shadow data is lost). */
  recreate?: boolean;
  /** Tables whose rows are copied from production into shadow on every sync (reference data such as a catalogue). */
  copyTables?: readonly string[];
}

export type DriftKind =
  | 'column-missing'
  | 'column-extra'
  | 'column-type'
  | 'column-nullability'
  | 'column-default'
  | 'column-extra-attribute'
  | 'index-missing'
  | 'index-extra'
  | 'index-changed'
  | 'engine'
  | 'charset';

export interface Drift {
  readonly table: string;
  readonly kind: DriftKind;
  /** The column or index concerned, when there is one. */
  readonly name?: string;
  readonly production?: string | null;
  readonly shadow?: string | null;
  /** Whether `apply` can fix it without recreating the table. */
  readonly additive: boolean;
}

export interface ShadowSchemaReport {
  readonly database: string;
  readonly shadowDatabase: string;
  readonly shadowDatabaseExists: boolean;
  /** Production tables and views with no shadow counterpart. */
  readonly missingTables: readonly string[];
  readonly missingViews: readonly string[];
  /** Shadow tables that production does not have (reported, never dropped). */
  readonly extraTables: readonly string[];
  readonly drift: readonly Drift[];
  /** True when nothing is missing and nothing drifted. */
  readonly inSync: boolean;
}

export interface SyncShadowSchemaResult extends ShadowSchemaReport {
  /** Statements executed, in order. */
  readonly applied: readonly string[];
  /** Drift left because fixing it needs `recreate`. */
  readonly unresolved: readonly Drift[];
  readonly copied: ReadonlyArray<{ readonly table: string; readonly rows: number }>;
}

const quote = (name: string) => `\`${name.replaceAll('`', '``')}\``;

async function rows<T = RowDataPacket>(connection: Queryable, sql: string, values: unknown[] = []): Promise<T[]> {
  const [result] = await connection.query(sql, values);
  return result as T[];
}

interface ColumnInfo {
  name: string;
  type: string;
  nullable: string;
  default: string | null;
  extra: string;
}
interface TableInfo {
  name: string;
  kind: 'BASE TABLE' | 'VIEW';
  engine: string | null;
  collation: string | null;
  columns: Map<string, ColumnInfo>;
  indexes: Map<string, string>;
}

async function describe(connection: Queryable, database: string): Promise<Map<string, TableInfo>> {
  const tables = new Map<string, TableInfo>();
  for (const row of await rows(
    connection,
    'SELECT TABLE_NAME AS name, TABLE_TYPE AS kind, ENGINE AS engine, TABLE_COLLATION AS collation FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?',
    [database],
  )) {
    tables.set(String(row.name), {
      name: String(row.name),
      kind: row.kind === 'VIEW' ? 'VIEW' : 'BASE TABLE',
      engine: row.engine ?? null,
      collation: row.collation ?? null,
      columns: new Map(),
      indexes: new Map(),
    });
  }
  for (const row of await rows(
    connection,
    `SELECT TABLE_NAME AS tableName, COLUMN_NAME AS name, COLUMN_TYPE AS type, COLLATION_NAME AS collation, IS_NULLABLE AS nullable,
            COLUMN_DEFAULT AS dflt, EXTRA AS extra
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION`,
    [database],
  )) {
    tables.get(String(row.tableName))?.columns.set(String(row.name), {
      name: String(row.name),
      // The column's collation is part of its type: a charset change shows here too.
      type: row.collation ? `${row.type} COLLATE ${row.collation}` : String(row.type),
      nullable: String(row.nullable),
      default: row.dflt === null || row.dflt === undefined ? null : String(row.dflt),
      extra: String(row.extra ?? ''),
    });
  }
  const indexColumns = new Map<string, string[]>();
  for (const row of await rows(
    connection,
    `SELECT TABLE_NAME AS tableName, INDEX_NAME AS name, NON_UNIQUE AS nonUnique, COLUMN_NAME AS columnName, INDEX_TYPE AS type
       FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`,
    [database],
  )) {
    const key = `${row.tableName}\u0000${row.name}`;
    const list = indexColumns.get(key) ?? [];
    list.push(String(row.columnName));
    indexColumns.set(key, list);
    tables
      .get(String(row.tableName))
      ?.indexes.set(String(row.name), `${Number(row.nonUnique) === 0 ? 'UNIQUE ' : ''}${row.type} (${list.join(', ')})`);
  }
  return tables;
}

async function databaseExists(connection: Queryable, database: string): Promise<boolean> {
  return (await rows(connection, 'SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database])).length > 0;
}

function compare(production: Map<string, TableInfo>, shadow: Map<string, TableInfo>) {
  const missingTables: string[] = [];
  const missingViews: string[] = [];
  const drift: Drift[] = [];
  for (const [name, table] of production) {
    const twin = shadow.get(name);
    if (!twin) {
      (table.kind === 'VIEW' ? missingViews : missingTables).push(name);
      continue;
    }
    if (table.kind === 'VIEW') continue;
    if (table.engine !== twin.engine)
      drift.push({ table: name, kind: 'engine', production: table.engine, shadow: twin.engine, additive: false });
    if (table.collation !== twin.collation)
      drift.push({ table: name, kind: 'charset', production: table.collation, shadow: twin.collation, additive: false });
    for (const [columnName, column] of table.columns) {
      const other = twin.columns.get(columnName);
      if (!other) {
        drift.push({ table: name, kind: 'column-missing', name: columnName, production: column.type, shadow: null, additive: true });
        continue;
      }
      if (column.type !== other.type)
        drift.push({ table: name, kind: 'column-type', name: columnName, production: column.type, shadow: other.type, additive: false });
      if (column.nullable !== other.nullable) {
        drift.push({
          table: name,
          kind: 'column-nullability',
          name: columnName,
          production: column.nullable,
          shadow: other.nullable,
          additive: false,
        });
      }
      if (column.default !== other.default) {
        drift.push({
          table: name,
          kind: 'column-default',
          name: columnName,
          production: column.default,
          shadow: other.default,
          additive: false,
        });
      }
      if (column.extra !== other.extra) {
        drift.push({
          table: name,
          kind: 'column-extra-attribute',
          name: columnName,
          production: column.extra,
          shadow: other.extra,
          additive: false,
        });
      }
    }
    for (const columnName of twin.columns.keys()) {
      if (!table.columns.has(columnName))
        drift.push({
          table: name,
          kind: 'column-extra',
          name: columnName,
          production: null,
          shadow: twin.columns.get(columnName)?.type ?? null,
          additive: false,
        });
    }
    for (const [indexName, definition] of table.indexes) {
      const other = twin.indexes.get(indexName);
      if (other === undefined)
        drift.push({ table: name, kind: 'index-missing', name: indexName, production: definition, shadow: null, additive: true });
      else if (other !== definition)
        drift.push({ table: name, kind: 'index-changed', name: indexName, production: definition, shadow: other, additive: false });
    }
    for (const indexName of twin.indexes.keys()) {
      if (!table.indexes.has(indexName))
        drift.push({
          table: name,
          kind: 'index-extra',
          name: indexName,
          production: null,
          shadow: twin.indexes.get(indexName) ?? null,
          additive: false,
        });
    }
  }
  const extraTables = [...shadow.keys()].filter((name) => !production.has(name));
  return { missingTables, missingViews, extraTables, drift };
}

/**
 * Reports how `<database>_<tenant>` differs from production (missing tables and
 * views; drift in columns, types, nullability, defaults, indexes, engine and
 * charset) without changing anything: for CI and `dye shadow check`.
 */
export async function checkShadowSchema(options: ShadowSchemaOptions): Promise<ShadowSchemaReport> {
  const shadowDatabase = isolatedName('mysql-database', options.database, options.tenant ?? 'shadow');
  if (!(await databaseExists(options.connection, options.database)))
    throw new Error(`production database ${options.database} does not exist`);
  const production = await describe(options.connection, options.database);
  const exists = await databaseExists(options.connection, shadowDatabase);
  const shadow = exists ? await describe(options.connection, shadowDatabase) : new Map<string, TableInfo>();
  const diff = compare(production, shadow);
  const inSync = exists && diff.missingTables.length === 0 && diff.missingViews.length === 0 && diff.drift.length === 0;
  return { database: options.database, shadowDatabase, shadowDatabaseExists: exists, ...diff, inSync };
}

/** The column or index line of a table's `SHOW CREATE TABLE`, for an additive ALTER. */
function definitionLine(createTable: string, kind: 'column' | 'index', name: string): string | undefined {
  for (const raw of createTable.split('\n')) {
    const line = raw.trim().replace(/,$/, '');
    if (kind === 'column' && line.startsWith(`${quote(name)} `)) return line;
    if (kind === 'index') {
      if (name === 'PRIMARY' && line.startsWith('PRIMARY KEY')) return line;
      if (/^(UNIQUE |FULLTEXT |SPATIAL )?KEY /.test(line) && line.includes(`KEY ${quote(name)} `)) return line;
    }
  }
  return undefined;
}

async function showCreate(connection: Queryable, database: string, name: string, kind: 'TABLE' | 'VIEW'): Promise<string> {
  const [row] = await rows(connection, `SHOW CREATE ${kind} ${quote(database)}.${quote(name)}`);
  return String(row?.[kind === 'TABLE' ? 'Create Table' : 'Create View']);
}

/**
 * Brings `<database>_<tenant>` in step with production: reports like
 * checkShadowSchema and, with `apply`, creates what is missing (the database,
 * tables and views from `SHOW CREATE`, columns and indexes), recreates drifted
 * tables only with `recreate`, and copies `copyTables` from production. Running
 * it again changes nothing.
 */
export async function syncShadowSchema(options: SyncShadowSchemaOptions): Promise<SyncShadowSchemaResult> {
  const { connection, database } = options;
  const before = await checkShadowSchema(options);
  const shadowDatabase = before.shadowDatabase;
  const applied: string[] = [];
  const unresolved: Drift[] = [];
  const copied: Array<{ table: string; rows: number }> = [];
  if (!options.apply) {
    return { ...before, applied, unresolved: before.drift.filter((drift) => !drift.additive), copied };
  }
  const exec = async (sql: string) => {
    await connection.query(sql);
    applied.push(sql);
  };
  if (!before.shadowDatabaseExists) {
    const [charset] = await rows(
      connection,
      'SELECT DEFAULT_CHARACTER_SET_NAME AS cs, DEFAULT_COLLATION_NAME AS co FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
      [database],
    );
    await exec(
      `CREATE DATABASE ${quote(shadowDatabase)} CHARACTER SET ${charset?.cs ?? 'utf8mb4'} COLLATE ${charset?.co ?? 'utf8mb4_general_ci'}`,
    );
  }
  const qualified = (name: string) => `${quote(shadowDatabase)}.${quote(name)}`;
  // Foreign keys may point at tables created later in this run.
  await connection.query('SET @dye_fk_checks = @@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS = 0');
  try {
    for (const table of before.missingTables) {
      const create = await showCreate(connection, database, table, 'TABLE');
      await exec(create.replace(/^CREATE TABLE `(?:[^`]|``)+`/, `CREATE TABLE ${qualified(table)}`));
    }
    const recreate = new Set<string>();
    for (const drift of before.drift) {
      if (drift.additive) continue;
      if (options.recreate) recreate.add(drift.table);
      else unresolved.push(drift);
    }
    for (const drift of before.drift) {
      if (!drift.additive || recreate.has(drift.table) || !drift.name) continue;
      const create = await showCreate(connection, database, drift.table, 'TABLE');
      const line = definitionLine(create, drift.kind === 'column-missing' ? 'column' : 'index', drift.name);
      if (!line) {
        unresolved.push(drift);
        continue;
      }
      await exec(`ALTER TABLE ${qualified(drift.table)} ADD ${line}`);
    }
    for (const table of recreate) {
      const create = await showCreate(connection, database, table, 'TABLE');
      await exec(`DROP TABLE ${qualified(table)}`);
      await exec(create.replace(/^CREATE TABLE `(?:[^`]|``)+`/, `CREATE TABLE ${qualified(table)}`));
    }
    for (const view of before.missingViews) {
      const create = await showCreate(connection, database, view, 'VIEW');
      // A view's SQL names its own database: point it at the shadow one.
      const retargeted = create
        .replace(/ DEFINER=\S+ /, ' ')
        .replaceAll(`${quote(database)}.`, `${quote(shadowDatabase)}.`)
        .replace(/VIEW `(?:[^`]|``)+` AS/, `VIEW ${qualified(view)} AS`);
      await exec(retargeted);
    }
    for (const table of options.copyTables ?? []) {
      const columns = await rows(
        connection,
        'SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
        [database, table],
      );
      if (columns.length === 0) throw new Error(`copyTables: production table ${database}.${table} does not exist`);
      const list = columns.map((column) => quote(String(column.name))).join(', ');
      await connection.query(`DELETE FROM ${qualified(table)}`);
      const [result] = await connection.query(
        `INSERT INTO ${qualified(table)} (${list}) SELECT ${list} FROM ${quote(database)}.${quote(table)}`,
      );
      copied.push({ table, rows: (result as { affectedRows?: number }).affectedRows ?? 0 });
    }
  } finally {
    await connection.query('SET FOREIGN_KEY_CHECKS = @dye_fk_checks');
  }
  const after = await checkShadowSchema(options);
  return { ...after, applied, unresolved, copied };
}
