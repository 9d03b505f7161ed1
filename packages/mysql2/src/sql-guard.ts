/**
 * Decides whether an isolated tenant may send a text to its shadow database.
 * An allowlist: the statement kinds a service's data work needs (queries,
 * writes, transactions, table DDL, SHOW/DESCRIBE/EXPLAIN, a documented list of
 * session variables), each read with the server's own lexer rules; everything
 * else is refused by name. It is the early, readable refusal: the shadow
 * account's grants are the guarantee (the server refuses what the guard might
 * miss).
 */

import { lexSql, type SqlDialect, type SqlToken, splitStatements } from './sql-lexer.js';

export type GuardVerdict =
  | {
      readonly ok: true;
      /**
       * The text leaves state on its connection beyond the statement: a
       * transaction or snapshot, table locks, temporary tables, session or user
       * variables. A pooled connection must not keep it once released.
       */
      readonly holdsSession?: true;
    }
  | { readonly ok: false; readonly reason: string };

export interface SqlGuardOptions {
  /** The production database the isolated tenant replaces (`shop`). */
  productionDatabase: string;
  /** The isolated database it may use (`shop_shadow`). */
  isolatedDatabase: string;
  /** Other databases on the server, which the tenant must not reach either. */
  otherDatabases?: readonly string[];
  /** How the server reads SQL. Default {@link DEFAULT_DIALECT}. */
  dialect?: SqlDialect;
  /**
   * The tenant's account is confined by the server (the normal setup): reading
   * server metadata is then harmless, the server shows only the account's own
   * (information_schema, SHOW PROCESSLIST, SHOW GRANTS, SHOW DATABASES).
   * Without it (enforcement 'guard-only', the production account) those reads
   * would show production's schema, other sessions' SQL and password hashes,
   * and are refused. Default false.
   */
  serverConfines?: boolean;
}

/** MariaDB 10.11 in its default sql_mode. */
export const DEFAULT_DIALECT: SqlDialect = Object.freeze({
  flavor: 'mariadb',
  version: 101100,
  ansiQuotes: false,
  noBackslashEscapes: false,
});

/**
 * Session variables an isolated tenant may SET (SESSION or unscoped):
 * transaction behaviour, lock waits, time zone and formats.
 * Variables that change how the server reads SQL (sql_mode, character sets),
 * which engine new tables get, logging and replication are refused, and so
 * are the limits a DBA sets on time, memory and result sizes: shadow traffic
 * must not raise them (`max_statement_time`, `tmp_table_size`, buffer sizes…).
 */
export const ALLOWED_SESSION_VARIABLES: ReadonlySet<string> = new Set([
  'autocommit',
  'auto_increment_increment',
  'auto_increment_offset',
  'default_week_format',
  'div_precision_increment',
  'eq_range_index_dive_limit',
  'explicit_defaults_for_timestamp',
  'foreign_key_checks',
  'information_schema_stats_expiry',
  'innodb_lock_wait_timeout',
  'lc_messages',
  'lc_time_names',
  'lock_wait_timeout',
  'session_track_schema',
  'session_track_state_change',
  'session_track_system_variables',
  'session_track_transaction_info',
  'sql_auto_is_null',
  'sql_notes',
  'sql_quote_show_create',
  'sql_safe_updates',
  'sql_select_limit',
  'sql_warnings',
  'time_zone',
  'timestamp',
  'transaction_isolation',
  'transaction_read_only',
  'tx_isolation',
  'tx_read_only',
  'unique_checks',
]);

/** Limits a DBA sets on a session's time, memory and sizes. */
const RESOURCE_LIMITS = [
  'optimizer_prune_level',
  'optimizer_search_depth',
  'optimizer_switch',
  'big_tables',
  'cte_max_recursion_depth',
  'group_concat_max_len',
  'interactive_timeout',
  'join_buffer_size',
  'max_error_count',
  'max_execution_time',
  'max_heap_table_size',
  'max_join_size',
  'max_recursive_iterations',
  'max_sort_length',
  'max_statement_time',
  'net_read_timeout',
  'net_write_timeout',
  'profiling',
  'read_buffer_size',
  'read_rnd_buffer_size',
  'sort_buffer_size',
  'sql_big_selects',
  'sql_buffer_result',
  'tmp_table_size',
  'wait_timeout',
];

