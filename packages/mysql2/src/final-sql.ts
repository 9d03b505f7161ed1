import mysql, { type PoolConnection as CoreConnection } from 'mysql2';
import createNamedPlaceholderCompiler from 'named-placeholders';

/** A statement as it will go to the server: the final text, and how to hand it to mysql2 so it sends exactly that. */
export interface FinalSql {
  /** What the server will parse: values and identifier placeholders already in it. */
  readonly text: string;
  /** The argument for mysql2's query/execute: the caller's options, `sql` = `text`, `values` an array. */
  readonly options: Readonly<Record<string, unknown>>;
}

export type SqlMethod = 'query' | 'execute';

/** Why a statement could not be turned into final text; the caller refuses it. */
export class UnreadableSql extends Error {}

const convertNamedPlaceholders = createNamedPlaceholderCompiler();

/**
 * Turns what a caller passed to `query`/`execute` into the text the server
 * will read, reading every input once: the `sql` of an options object once,
 * values formatted once (`?`, `??`, named placeholders, `mysql.raw`,
 * `toSqlString()`), by mysql2's own `format` on the connection that will send
 * it. What comes back is handed to mysql2 with an array of values, which makes
 * mysql2 send the text unchanged: `query` formats with no values (a no-op),
 * `execute` binds the values as parameters (never SQL).
 */
export function finalSql(core: CoreConnection, method: SqlMethod, query: unknown, values: unknown): FinalSql {
  const config = core.config as { queryFormat?: unknown; namedPlaceholders?: boolean };
  if (typeof config.queryFormat === 'function') throw new UnreadableSql('a custom queryFormat rewrites SQL after Dye reads it');
  let options: Record<string, unknown>;
  let sql: unknown;
  let given: unknown = values;
  if (typeof query === 'string') {
    sql = query;
    options = {};
  } else if (query !== null && typeof query === 'object' && !Array.isArray(query)) {
    const object = query as Record<string, unknown>;
    sql = object.sql;
    const ownValues = object.values;
    options = { ...object };
    if (ownValues !== undefined) given = ownValues;
  } else {
    throw new UnreadableSql('SQL must be a string or a { sql, values } object');
  }
  if (typeof sql !== 'string') throw new UnreadableSql('the SQL text is not a string');
  const named = (options.namedPlaceholders as boolean | undefined) ?? config.namedPlaceholders === true;
  if (method === 'query') {
    // mysql2's format(sql, values, namedPlaceholders): its typings omit the third parameter.
    const format = core.format as unknown as (sql: string, values: unknown, named: boolean) => unknown;
    const text = format.call(core, sql, given ?? [], named);
    if (typeof text !== 'string') throw new UnreadableSql('mysql2 did not format the SQL to text');
    return { text, options: { ...options, sql: text, values: [] } };
  }
  // execute: the text is prepared, values are bound parameters.
  let text = sql;
  let bound: unknown = given;
  if (named && given !== undefined && given !== null && !Array.isArray(given)) {
    const [converted, array] = convertNamedPlaceholders(sql, given as Record<string, unknown>) as [string, unknown[] | undefined];
    text = converted;
    bound = array ?? [];
  }
  if (bound !== undefined && !Array.isArray(bound))
    throw new UnreadableSql('execute takes an array of values (or an object with namedPlaceholders)');
  return { text, options: { ...options, sql: text, values: bound ?? [] } };
}

/**
 * How mysql2 turns the text into bytes on this connection, as far as the guard
 * is concerned: `full` when every character reaches the server as itself
 * (UTF-8, CESU-8: a non-ASCII character never becomes an ASCII byte), or the
 * highest character code a single-byte encoding keeps (latin1 255, ascii 127).
 * Node writes a character beyond that as its low byte: U+0127 would reach the
 * server as a quote the guard never saw.
 */
export type TextEncoding = { readonly kind: 'full' } | { readonly kind: 'single-byte'; readonly name: string; readonly highest: number };

const SINGLE_BYTE: Readonly<Record<string, number>> = { latin1: 0xff, ascii: 0x7f };
const SERVER_CHARSETS = /^(utf8|utf8mb3|utf8mb4|latin1|ascii)$/i;

/**
 * The encoding of a connection, or why the guard cannot read for it: GBK,
 * Big5, SJIS and the like can end a multi-byte character in a quote or
 * backslash byte; a server reading the session in another character set than
 * mysql2 writes (an init_connect SET NAMES) is refused the same way.
 */
export function connectionEncoding(core: CoreConnection, serverCharset: string): TextEncoding | string {
  const charsetNumber = (core.config as { charsetNumber?: number }).charsetNumber ?? 0;
  const encoding = (mysql.CharsetToEncoding as string[])[charsetNumber];
  if (!SERVER_CHARSETS.test(serverCharset)) return `the server reads this session as ${serverCharset}, not utf8mb4, utf8 or latin1`;
  if (encoding === 'utf8' || encoding === 'cesu8') return { kind: 'full' };
  const highest = encoding === undefined ? undefined : SINGLE_BYTE[encoding];
  if (encoding !== undefined && highest !== undefined) return { kind: 'single-byte', name: encoding, highest };
  return `the connection character set (${encoding ?? charsetNumber}) is not utf8mb4, utf8 or latin1`;
}

/** The first character of `text` the encoding would not send as itself, or -1. */
export function unencodable(text: string, encoding: TextEncoding): number {
  if (encoding.kind === 'full') return -1;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > encoding.highest) return i;
  return -1;
}
