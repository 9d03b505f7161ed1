import { isolatedName } from '@dye/core';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import {
  accountLiteral,
  accountName,
  normalizedBody,
  type Queryable,
  quote,
  readSchemaObjects,
  retargetSql,
  rows,
  type SchemaObject,
  type SchemaObjectKind,
  shadowCreateStatement,
  showCreateObject,
} from './schema-objects.js';
import { refusedCalls } from './sql-guard.js';
import { type SqlDialect, sqlDialect } from './sql-lexer.js';

export interface ShadowSchemaOptions {
  /** An admin connection or pool (it needs CREATE, ALTER, DROP, SELECT, INSERT on both databases). */
  connection: Queryable;
  /** The production database (`shop`). */
  database: string;
  /** The isolated tenant whose database to sync. Default `shadow` → `<database>_shadow`. */
  tenant?: string;
  /**
   * The account shadow triggers run as (`'dye_shadow'@'%'`). Triggers always run
   * with their definer's rights: the sync copies them only with this, and the
   * check reports shadow triggers of another definer. Views and routines are
   * made SQL SECURITY INVOKER: they run as the shadow account that queries them.
   */
  definer?: string;
}

export interface SyncShadowSchemaOptions extends ShadowSchemaOptions {
  /** Apply additive changes (missing database, tables, views, triggers, routines, columns, indexes). Default false: report only. */
  apply?: boolean;
  /**
   * Views, triggers and routines that name another database are refused (a
   * shadow copy would read or write it). With this, such a name is rewritten to
   * that database's own isolated twin (`analytics` → `analytics_shadow`), which
   * must exist.
   */
  rewriteForeignDatabases?: boolean;
  /**
   * The account shadow triggers run as (`'dye_shadow'@'%'`). Triggers always run
   * with their definer's rights; without this they run as the account syncing.
   * Views and routines are made SQL SECURITY INVOKER: they run as the shadow
   * account that queries them.
   */
  definer?: string;
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
  | 'charset'
  | 'view-definition'
  | 'trigger-definition'
  | 'routine-definition';

export interface Drift {
  /** The table, or the view, trigger or routine, concerned. */
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
  readonly missingTriggers: readonly string[];
  /** Procedures and functions, as `procedure p` / `function f`. */
  readonly missingRoutines: readonly string[];
  /**
   * Production objects a shadow copy cannot be made of as they are: views,
   * triggers and routines naming another database, tables on an engine that
   * keeps data elsewhere (FEDERATED, CONNECT, SPIDER…).
   */
  readonly foreignReferences: readonly ForeignReference[];
  /**
   * Objects only the shadow database has that run with another account's
   * rights than the shadow account's (SQL SECURITY DEFINER views and routines,
   * triggers of another definer, events): querying one runs as, say, the admin
   * whose migration made it. Reported, never dropped; the pool's first-use
   * check refuses isolated traffic while the account can see one.
   */
  readonly elevatedObjects: readonly ElevatedObject[];
  /** Shadow tables that production does not have (reported, never dropped). */
  readonly extraTables: readonly string[];
  readonly drift: readonly Drift[];
  /** True when nothing is missing and nothing drifted. */
  readonly inSync: boolean;
}

export interface ElevatedObject {
  readonly kind: SchemaObjectKind;
  readonly name: string;
  /** `user@host` it runs as. */
  readonly definer: string;
}

export interface ForeignReference {
  readonly kind: SchemaObjectKind | 'table';
  readonly name: string;
  /** Other databases it names (empty for a table refused for its engine). */
  readonly databases: readonly string[];
  readonly reason: string;
}

export interface SyncShadowSchemaResult extends ShadowSchemaReport {
  /** Statements executed, in order. */
  readonly applied: readonly string[];
  /** Drift left because fixing it needs `recreate`. */
  readonly unresolved: readonly Drift[];
  readonly copied: ReadonlyArray<{ readonly table: string; readonly rows: number }>;
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
  kind: 'BASE TABLE' | 'VIEW' | 'SEQUENCE';
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
      kind: row.kind === 'VIEW' ? 'VIEW' : row.kind === 'SEQUENCE' ? 'SEQUENCE' : 'BASE TABLE',
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

/**
 * `retarget` points an expression of production's (a column default such as
 * `nextval(shop.seq)`) at the shadow database, as the sync writes it.
 */
function compare(production: Map<string, TableInfo>, shadow: Map<string, TableInfo>, retarget: (expression: string) => string) {
  const missingTables: string[] = [];
  const missingViews: string[] = [];
  const drift: Drift[] = [];
  for (const [name, table] of production) {
    const twin = shadow.get(name);
    if (!twin) {
      (table.kind === 'VIEW' ? missingViews : missingTables).push(name);
      continue;
    }
    if (table.kind !== 'BASE TABLE') continue;
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
      const wantedDefault = column.default === null ? null : retarget(column.default);
      if (wantedDefault !== other.default) {
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

/** Engines that keep a table's rows in the server itself. */
const LOCAL_ENGINES = new Set(['innodb', 'myisam', 'aria', 'memory', 'heap', 'archive', 'csv', 'sequence']);

interface Session {
  readonly connection: Queryable;
  /** How the server reads SQL in this session (views' definitions, SHOW CREATE TABLE). */
  readonly dialect: SqlDialect;
  readonly version: string;
  readonly databases: readonly string[];
  /** The session's own sql_mode, restored at the end. */
  readonly sqlMode: string;
  /** sql_mode without ANSI quoting: SHOW CREATE then quotes names with backticks. */
  readonly readableSqlMode: string;
}

/**
 * One connection for the whole run (session settings must hold from one
 * statement to the next, which a pool does not promise), in a sql_mode whose
 * SHOW CREATE output quotes names with backticks.
 */
async function withSession<T>(given: Queryable, run: (session: Session) => Promise<T>): Promise<T> {
  const pooled = 'getConnection' in given && !('release' in given) ? await (given as Pool).getConnection() : undefined;
  const connection: Queryable = pooled ?? given;
  try {
    const [info] = await rows(connection, 'SELECT @@SESSION.sql_mode AS mode, VERSION() AS version');
    const sqlMode = String(info?.mode ?? '');
    const readableSqlMode = sqlMode
      .split(',')
      .filter((flag) => flag !== 'ANSI_QUOTES' && flag !== 'ANSI')
      .join(',');
    if (readableSqlMode !== sqlMode) await connection.query('SET SESSION sql_mode = ?', [readableSqlMode]);
    const databases = (await rows(connection, 'SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA')).map((row) =>
      String(row.name),
    );
    try {
      const version = String(info?.version);
      return await run({ connection, dialect: sqlDialect(version, readableSqlMode), version, databases, sqlMode, readableSqlMode });
    } finally {
      if (readableSqlMode !== sqlMode) await connection.query('SET SESSION sql_mode = ?', [sqlMode]);
    }
  } finally {
    pooled?.release();
  }
}

interface ObjectComparison {
  readonly missing: SchemaObject[];
  readonly drift: Drift[];
  readonly drifted: SchemaObject[];
  readonly foreign: ForeignReference[];
  /** Objects only the shadow database has, running with another account's rights. */
  readonly elevated: ElevatedObject[];
}

const objectKey = (object: SchemaObject) => `${object.kind}\u0000${object.name}`;

/**
 * How the server reads an object's body: triggers and routines keep the
 * sql_mode they were created with (ANSI_QUOTES makes "shop" a name, not a
 * string); views are shown in the session's.
 */
function objectDialect(session: Session, object: SchemaObject): SqlDialect | string {
  if (object.sqlMode === undefined) return session.dialect;
  try {
    return sqlDialect(session.version, object.sqlMode);
  } catch (error) {
    return (error as Error).message;
  }
}
const DRIFT_KIND: Record<Exclude<SchemaObjectKind, 'event'>, DriftKind> = {
  view: 'view-definition',
  trigger: 'trigger-definition',
  procedure: 'routine-definition',
  function: 'routine-definition',
};

/**
 * With whose rights an object in the shadow database runs, as the sync makes
 * it: views and routines with the caller's (the shadow account's), triggers
 * with the `definer` given (unknown without one).
 */
function rights(object: SchemaObject, definer: string | undefined, twin = false): string {
  if (object.kind === 'trigger') return definer === undefined ? '' : ` definer ${twin ? object.definer : accountName(definer)}`;
  return object.security === 'INVOKER' ? ' invoker' : ` definer ${object.definer}`;
}

/** Production's views, triggers and routines against the shadow ones, names retargeted. */
async function compareObjects(
  session: Session,
  database: string,
  tenant: string,
  shadowExists: boolean,
  rewrite: boolean,
  definer: string | undefined,
): Promise<ObjectComparison> {
  const shadowDatabase = isolatedName('mysql-database', database, tenant);
  const production = await readSchemaObjects(session.connection, database);
  const shadow = new Map(
    (shadowExists ? await readSchemaObjects(session.connection, shadowDatabase) : []).map((object) => [objectKey(object), object]),
  );
  const comparison: ObjectComparison = { missing: [], drift: [], drifted: [], foreign: [], elevated: [] };
  const retargeting = {
    production: database,
    shadow: shadowDatabase,
    databases: session.databases,
    ...(rewrite ? { foreign: (name: string) => isolatedName('mysql-database', name, tenant) } : {}),
  };
  const productionKeys = new Set(production.map(objectKey));
  for (const object of shadow.values()) {
    if (productionKeys.has(objectKey(object))) continue;
    const elevated =
      object.kind === 'event' ||
      (object.kind === 'trigger' ? definer === undefined || accountName(definer) !== object.definer : object.security === 'DEFINER');
    if (elevated) comparison.elevated.push({ kind: object.kind, name: object.name, definer: object.definer });
  }
  for (const object of production) {
    // Events run on a schedule, not for shadow traffic: never copied.
    if (object.kind === 'event') continue;
    const dialect = objectDialect(session, object);
    if (typeof dialect === 'string') {
      comparison.foreign.push({ kind: object.kind, name: object.name, databases: [], reason: dialect });
      continue;
    }
    const retargeted = retargetSql(object.body, dialect, retargeting);
    if (!retargeted.ok) {
      comparison.foreign.push({ kind: object.kind, name: object.name, databases: [], reason: retargeted.reason });
      continue;
    }
    const calls = refusedCalls(retargeted.text, dialect);
    if (calls.length > 0) {
      // Copied objects run whatever is inside them: a shadow INSERT firing a trigger that takes a named lock takes production's.
      comparison.foreign.push({ kind: object.kind, name: object.name, databases: [], reason: calls.join('; ') });
    }
    if (retargeted.foreign.length > 0 && !rewrite) {
      comparison.foreign.push({
        kind: object.kind,
        name: object.name,
        databases: retargeted.foreign,
        reason: `it names ${retargeted.foreign.map((name) => `\`${name}\``).join(', ')}: a shadow copy would read or write another database`,
      });
    }
    const twin = shadow.get(objectKey(object));
    if (!twin) {
      comparison.missing.push(object);
      continue;
    }
    // The same body running with other rights (a view recreated SQL SECURITY DEFINER by a migration run as root) is drift too.
    const wanted = `${object.signature}${rights({ ...object, security: 'INVOKER' }, definer)} ${normalizedBody(retargeted.text, dialect)}`;
    const actual = `${twin.signature}${rights(twin, definer, true)} ${normalizedBody(twin.body, dialect)}`;
    if (wanted !== actual) {
      comparison.drifted.push(object);
      comparison.drift.push({
        table: object.name,
        kind: DRIFT_KIND[object.kind as keyof typeof DRIFT_KIND],
        production: wanted,
        shadow: actual,
        additive: true,
      });
    }
  }
  return comparison;
}

/**
 * Production tables a shadow copy cannot be made of as they are: rows that
 * live elsewhere (FEDERATED, CONNECT, SPIDER…), or a definition naming another
 * database (a foreign key to `common.customers`, a default from its sequence).
 */
async function tableReferences(
  session: Session,
  database: string,
  shadowDatabase: string,
  production: Map<string, TableInfo>,
  rewrite: boolean,
) {
  const references: ForeignReference[] = [];
  for (const table of production.values()) {
    if (table.kind !== 'BASE TABLE') continue;
    if (table.engine !== null && !LOCAL_ENGINES.has(table.engine.toLowerCase())) {
      references.push({
        kind: 'table',
        name: table.name,
        databases: [],
        reason: `its engine ${table.engine} keeps rows outside this server's database: a shadow copy would reach them`,
      });
      continue;
    }
    const retargeted = retargetSql(await showCreate(session.connection, database, table.name, 'TABLE'), session.dialect, {
      production: database,
      shadow: shadowDatabase,
      databases: session.databases,
    });
    if (!retargeted.ok) references.push({ kind: 'table', name: table.name, databases: [], reason: retargeted.reason });
    else if (retargeted.foreign.length > 0 && !rewrite) {
      references.push({
        kind: 'table',
        name: table.name,
        databases: retargeted.foreign,
        reason: `it names ${retargeted.foreign.map((name) => `\`${name}\``).join(', ')} (a foreign key, a sequence): a shadow copy would read, lock or change it`,
      });
    }
  }
  return references;
}

/** Production's SHOW CREATE TABLE, pointed at the shadow database (and other databases at their twins when rewriting). */
async function shadowTableDefinition(
  session: Session,
  options: SyncShadowSchemaOptions,
  shadowDatabase: string,
  table: string,
): Promise<string> {
  const retargeted = retargetSql(await showCreate(session.connection, options.database, table, 'TABLE'), session.dialect, {
    production: options.database,
    shadow: shadowDatabase,
    databases: session.databases,
    ...(options.rewriteForeignDatabases
      ? { foreign: (name: string) => isolatedName('mysql-database', name, options.tenant ?? 'shadow') }
      : {}),
  });
  if (!retargeted.ok) throw new Error(`table ${table}: ${retargeted.reason}`);
  return retargeted.text;
}

async function report(session: Session, options: ShadowSchemaOptions & { rewriteForeignDatabases?: boolean }) {
  const shadowDatabase = isolatedName('mysql-database', options.database, options.tenant ?? 'shadow');
  const connection = session.connection;
  if (!(await databaseExists(connection, options.database))) throw new Error(`production database ${options.database} does not exist`);
  const production = await describe(connection, options.database);
  const exists = await databaseExists(connection, shadowDatabase);
  const shadow = exists ? await describe(connection, shadowDatabase) : new Map<string, TableInfo>();
  const diff = compare(production, shadow, (expression) => {
    const retargeted = retargetSql(expression, session.dialect, {
      production: options.database,
      shadow: shadowDatabase,
      databases: session.databases,
    });
    return retargeted.ok ? retargeted.text : expression;
  });
  const objects = await compareObjects(
    session,
    options.database,
    options.tenant ?? 'shadow',
    exists,
    options.rewriteForeignDatabases === true,
    options.definer,
  );
  const missingOf = (kinds: SchemaObjectKind[]) => objects.missing.filter((object) => kinds.includes(object.kind));
  const missingViews = missingOf(['view']).map((object) => object.name);
  const missingTriggers = missingOf(['trigger']).map((object) => object.name);
  const missingRoutines = missingOf(['procedure', 'function']).map((object) => `${object.kind} ${object.name}`);
  const foreignReferences = [
    ...(await tableReferences(session, options.database, shadowDatabase, production, options.rewriteForeignDatabases === true)),
    ...objects.foreign,
  ];
  const drift = [...diff.drift, ...objects.drift];
  const inSync =
    exists &&
    diff.missingTables.length === 0 &&
    missingViews.length === 0 &&
    missingTriggers.length === 0 &&
    missingRoutines.length === 0 &&
    foreignReferences.length === 0 &&
    objects.elevated.length === 0 &&
    drift.length === 0;
  const result: ShadowSchemaReport = {
    database: options.database,
    shadowDatabase,
    shadowDatabaseExists: exists,
    missingTables: diff.missingTables,
    missingViews,
    missingTriggers,
    missingRoutines,
    foreignReferences,
    elevatedObjects: objects.elevated,
    extraTables: diff.extraTables,
    drift,
    inSync,
  };
  return { report: result, objects };
}

/**
 * Reports how `<database>_<tenant>` differs from production (missing tables,
 * views, triggers and routines; drift in columns, types, nullability,
 * defaults, indexes, engine, charset and in view, trigger and routine
 * definitions; objects a shadow copy cannot be made of) without changing
 * anything: for CI and `dye shadow check`.
 */
export async function checkShadowSchema(options: ShadowSchemaOptions): Promise<ShadowSchemaReport> {
  return withSession(options.connection, async (session) => (await report(session, options)).report);
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
 * tables from `SHOW CREATE`, views, triggers and routines retargeted at the
 * shadow database, columns and indexes), replaces drifted views, triggers and
 * routines, recreates drifted tables only with `recreate`, and copies
 * `copyTables` from production. Refuses, before changing anything, to copy an
 * object that names another database (unless `rewriteForeignDatabases`) or a
 * table whose rows live on another server. Running it again changes nothing.
 */
export async function syncShadowSchema(options: SyncShadowSchemaOptions): Promise<SyncShadowSchemaResult> {
  return withSession(options.connection, async (session) => {
    const { report: before, objects } = await report(session, options);
    const { database } = options;
    const connection = session.connection;
    const shadowDatabase = before.shadowDatabase;
    const applied: string[] = [];
    const unresolved: Drift[] = [];
    const copied: Array<{ table: string; rows: number }> = [];
    if (!options.apply) {
      return { ...before, applied, unresolved: before.drift.filter((drift) => !drift.additive), copied };
    }
    if (before.foreignReferences.length > 0) {
      const list = before.foreignReferences.map((reference) => `${reference.kind} ${reference.name}: ${reference.reason}`).join('; ');
      throw new Error(
        `syncShadowSchema refuses to copy into ${shadowDatabase}: ${list}. Nothing was changed.` +
          (before.foreignReferences.some((reference) => reference.databases.length > 0)
            ? ' rewriteForeignDatabases points those names at their own isolated databases instead.'
            : ''),
      );
    }
    const triggers = [...objects.missing, ...objects.drifted].filter((object) => object.kind === 'trigger');
    // Validated before anything changes: the definer goes into CREATE TRIGGER.
    if (options.definer !== undefined) accountLiteral(options.definer);
    if (triggers.length > 0 && !options.definer) {
      throw new Error(
        `syncShadowSchema: triggers ${triggers.map((trigger) => trigger.name).join(', ')} run with their definer's rights; ` +
          "pass definer (the shadow account, as \"'shop_shadow'@'%'\") so that the server confines them too. Nothing was changed.",
      );
    }
    const sequences = new Set(
      (
        await rows(
          connection,
          "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'SEQUENCE'",
          [database],
        )
      ).map((row) => String(row.name)),
    );
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
      // Sequences first: a table's default may call one.
      const missing = [...before.missingTables].sort((a, b) => Number(sequences.has(b)) - Number(sequences.has(a)));
      for (const table of missing) {
        if (sequences.has(table)) {
          const [row] = await rows(connection, `SHOW CREATE SEQUENCE ${quote(database)}.${quote(table)}`);
          await exec(String(row?.['Create Table']).replace(/^CREATE SEQUENCE `(?:[^`]|``)+`/, `CREATE SEQUENCE ${qualified(table)}`));
          continue;
        }
        const create = await shadowTableDefinition(session, options, shadowDatabase, table);
        await exec(create.replace(/^CREATE TABLE `(?:[^`]|``)+`/, `CREATE TABLE ${qualified(table)}`));
      }
      const recreate = new Set<string>();
      const objectDrift = new Set<DriftKind>(['view-definition', 'trigger-definition', 'routine-definition']);
      for (const drift of before.drift) {
        if (drift.additive || objectDrift.has(drift.kind)) continue;
        if (options.recreate) recreate.add(drift.table);
        else unresolved.push(drift);
      }
      for (const drift of before.drift) {
        if (!drift.additive || objectDrift.has(drift.kind) || recreate.has(drift.table) || !drift.name) continue;
        const create = await shadowTableDefinition(session, options, shadowDatabase, drift.table);
        const line = definitionLine(create, drift.kind === 'column-missing' ? 'column' : 'index', drift.name);
        if (!line) {
          unresolved.push(drift);
          continue;
        }
        await exec(`ALTER TABLE ${qualified(drift.table)} ADD ${line}`);
      }
      for (const table of recreate) {
        const create = await shadowTableDefinition(session, options, shadowDatabase, table);
        await exec(`DROP TABLE ${qualified(table)}`);
        await exec(create.replace(/^CREATE TABLE `(?:[^`]|``)+`/, `CREATE TABLE ${qualified(table)}`));
      }
      // Routines first (views and triggers may call them), then views, then triggers.
      const order: SchemaObjectKind[] = ['function', 'procedure', 'view', 'trigger'];
      const toCreate = [...objects.missing, ...objects.drifted].sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
      for (const object of toCreate) {
        await copyObject(session, object, database, shadowDatabase, options, exec, objects.drifted.includes(object));
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
    const { report: after } = await report(session, options);
    return { ...after, applied, unresolved, copied };
  });
}

/** Creates (or replaces) one view, trigger or routine in the shadow database, as production's but retargeted. */
async function copyObject(
  session: Session,
  object: SchemaObject,
  database: string,
  shadowDatabase: string,
  options: SyncShadowSchemaOptions,
  exec: (sql: string) => Promise<void>,
  replacing: boolean,
): Promise<void> {
  const connection = session.connection;
  const dialect = objectDialect(session, object);
  if (typeof dialect === 'string') throw new Error(`${object.kind} ${object.name}: ${dialect}`);
  const retargeted = retargetSql(await showCreateObject(connection, database, object), dialect, {
    production: database,
    shadow: shadowDatabase,
    databases: session.databases,
    ...(options.rewriteForeignDatabases
      ? { foreign: (name: string) => isolatedName('mysql-database', name, options.tenant ?? 'shadow') }
      : {}),
  });
  if (!retargeted.ok) throw new Error(`${object.kind} ${object.name}: ${retargeted.reason}`);
  const create = shadowCreateStatement(retargeted.text, dialect, object, shadowDatabase, options.definer);
  const name = qualifiedName(shadowDatabase, object.name);
  if (replacing && object.kind !== 'view') await exec(`DROP ${object.kind.toUpperCase()} IF EXISTS ${name}`);
  // Triggers and routines keep the sql_mode they were made with.
  const ownMode = object.sqlMode !== undefined && object.sqlMode !== session.readableSqlMode;
  if (ownMode) await connection.query('SET SESSION sql_mode = ?', [object.sqlMode]);
  try {
    await exec(create);
  } finally {
    if (ownMode) await connection.query('SET SESSION sql_mode = ?', [session.readableSqlMode]);
  }
  // A routine runs with the rights of the shadow account calling it, not its definer's.
  if (object.kind === 'procedure' || object.kind === 'function')
    await exec(`ALTER ${object.kind.toUpperCase()} ${name} SQL SECURITY INVOKER`);
}

const qualifiedName = (database: string, name: string) => `${quote(database)}.${quote(name)}`;