/** Why some well-known variables are refused, for a readable error. */
const REFUSED_VARIABLE_REASONS: ReadonlyMap<string, string> = new Map(
  Object.entries({
    sql_mode: 'sql_mode changes how the server reads SQL (quotes, escapes)',
    character_set_client: 'character sets change how the server reads SQL',
    character_set_connection: 'character sets change how the server reads SQL',
    character_set_results: 'character sets change how the server reads SQL',
    collation_connection: 'character sets change how the server reads SQL',
    names: 'SET NAMES changes how the server reads SQL',
    character: 'SET CHARACTER SET changes how the server reads SQL',
    charset: 'SET CHARSET changes how the server reads SQL',
    default_storage_engine: 'the storage engine of new tables could reach another server (FEDERATED, CONNECT)',
    default_tmp_storage_engine: 'the storage engine of new tables could reach another server (FEDERATED, CONNECT)',
    storage_engine: 'the storage engine of new tables could reach another server (FEDERATED, CONNECT)',
    password: 'SET PASSWORD changes an account',
    role: 'SET ROLE changes the privileges of the session',
    default: 'SET DEFAULT ROLE changes an account',
    statement: 'SET STATEMENT … FOR runs a statement with other settings',
    sql_log_bin: 'it changes what the server logs',
    sql_log_off: 'it changes what the server logs',
    ...Object.fromEntries(
      RESOURCE_LIMITS.map((name) => [name, 'limits on time, memory and sizes are the DBA’s: shadow traffic may not raise them for itself']),
    ),
  }),
);

/**
 * Storage engines an isolated tenant's tables may use: data in the server's
 * own files. Not MEMORY: its tables live in the server's memory until dropped,
 * and shadow traffic could fill it.
 */
const ALLOWED_ENGINES = new Set(['innodb', 'myisam', 'aria']);

/** Functions that reach outside the database: files, server-wide locks, replication waits, UDF shells. */
const REFUSED_FUNCTIONS: ReadonlyMap<string, string> = new Map(
  Object.entries({
    load_file: 'LOAD_FILE reads a file on the server',
    get_lock: 'named locks are server-wide: shadow work would contend with production',
    release_lock: 'named locks are server-wide: shadow work would contend with production',
    release_all_locks: 'named locks are server-wide: shadow work would contend with production',
    is_free_lock: 'named locks are server-wide: shadow work would contend with production',
    is_used_lock: 'named locks are server-wide: shadow work would contend with production',
    master_pos_wait: 'it waits on replication',
    source_pos_wait: 'it waits on replication',
    master_gtid_wait: 'it waits on replication',
    wait_for_executed_gtid_set: 'it waits on replication',
    sys_exec: 'it runs a program on the server',
    sys_eval: 'it runs a program on the server',
    benchmark: 'BENCHMARK() burns server CPU production shares',
  }),
);

/**
 * The calls in `sql` to functions the guard refuses (named locks, files,
 * replication waits, UDF shells), as reasons: for bodies of views, triggers and
 * routines the schema sync would copy, which run whatever is inside them.
 */
export function refusedCalls(sql: string, dialect: SqlDialect): string[] {
  const lexed = lexSql(sql, dialect);
  if (!lexed.ok) return [`its text cannot be read (${lexed.reason})`];
  const reasons: string[] = [];
  lexed.tokens.forEach((token, i) => {
    if (!isName(token) || !isPunct(lexed.tokens[i + 1], '(')) return;
    const reason = REFUSED_FUNCTIONS.get(token.text.toLowerCase());
    if (reason) reasons.push(`it calls ${token.text.toUpperCase()}(): ${reason}`);
  });
  return [...new Set(reasons)];
}

const QUERY_STARTS = new Set(['select', 'with', 'insert', 'replace', 'update', 'delete', 'values', 'table']);

