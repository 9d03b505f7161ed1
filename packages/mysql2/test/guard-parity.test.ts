import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkIsolatedSql, type SqlDialect, sqlDialect } from '../src/index.js';
import { adminConnection } from './support.js';

// The guard and the server must split text the same way. The server is the
// oracle: every text the guard allows is run as root (no grants to stop it)
// on a connection whose database is the shadow one, and the production table
// is counted after each. A guard that reads a quote, comment or versioned
// comment differently from the server lets the hidden DELETE through.

let admin: mysql.Connection;
const suffix = randomBytes(4).toString('hex');
const production = `dye_parity_${suffix}`;
const shadow = `${production}_shadow`;

beforeAll(async () => {
  admin = await adminConnection();
  await admin.query(`CREATE DATABASE \`${production}\`; CREATE DATABASE \`${shadow}\``);
  await admin.query(`CREATE TABLE \`${production}\`.t (id INT PRIMARY KEY); CREATE TABLE \`${shadow}\`.t (id INT PRIMARY KEY)`);
  await admin.query(`INSERT INTO \`${production}\`.t VALUES (1), (2), (3); INSERT INTO \`${shadow}\`.t VALUES (1), (2), (3)`);
  // A column named U+00A0: with it, \`--\u00a0\` is valid SQL to the server (an identifier, not a comment).
  await admin.query(`CREATE TABLE \`${shadow}\`.n (\`\u00a0\` INT); INSERT INTO \`${shadow}\`.n VALUES (5)`);
  await admin.query(`USE \`${shadow}\``);
});

afterAll(async () => {
  await admin.query(`DROP DATABASE IF EXISTS \`${production}\`; DROP DATABASE IF EXISTS \`${shadow}\``);
  await admin.end();
});

// Openers and closers of every kind of literal and comment the two lexers must agree on.
const fragments = [
  '',
  "'",
  '"',
  '`',
  '\\',
  "\\'",
  "''",
  '-- ',
  '--\u00a0',
  '--',
  '#',
  '/*',
  '*/',
  '/*!99999 ',
  '/*!50000 ',
  '/*M!100000 ',
  '/*M!999999 ',
  '/*!',
  '\n',
  "X'",
];
const closers = ['', '*/', "'", '"', '`', '\n'];
const hidden = `DELETE FROM ${production}.t`;

async function productionRows(): Promise<number> {
  const [[row]] = (await admin.query(`SELECT COUNT(*) AS n FROM \`${production}\`.t`)) as unknown as [[{ n: number }]];
  return row.n;
}

async function restoreProduction(): Promise<void> {
  await admin.query(`REPLACE INTO \`${production}\`.t VALUES (1), (2), (3)`);
}

const allowedBy = (dialect: SqlDialect) => (sql: string) =>
  checkIsolatedSql(sql, { productionDatabase: production, isolatedDatabase: shadow, dialect }).ok;

/**
 * Runs each text as root and fails naming the first after which production
 * lost rows. Counted per batch; a batch that lost rows is run again one text
 * at a time to name the culprit.
 */
async function runOnServer(texts: readonly string[], sqlMode: string): Promise<number> {
  let ran = 0;
  const BATCH = 50;
  for (let start = 0; start < texts.length; start += BATCH) {
    const batch = texts.slice(start, start + BATCH);
    for (const sql of batch) {
      await admin.query(sql).then(
        () => ran++,
        () => {},
      );
    }
    if ((await productionRows()) === 3) continue;
    for (const sql of batch) {
      await restoreProduction();
      await admin.query(sql).catch(() => {});
      if ((await productionRows()) !== 3) {
        await restoreProduction();
        expect.fail(`the guard allowed ${JSON.stringify(sql)} (sql_mode ${sqlMode}) and production lost rows`);
      }
    }
  }
  return ran;
}

async function dialectOf(sqlMode: string): Promise<SqlDialect> {
  await admin.query('SET SESSION sql_mode = ?', [sqlMode]);
  const [[info]] = (await admin.query('SELECT VERSION() AS version, @@SESSION.sql_mode AS mode')) as unknown as [
    [{ version: string; mode: string }],
  ];
  return sqlDialect(info.version, info.mode);
}

/**
 * Texts that hide a production write behind openers the guard might read as a
 * literal or comment and the server as code (or the reverse), then closers:
 * - `SELECT 1 <a><b><c>; DELETE FROM prod.t; <d><e>` (86,400 texts);
 * - the same after `SELECT 1 FROM n WHERE 1`, where `--<NBSP>` is valid SQL (a column);
 * - `DELETE p FROM t AS s <a><b><c> JOIN prod.t AS p ON 1 <d>`: a write inside one statement.
 * The guard judges all; the server runs those it allows.
 */
function* texts(): Generator<string> {
  for (const a of fragments)
    for (const b of fragments)
      for (const c of closers)
        for (const d of closers) {
          for (const e of closers) yield `SELECT 1 ${a}${b}${c}; ${hidden}; ${d}${e}`;
          yield `SELECT 1 FROM n WHERE 1 ${a}${b}${c}; ${hidden}; ${d}`;
          yield `DELETE p FROM t AS s ${a}${b}${c} JOIN ${production}.t AS p ON 1 ${d}`;
        }
}

async function exhaustive(sqlMode: string): Promise<{ judged: number; allowed: number; ran: number }> {
  const allowed = allowedBy(await dialectOf(sqlMode));
  const chosen: string[] = [];
  let judged = 0;
  for (const sql of texts()) {
    judged++;
    if (allowed(sql)) chosen.push(sql);
  }
  return { judged, allowed: chosen.length, ran: await runOnServer(chosen, sqlMode) };
}

describe('the guard splits SQL as the server does (the server is the oracle)', () => {
  it.each([
    ['the default sql_mode', 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION'],
    ['NO_BACKSLASH_ESCAPES', 'NO_BACKSLASH_ESCAPES'],
    ['ANSI_QUOTES', 'ANSI_QUOTES'],
    ['both', 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES'],
  ])(
    '%s: 115,200 texts of openers and closers around a hidden DELETE; production never loses a row',
    async (_name, mode) => {
      const { judged, allowed, ran } = await exhaustive(mode);
      expect(judged).toBe(115_200);
      // Meaningful only if many texts were allowed and the server ran them.
      expect(allowed).toBeGreaterThan(5_000);
      expect(ran).toBeGreaterThan(1_000);
      expect(await productionRows()).toBe(3);
    },
    300_000,
  );

  it('random longer texts of the same fragments (fast-check), in the default sql_mode', async () => {
    const mode = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION';
    const dialect = await dialectOf(mode);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom(...fragments, ...closers, ';', hidden, 'SELECT 2'), { minLength: 1, maxLength: 14 }),
        async (parts) => {
          const sql = `SELECT 1 ${parts.join('')}`;
          if (allowedBy(dialect)(sql)) await runOnServer([sql], mode);
        },
      ),
      { numRuns: 3_000 },
    );
    expect(await productionRows()).toBe(3);
  }, 120_000);
});
