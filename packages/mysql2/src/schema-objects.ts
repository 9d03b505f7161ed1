/**
 * Views, triggers and routines of a schema: read from information_schema (to
 * compare) and from SHOW CREATE (to recreate), and rewritten for the shadow
 * database with the lexer, so that a name in a string or comment is left alone
 * and a name of another database is seen.
 */

import mysql, { type Connection, type Pool, type PoolConnection, type RowDataPacket } from 'mysql2/promise';
import { lexSql, type SqlDialect, type SqlToken } from './sql-lexer.js';

export type Queryable = Connection | Pool | PoolConnection;

export type SchemaObjectKind = 'view' | 'trigger' | 'procedure' | 'function' | 'event';

export interface SchemaObject {
  readonly kind: SchemaObjectKind;
  readonly name: string;
  /** What defines it, for drift: the body and the attributes that matter, as information_schema has them. */
  readonly signature: string;
  /** The body (view query, trigger statement, routine body) whose names are compared after retargeting. */
  readonly body: string;
  /** The sql_mode it was created with (triggers and routines keep their own). */
  readonly sqlMode?: string;
  /** `user@host` whose rights it may run with. */
  readonly definer: string;
  /** `DEFINER` or `INVOKER` (triggers and events always run as their definer). */
  readonly security: 'DEFINER' | 'INVOKER';
}

export async function rows<T = RowDataPacket>(connection: Queryable, sql: string, values: unknown[] = []): Promise<T[]> {
  const [result] = await connection.query(sql, values);
  return result as T[];
}

/** The views, triggers, procedures and functions of `database`. */
export async function readSchemaObjects(connection: Queryable, database: string): Promise<SchemaObject[]> {
  const objects: SchemaObject[] = [];
  for (const row of await rows(
    connection,
    `SELECT TABLE_NAME AS name, VIEW_DEFINITION AS body, CHECK_OPTION AS checkOption, DEFINER AS definer, SECURITY_TYPE AS security
       FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?`,
    [database],
  )) {
    objects.push({
      kind: 'view',
      name: String(row.name),
      body: String(row.body),
      signature: `check ${row.checkOption}`,
      definer: String(row.definer),
      security: security(row.security),
    });
  }
  for (const row of await rows(
    connection,
    `SELECT TRIGGER_NAME AS name, ACTION_STATEMENT AS body, EVENT_MANIPULATION AS event, ACTION_TIMING AS timing,
            EVENT_OBJECT_TABLE AS tableName, ACTION_ORDER AS actionOrder, SQL_MODE AS sqlMode, DEFINER AS definer
       FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?`,
    [database],
  )) {
    objects.push({
      kind: 'trigger',
      name: String(row.name),
      body: String(row.body),
      signature: `${row.timing} ${row.event} ON ${row.tableName} #${row.actionOrder}`,
      sqlMode: String(row.sqlMode),
      definer: String(row.definer),
      security: 'DEFINER',
    });
  }
  const parameters = new Map<string, string[]>();
  for (const row of await rows(
    connection,
    `SELECT SPECIFIC_NAME AS name, ROUTINE_TYPE AS type, PARAMETER_MODE AS mode, PARAMETER_NAME AS parameter, DTD_IDENTIFIER AS dtd
       FROM information_schema.PARAMETERS WHERE SPECIFIC_SCHEMA = ? AND ORDINAL_POSITION > 0 ORDER BY SPECIFIC_NAME, ORDINAL_POSITION`,
    [database],
  )) {
    const key = `${row.type}\u0000${row.name}`;
    parameters.set(key, [...(parameters.get(key) ?? []), `${row.mode ?? ''} ${row.parameter} ${row.dtd}`.trim()]);
  }
  for (const row of await rows(
    connection,
    `SELECT ROUTINE_NAME AS name, ROUTINE_TYPE AS type, ROUTINE_DEFINITION AS body, DTD_IDENTIFIER AS returnType,
            IS_DETERMINISTIC AS isDeterministic, SQL_DATA_ACCESS AS access, SQL_MODE AS sqlMode, DEFINER AS definer,
            SECURITY_TYPE AS security
       FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?`,
    [database],
  )) {
    const kind = String(row.type).toLowerCase() === 'function' ? 'function' : 'procedure';
    const params = parameters.get(`${row.type}\u0000${row.name}`) ?? [];
    objects.push({
      kind,
      name: String(row.name),
      body: String(row.body),
      signature: `(${params.join(', ')}) returns ${row.returnType ?? '-'} deterministic ${row.isDeterministic} ${row.access}`,
      sqlMode: String(row.sqlMode),
      definer: String(row.definer),
      security: security(row.security),
    });
  }
  // Events are never copied (they run on a schedule, not for shadow traffic), only reported where they run as someone.
  for (const row of await rows(
    connection,
    'SELECT EVENT_NAME AS name, EVENT_DEFINITION AS body, DEFINER AS definer, SQL_MODE AS sqlMode FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?',
    [database],
  )) {
    objects.push({
      kind: 'event',
      name: String(row.name),
      body: String(row.body),
      signature: '',
      sqlMode: String(row.sqlMode),
      definer: String(row.definer),
      security: 'DEFINER',
    });
  }
  return objects;
}