/** Why statement kinds outside the allowlist are refused, for the common ones. */
const REFUSED_STATEMENT_REASONS: ReadonlyMap<string, string> = new Map(
  Object.entries({
    use: 'USE would switch a pooled connection to another database',
    prepare: 'dynamic SQL is built at run time, where neither Dye nor a reviewer can read it',
    execute: 'dynamic SQL is built at run time, where neither Dye nor a reviewer can read it',
    deallocate: 'dynamic SQL is built at run time, where neither Dye nor a reviewer can read it',
    call: 'a procedure runs SQL Dye does not see',
    xa: 'XA transactions can commit or roll back other sessions’ work',
    kill: 'KILL acts on other sessions',
    flush: 'FLUSH acts on the whole server',
    load: 'LOAD reads files',
    grant: 'account statements change who may do what',
    revoke: 'account statements change who may do what',
    install: 'plugins change the server',
    uninstall: 'plugins change the server',
    shutdown: 'SHUTDOWN stops the server',
    do: 'DO is not on the list of statements isolated tenants may run',
    handler: 'HANDLER is not on the list of statements isolated tenants may run',
    purge: 'PURGE acts on the server’s logs',
    reset: 'RESET acts on the whole server',
    change: 'CHANGE MASTER/REPLICATION acts on replication',
    binlog: 'BINLOG replays events on the server',
    begin: 'BEGIN NOT ATOMIC runs a compound statement',
  }),
);

const refuse = (reason: string): GuardVerdict => ({ ok: false, reason });
const OK: GuardVerdict = Object.freeze({ ok: true });
const OK_HOLDING_SESSION: GuardVerdict = Object.freeze({ ok: true, holdsSession: true });

/**
 * State the connection keeps after the statement: a transaction or snapshot
 * (BEGIN, START TRANSACTION, COMMIT/ROLLBACK AND CHAIN, SAVEPOINT), table
 * locks, temporary tables, session or user variables (SET, SELECT … INTO @v,
 * @v := …). Plain reads and writes in autocommit leave none.
 */
function holdsSession(tokens: readonly SqlToken[]): boolean {
  const verb = lower(tokens[0]);
  if (verb === 'begin' || verb === 'start' || verb === 'lock' || verb === 'set' || verb === 'savepoint') return true;
  if ((verb === 'commit' || verb === 'rollback') && tokens.some((token) => lower(token) === 'chain')) return true;
  if (verb === 'create' && tokens.some((token) => lower(token) === 'temporary')) return true;
  // A user variable (`@v`, not `@@v`) anywhere may be assigned (INTO @v, @v := …).
  return tokens.some((token, i) => isPunct(token, '@') && !isPunct(tokens[i + 1], '@') && !isPunct(tokens[i - 1], '@'));
}

const lower = (token: SqlToken | undefined): string | undefined =>
  token && token.kind !== 'string' ? token.text.toLowerCase() : undefined;
const isName = (token: SqlToken | undefined): token is SqlToken => token?.kind === 'word' || token?.kind === 'identifier';
const isPunct = (token: SqlToken | undefined, text: string) => token?.kind === 'punct' && token.text === text;

/**
 * Whether an isolated tenant may send `sql` to its database, every statement
 * of it. Refused: statement kinds not on the allowlist (dynamic SQL, XA, KILL,
 * global SET, FLUSH, file I/O, account, plugin and engine statements, views,
 * routines, triggers, events, database DDL); SET of variables not on
 * {@link ALLOWED_SESSION_VARIABLES}; functions that reach outside the database;
 * tables on other engines than InnoDB, MyISAM and Aria; any mention of
 * the production database as a name; another database used as a qualifier; and
 * text the server might read differently from the guard.
 */
export function checkIsolatedSql(sql: string, options: SqlGuardOptions): GuardVerdict {
  return createSqlGuard(options)(sql, options.dialect ?? DEFAULT_DIALECT);
}

/** {@link checkIsolatedSql} with the database names prepared once, for a caller that judges many texts. */
export function createSqlGuard(options: Omit<SqlGuardOptions, 'dialect'>): (sql: string, dialect: SqlDialect) => GuardVerdict {
  const names = databaseNames(options);
  return (sql, dialect) => {
    const lexed = lexSql(sql, dialect);
    if (!lexed.ok) return refuse(`${lexed.reason} at offset ${lexed.at}: the server might read it otherwise than Dye`);
    let holding = false;
    for (const statement of splitStatements(lexed.tokens)) {
      const verdict = checkStatement(statement, names);
      if (!verdict.ok) return verdict;
      holding ||= holdsSession(statement);
    }
    return holding ? OK_HOLDING_SESSION : OK;
  };
}

interface DatabaseNames {
  readonly production: string;
  readonly productionDisplay: string;
  readonly isolated: string;
  readonly others: ReadonlySet<string>;
  readonly serverConfines: boolean;
}

/** Schemas of server metadata: what they show depends on the account's privileges. */
const METADATA_SCHEMAS = new Set(['information_schema', 'performance_schema']);
/** SHOW forms that show other sessions or accounts unless the server confines the account. */
const METADATA_SHOWS = new Set(['processlist', 'grants', 'databases', 'schemas', 'open']);

function databaseNames(options: Omit<SqlGuardOptions, 'dialect'>): DatabaseNames {
  const production = options.productionDatabase.toLowerCase();
  const isolated = options.isolatedDatabase.toLowerCase();
  const others = new Set((options.otherDatabases ?? []).map((name) => name.toLowerCase()));
  others.delete(isolated);
  others.delete('information_schema');
  others.add(production);
  return { production, productionDisplay: options.productionDatabase, isolated, others, serverConfines: options.serverConfines === true };
}

function checkStatement(tokens: readonly SqlToken[], names: DatabaseNames): GuardVerdict {
  const kind = checkStatementKind(tokens, names);
  return kind.ok ? checkNamesAndFunctions(tokens, names) : kind;
}

function checkStatementKind(tokens: readonly SqlToken[], names: DatabaseNames): GuardVerdict {
  let first = 0;
  while (isPunct(tokens[first], '(')) first++;
  const head = tokens[first];
  if (head?.kind !== 'word') return refuse('a statement must start with a keyword');
  const verb = head.text.toLowerCase();
  if (QUERY_STARTS.has(verb)) return OK;
  if (first > 0) return refuse(`a parenthesized ${verb.toUpperCase()} is not a query`);
  const rest = tokens.slice(1);
  switch (verb) {
    case 'begin':
      return onlyWords(rest, ['work']) ? OK : refuse(REFUSED_STATEMENT_REASONS.get('begin') as string);
    case 'start':
      return lower(rest[0]) === 'transaction' && onlyWords(rest.slice(1), ['read', 'only', 'write', 'with', 'consistent', 'snapshot'])
        ? OK
        : refuse('START is allowed only as START TRANSACTION');
    case 'commit':
      return onlyWords(rest, ['work', 'and', 'no', 'chain', 'release']) ? OK : refuse('COMMIT with unexpected words');
    case 'rollback':
      return checkRollback(rest);
    case 'savepoint':
      return rest.length === 1 && isName(rest[0]) ? OK : refuse('SAVEPOINT takes one name');
    case 'release':
      return lower(rest[0]) === 'savepoint' && rest.length === 2 && isName(rest[1])
        ? OK
        : refuse('RELEASE is allowed only as RELEASE SAVEPOINT');
    case 'lock':
      return ['tables', 'table'].includes(lower(rest[0]) ?? '') ? OK : refuse('LOCK is allowed only as LOCK TABLES');
    case 'unlock':
      return ['tables', 'table'].includes(lower(rest[0]) ?? '') && rest.length === 1
        ? OK
        : refuse('UNLOCK is allowed only as UNLOCK TABLES');
    case 'create':
    case 'alter':
    case 'drop':
    case 'truncate':
    case 'rename':
      return checkTableDdl(verb, tokens);
    case 'show':
      return checkShow(rest, names);
    case 'describe':
    case 'desc':
    case 'explain':
      return checkExplain(rest, names);
    case 'set':
      return checkSet(rest);
    default:
      return refuse(REFUSED_STATEMENT_REASONS.get(verb) ?? `${verb.toUpperCase()} statements are not on the list isolated tenants may run`);
  }
}