const security = (value: unknown): 'DEFINER' | 'INVOKER' => (String(value).toUpperCase() === 'INVOKER' ? 'INVOKER' : 'DEFINER');

const ACCOUNT = /^(?:'([^'\\]*)'|`([^`]*)`|([A-Za-z0-9_$.-]+))@(?:'([^'\\]*)'|`([^`]*)`|([A-Za-z0-9_$.%:-]+))$/;

/**
 * An account as `'user'@'host'` (`'shop_shadow'@'%'`, `` `shop_shadow`@`%` ``
 * and `shop_shadow@%` are accepted), safe to put into SQL; throws a TypeError
 * on anything else, so that an option cannot carry SQL of its own.
 */
export function accountLiteral(account: string): string {
  const match = ACCOUNT.exec(account.trim());
  if (!match) throw new TypeError(`not an account: ${JSON.stringify(account)} (write it as 'user'@'host')`);
  const user = match[1] ?? match[2] ?? match[3] ?? '';
  const host = match[4] ?? match[5] ?? match[6] ?? '';
  return `${mysql.escape(user)}@${mysql.escape(host)}`;
}

/** `'shop_shadow'@'%'`, `` `shop_shadow`@`%` `` and `shop_shadow@%` name the same account: `shop_shadow@%`. */
export function accountName(account: string): string {
  return account.replace(/['`"]/g, '');
}

/** `SHOW CREATE …` of an object: the statement that made it. */
export async function showCreateObject(connection: Queryable, database: string, object: SchemaObject): Promise<string> {
  const quoted = `${quote(database)}.${quote(object.name)}`;
  const [row] = await rows(connection, `SHOW CREATE ${object.kind.toUpperCase()} ${quoted}`);
  const column = {
    view: 'Create View',
    trigger: 'SQL Original Statement',
    procedure: 'Create Procedure',
    function: 'Create Function',
    event: 'Create Event',
  }[object.kind];
  const text = row?.[column];
  if (typeof text !== 'string')
    throw new Error(`cannot read the definition of ${object.kind} ${quoted} (SHOW CREATE gave none: is the admin allowed to see it?)`);
  return text;
}

export interface Retargeting {
  /** The production database, whose qualifiers become the shadow database. */
  readonly production: string;
  readonly shadow: string;
  /** Every database on the server, to recognise a qualifier naming another one. */
  readonly databases: readonly string[];
  /** Renames another database's qualifier (`analytics` → `analytics_shadow`); without it they are reported. */
  readonly foreign?: (database: string) => string;
}

export type RetargetResult =
  | { readonly ok: true; readonly text: string; readonly foreign: readonly string[] }
  | { readonly ok: false; readonly reason: string };

/** A backquoted identifier. */
export const quote = (name: string) => `\`${name.replaceAll('`', '``')}\``;
const isName = (token: SqlToken | undefined): token is SqlToken => token?.kind === 'word' || token?.kind === 'identifier';
const isPunct = (token: SqlToken | undefined, text: string) => token?.kind === 'punct' && token.text === text;
const wordIs = (token: SqlToken | undefined, word: string) => token?.kind === 'word' && token.text.toLowerCase() === word;