function onlyWords(tokens: readonly SqlToken[], allowed: readonly string[]): boolean {
  return tokens.every((token) => isPunct(token, ',') || (token.kind === 'word' && allowed.includes(token.text.toLowerCase())));
}

function checkRollback(rest: readonly SqlToken[]): GuardVerdict {
  // ROLLBACK [WORK] [TO [SAVEPOINT] name] | ROLLBACK [WORK] [AND [NO] CHAIN] [[NO] RELEASE]
  const to = rest.findIndex((token) => lower(token) === 'to');
  if (to === -1) return onlyWords(rest, ['work', 'and', 'no', 'chain', 'release']) ? OK : refuse('ROLLBACK with unexpected words');
  const before = rest.slice(0, to);
  let after = rest.slice(to + 1);
  if (lower(after[0]) === 'savepoint') after = after.slice(1);
  return onlyWords(before, ['work']) && after.length === 1 && isName(after[0]) ? OK : refuse('ROLLBACK TO takes one savepoint name');
}

/** The production name anywhere, other databases as qualifiers, functions that reach outside. */
function checkNamesAndFunctions(tokens: readonly SqlToken[], names: DatabaseNames): GuardVerdict {
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as SqlToken;
    if (!isName(token)) continue;
    const name = token.text.toLowerCase();
    if (name === names.production) {
      return refuse(`the statement names the production database \`${names.productionDisplay}\``);
    }
    if (names.others.has(name) && isPunct(tokens[i + 1], '.') && !isPunct(tokens[i - 1], '.')) {
      return refuse(`the statement reaches another database \`${token.text}\``);
    }
    if (!names.serverConfines && METADATA_SCHEMAS.has(name)) {
      return refuse(`${token.text} shows every database's metadata to an account the server does not confine (enforcement 'guard-only')`);
    }
    const refusedFunction = REFUSED_FUNCTIONS.get(name);
    if (refusedFunction && isPunct(tokens[i + 1], '(')) return refuse(`${token.text.toUpperCase()}(): ${refusedFunction}`);
    if (token.kind === 'word' && (name === 'outfile' || name === 'dumpfile')) {
      return refuse(`INTO ${name.toUpperCase()} writes a file on the server`);
    }
    if (token.kind === 'word' && name === 'procedure' && isPunct(tokens[i + 2], '(')) {
      return refuse('SELECT … PROCEDURE runs a procedure');
    }
  }
  return OK;
}

function checkTableDdl(verb: string, tokens: readonly SqlToken[]): GuardVerdict {
  let at = 1;
  const word = () => lower(tokens[at]);
  if (verb === 'create' && word() === 'or' && lower(tokens[at + 1]) === 'replace') at += 2;
  if (verb === 'alter' && (word() === 'online' || word() === 'ignore')) at++;
  if ((verb === 'create' || verb === 'drop') && word() === 'temporary') at++;
  const object = word();
  const tableDdl =
    object === 'table' ||
    (object === 'tables' && (verb === 'drop' || verb === 'rename')) ||
    (object === 'index' && (verb === 'create' || verb === 'drop')) ||
    (verb === 'create' && ['unique', 'fulltext', 'spatial'].includes(object ?? '') && lower(tokens[at + 1]) === 'index') ||
    verb === 'truncate';
  if (!tableDdl) {
    const what = object ? `${verb} ${object}`.toUpperCase() : verb.toUpperCase();
    const why =
      object === 'database' || object === 'schema'
        ? 'database DDL is for the schema sync, run as an admin'
        : object === 'user' || object === 'role'
          ? 'account statements change who may do what'
          : object === 'server'
            ? 'a server definition reaches another server'
            : 'only table DDL (tables and indexes) is allowed inside the shadow database';
    return refuse(`${what}: ${why}`);
  }
  // CREATE TABLE … LIKE takes the source's engine (MEMORY from information_schema, or a copied MEMORY table).
  if (verb === 'create' && object === 'table' && copiesAnotherTable(tokens, at + 1)) {
    return refuse(
      'CREATE TABLE … LIKE takes the engine of its source, which may keep rows in server memory: name the columns and the engine',
    );
  }
  let depth = 0;
  for (let i = at; i < tokens.length; i++) {
    const token = tokens[i] as SqlToken;
    if (isPunct(token, '(')) depth++;
    else if (isPunct(token, ')')) depth--;
    if (token.kind !== 'word') continue;
    const name = token.text.toLowerCase();
    const next = tokens[i + 1];
    if (name === 'directory') return refuse('DATA/INDEX DIRECTORY places table files outside the database');
    if (name === 'definer') return refuse('DEFINER runs code as another account');
    if (name === 'connection' && (isPunct(next, '=') || next?.kind === 'string')) {
      return refuse('CONNECTION makes a table that reaches another server');
    }
    if ((name === 'union' && isPunct(next, '=')) || name === 'secondary_engine') {
      return refuse(`${token.text.toUpperCase()} is not an allowed table option`);
    }
    if (name === 'engine') {
      const previous = lower(tokens[i - 1]);
      const assigned = isPunct(next, '=');
      // A column named `engine` in a column list or after ADD/CHANGE/MODIFY.
      const isColumn =
        !assigned &&
        ((depth > 0 && (isPunct(tokens[i - 1], '(') || isPunct(tokens[i - 1], ','))) ||
          ['add', 'column', 'change', 'modify', 'after', 'drop', 'alter', 'rename'].includes(previous ?? ''));
      if (isColumn) continue;
      const engine = lower(assigned ? tokens[i + 2] : next);
      if (!engine || !ALLOWED_ENGINES.has(engine)) {
        return refuse(
          `ENGINE ${engine?.toUpperCase() ?? ''}: isolated tenants' tables are InnoDB, MyISAM or Aria (their data in the database's own files)`,
        );
      }
    }
  }
  return OK;
}

/** `CREATE TABLE [IF NOT EXISTS] name LIKE src` or `… name (LIKE src)`: `from` is the token after TABLE. */
function copiesAnotherTable(tokens: readonly SqlToken[], from: number): boolean {
  let at = from;
  if (lower(tokens[at]) === 'if' && lower(tokens[at + 1]) === 'not' && lower(tokens[at + 2]) === 'exists') at += 3;
  at++; // the name
  while (isPunct(tokens[at], '.')) at += 2; // db.name
  if (isPunct(tokens[at], '(')) at++;
  return lower(tokens[at]) === 'like';
}

const SHOW_OBJECTS = new Set([
  'tables',
  'columns',
  'fields',
  'index',
  'indexes',
  'keys',
  'create',
  'table',
  'open',
  'variables',
  'status',
  'warnings',
  'errors',
  'count',
  'databases',
  'schemas',
  'character',
  'charset',
  'collation',
  'engines',
  'grants',
  'triggers',
  'processlist',
]);

function checkShow(rest: readonly SqlToken[], names: DatabaseNames): GuardVerdict {
  let at = 0;
  while (['full', 'global', 'session', 'local', 'storage'].includes(lower(rest[at]) ?? '')) at++;
  const object = lower(rest[at]);
  if (!object || !SHOW_OBJECTS.has(object))
    return refuse(`SHOW ${object?.toUpperCase() ?? ''} is not on the list isolated tenants may run`);
  if (object === 'create' && !['table', 'view'].includes(lower(rest[at + 1]) ?? ''))
    return refuse('SHOW CREATE is allowed for tables and views');
  if (object === 'table' && lower(rest[at + 1]) !== 'status') return refuse('SHOW TABLE is allowed only as SHOW TABLE STATUS');
  if (!names.serverConfines && METADATA_SHOWS.has(object)) {
    return refuse(
      `SHOW ${object.toUpperCase()} shows other sessions and accounts to an account the server does not confine (enforcement 'guard-only')`,
    );
  }
  return noOtherDatabase(rest, names);
}