interface Edit {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

function splice(sql: string, edits: readonly Edit[]): string {
  let out = '';
  let at = 0;
  for (const edit of [...edits].sort((a, b) => a.start - b.start)) {
    out += sql.slice(at, edit.start) + edit.text;
    at = edit.end;
  }
  return out + sql.slice(at);
}

/**
 * Points every `production.` qualifier at the shadow database, outside strings
 * and comments. Qualifiers of other databases are returned in `foreign` (and
 * renamed when `retargeting.foreign` is given).
 */
export function retargetSql(sql: string, dialect: SqlDialect, retargeting: Retargeting): RetargetResult {
  const lexed = lexSql(sql, dialect);
  if (!lexed.ok) return { ok: false, reason: `its definition cannot be read (${lexed.reason})` };
  const tokens = lexed.tokens;
  const production = retargeting.production.toLowerCase();
  const known = new Set(retargeting.databases.map((name) => name.toLowerCase()));
  known.delete('information_schema');
  known.delete(retargeting.shadow.toLowerCase());
  const edits: Edit[] = [];
  const foreign = new Set<string>();
  tokens.forEach((token, i) => {
    if (!isName(token) || !isPunct(tokens[i + 1], '.') || isPunct(tokens[i - 1], '.')) return;
    const name = token.text.toLowerCase();
    if (name === production) edits.push({ start: token.start, end: token.end, text: quote(retargeting.shadow) });
    else if (known.has(name)) {
      foreign.add(token.text);
      if (retargeting.foreign) edits.push({ start: token.start, end: token.end, text: quote(retargeting.foreign(token.text)) });
    }
  });
  return { ok: true, text: splice(sql, edits), foreign: [...foreign] };
}

/** The statement that creates `object` in the shadow database, from production's SHOW CREATE (already retargeted). */
export function shadowCreateStatement(
  create: string,
  dialect: SqlDialect,
  object: SchemaObject,
  shadow: string,
  definer: string | undefined,
): string {
  const lexed = lexSql(create, dialect);
  if (!lexed.ok) throw new Error(`cannot read the definition of ${object.kind} ${object.name}: ${lexed.reason}`);
  const tokens = lexed.tokens;
  const edits: Edit[] = [];
  // DEFINER=…: the shadow copy runs as the given definer (the shadow account), else as whoever syncs.
  const at = tokens.findIndex((token, i) => wordIs(token, 'definer') && isPunct(tokens[i + 1], '='));
  const head = tokens[0] as SqlToken;
  const newDefiner = definer ? ` DEFINER=${accountLiteral(definer)}` : '';
  if (at !== -1) {
    let end = at + 2;
    if (wordIs(tokens[end], 'current_user')) {
      end++;
      if (isPunct(tokens[end], '(') && isPunct(tokens[end + 1], ')')) end += 2;
    } else {
      end++; // user
      if (isPunct(tokens[end], '@')) end += 2; // @host
    }
    edits.push({ start: (tokens[at] as SqlToken).start, end: (tokens[end - 1] as SqlToken).end, text: newDefiner.trim() });
  } else if (newDefiner) {
    edits.push({ start: head.end, end: head.end, text: newDefiner });
  }
  // Views read with the rights of whoever queries them (the shadow account), not the definer's.
  if (object.kind === 'view') {
    tokens.forEach((token, i) => {
      if (wordIs(token, 'security') && wordIs(tokens[i - 1], 'sql') && wordIs(tokens[i + 1], 'definer')) {
        const target = tokens[i + 1] as SqlToken;
        edits.push({ start: target.start, end: target.end, text: 'INVOKER' });
      }
    });
    // A changed definition replaces the old one.
    edits.push({ start: head.end, end: head.end, text: ' OR REPLACE' });
  }
  // An unqualified name is created in whatever database the session uses: qualify it (and a trigger's table).
  const qualify = (keyword: string) => {
    const k = tokens.findIndex((token) => wordIs(token, keyword));
    const name = tokens[k + 1];
    if (k !== -1 && isName(name) && !isPunct(tokens[k + 2], '.'))
      edits.push({ start: name.start, end: name.start, text: `${quote(shadow)}.` });
  };
  if (object.kind === 'procedure' || object.kind === 'function') qualify(object.kind);
  if (object.kind === 'trigger') {
    qualify('trigger');
    qualify('on');
  }
  return splice(create, edits);
}

/** A body's tokens as one comparable string: whitespace and keyword case do not count. */
export function normalizedBody(sql: string, dialect: SqlDialect): string {
  const lexed = lexSql(sql, dialect);
  if (!lexed.ok) return sql.replace(/\s+/g, ' ').trim();
  return lexed.tokens
    .map((token) => (token.kind === 'word' ? token.text.toLowerCase() : token.kind === 'identifier' ? quote(token.text) : token.text))
    .join(' ');
}