/** `SHOW TABLES FROM analytics`, `DESCRIBE analytics.t`: a database named without a dot. */
function noOtherDatabase(tokens: readonly SqlToken[], names: DatabaseNames): GuardVerdict {
  for (const token of tokens) {
    if (isName(token) && names.others.has(token.text.toLowerCase()))
      return refuse(`the statement reaches another database \`${token.text}\``);
  }
  return OK;
}

function checkExplain(rest: readonly SqlToken[], names: DatabaseNames): GuardVerdict {
  let at = 0;
  for (;;) {
    const word = lower(rest[at]);
    if (word === 'extended' || word === 'partitions' || word === 'analyze') at++;
    else if (word === 'format' && isPunct(rest[at + 1], '=')) at += 3;
    else break;
  }
  const next = rest[at];
  if (lower(next) === 'for') return refuse('EXPLAIN FOR CONNECTION reads another session');
  if (isPunct(next, '(') || QUERY_STARTS.has(lower(next) ?? '')) return OK; // the statement was checked with the rest
  return noOtherDatabase(rest, names);
}

function checkSet(rest: readonly SqlToken[]): GuardVerdict {
  if (rest.length === 0) return refuse('SET without an assignment');
  // SET [SESSION] TRANSACTION …: the next transaction's characteristics.
  const scope = lower(rest[0]);
  const afterScope = scope === 'session' || scope === 'local' ? rest.slice(1) : rest;
  if (lower(afterScope[0]) === 'transaction') {
    return onlyWords(afterScope.slice(1), [
      'isolation',
      'level',
      'read',
      'write',
      'only',
      'repeatable',
      'committed',
      'uncommitted',
      'serializable',
    ])
      ? OK
      : refuse('SET TRANSACTION with unexpected words');
  }
  for (const assignment of splitTopLevel(rest, ',')) {
    const verdict = checkAssignment(assignment);
    if (!verdict.ok) return verdict;
  }
  return OK;
}

function splitTopLevel(tokens: readonly SqlToken[], separator: string): SqlToken[][] {
  const parts: SqlToken[][] = [];
  let current: SqlToken[] = [];
  let depth = 0;
  for (const token of tokens) {
    if (isPunct(token, '(')) depth++;
    else if (isPunct(token, ')')) depth--;
    if (depth === 0 && isPunct(token, separator)) {
      parts.push(current);
      current = [];
      continue;
    }
    current.push(token);
  }
  parts.push(current);
  return parts;
}

function checkAssignment(tokens: readonly SqlToken[]): GuardVerdict {
  const first = tokens[0];
  // A user variable: @name, @'name', @`name`.
  if (isPunct(first, '@') && !isPunct(tokens[1], '@')) return OK;
  let at = 0;
  let scope: string | undefined;
  if (isPunct(first, '@') && isPunct(tokens[1], '@')) {
    at = 2;
    const maybeScope = lower(tokens[at]);
    if (isPunct(tokens[at + 1], '.') && maybeScope !== undefined) {
      scope = maybeScope;
      at += 2;
    }
  } else {
    const word = lower(first);
    if (word === 'session' || word === 'local' || word === 'global' || word === 'persist' || word === 'persist_only') {
      scope = word;
      at = 1;
    }
  }
  if (scope !== undefined && scope !== 'session' && scope !== 'local') {
    return refuse(`SET ${scope.toUpperCase()} changes the whole server, not the session`);
  }
  const variable = lower(tokens[at]);
  if (!isName(tokens[at]) || variable === undefined) return refuse('SET of something that is not a variable');
  const named = REFUSED_VARIABLE_REASONS.get(variable);
  if (named) return refuse(`SET ${variable}: ${named}`);
  if (!ALLOWED_SESSION_VARIABLES.has(variable))
    return refuse(`SET ${variable}: not on the list of session variables isolated tenants may set`);
  const operator = tokens[at + 1];
  if (!isPunct(operator, '=') && !(isPunct(operator, ':') && isPunct(tokens[at + 2], '='))) return refuse(`SET ${variable} without =`);
  return OK;
}
