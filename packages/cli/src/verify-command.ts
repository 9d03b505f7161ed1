import { readFileSync, writeFileSync } from 'node:fs';
import { getDefaultPolicy, isolatedSuffix, parseDuration } from '@dye/core';
import type { Command } from 'commander';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pc from 'picocolors';
import { amqpTarget } from './amqp-admin.js';
import { addKafkaAdminOptions, type KafkaAdminOptions, kafkaClient } from './kafka-admin.js';
import type { KafkaStartOffsets, LoadReport } from './load-report.js';
import { incompletePlaces, type MarkerFinding, type MarkerSearch, type SearchedPlace } from './marker-search.js';
import { parseMysqlUrl } from './mysql-url.js';
import { searchAmqp } from './search-amqp.js';
import { searchKafka } from './search-kafka.js';
import { searchMysql } from './search-mysql.js';
import { searchRedis } from './search-redis.js';
import { EXIT, UsageError } from './usage-error.js';

export interface VerifyOptions extends KafkaAdminOptions {
  run?: string;
  since?: string;
  report?: string;
  tenant?: string;
  mysql?: string;
  db: string[];
  redis?: string;
  topic: string[];
  amqp?: string;
  amqpManagement?: string;
  queue: string[];
  maxRows: string;
  maxKeys: string;
  maxMessages: string;
  json?: string;
}

/** What `dye verify` found: `leaks` are findings in production. */
export interface VerifyResult {
  run: string;
  tenant: string;
  since: string;
  findings: MarkerFinding[];
  searched: SearchedPlace[];
  leaks: number;
  notes?: string[];
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** The store options `dye verify` and `dye load --verify` share. */
export function addVerifyStoreOptions(command: Command): Command {
  return addKafkaAdminOptions(
    command
      .option('--mysql <url>', 'MySQL to search, as mysql://root@127.0.0.1:3306/shop (read access to the databases is enough)')
      .option('--db <name>', 'a production database to search (repeat); its <db>_<tenant> twin is searched too', collect, [])
      .option('--redis <url>', 'Redis to search, as redis://127.0.0.1:6379/0 (SCAN, GETRANGE, HGETALL)')
      .option('--kafka <brokers>', 'Kafka brokers to search, comma-separated')
      .option('--topic <name>', 'a topic to search (repeat; default every topic)', collect, [])
      .option(
        '--amqp <url>',
        'RabbitMQ to search, as amqp://user:password@127.0.0.1:5672/<vhost> (reads waiting messages and puts them back)',
      )
      .option('--amqp-management <url>', 'its management API, to list the queues (default http://<the --amqp host>:15672, same user)')
      .option('--queue <name>', 'a RabbitMQ queue to search (repeat; default every queue of the vhost)', collect, [])
      .option('--max-rows <n>', 'newest rows searched per MySQL table', '100000')
      .option('--max-keys <n>', 'Redis keys searched at most', '1000000')
      .option('--max-messages <n>', 'Kafka messages searched per partition, RabbitMQ messages per queue, at most', '1000000'),
  );
}

export function registerVerifyCommand(program: Command): void {
  addVerifyStoreOptions(
    program
      .command('verify')
      .description("prove a load test left production untouched: search production stores for the run's marker (exit 1 if found)")
      .option('--run <id>', 'the run id dye load printed (x-dye-run, {{run}} in bodies)')
      .option('--since <time>', 'when the run started: an ISO time, or a duration ago as 2h (Kafka messages since then are read)')
      .option('--report <load.json>', 'a dye load --json report: its run id, start and tenant')
      .option('--tenant <name>', "the tenant the run was in (default: the report's, else shadow)")
      .option('--json <file>', 'write the findings as JSON'),
  ).action(async (options: VerifyOptions) => {
    process.exitCode = await runVerifyCommand(options);
  });
}

function positive(name: string, value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) throw new UsageError(`${name} must be a whole number above 0, got ${value}`);
  return number;
}

function parseSince(value: string): Date {
  const date = new Date(value);
  if (/^\d{4}-\d{2}-\d{2}/.test(value) && !Number.isNaN(date.getTime())) {
    // A start in the future would search nothing and call it clean.
    if (date.getTime() > Date.now() + 5 * 60_000) throw new UsageError(`--since ${value} is in the future`);
    return date;
  }
  try {
    return new Date(Date.now() - parseDuration(value) * 1000);
  } catch {
    throw new UsageError(`--since takes an ISO time (2026-12-01T14:00:00Z) or a duration ago (2h), got ${JSON.stringify(value)}`);
  }
}

/** `--redis`: a redis:// or rediss:// URL whose path, if any, is a database number. */
function redisUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--redis ${value}: not a URL (redis://host:6379/0)`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new UsageError(`--redis ${value}: use redis:// or rediss://`);
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^(0|[1-9][0-9]{0,4})$/.test(db))
    throw new UsageError(`--redis ${value}: the path is a database number, got ${JSON.stringify(db)}`);
  return value;
}

/** Which run, since when, in which tenant: from --report or the flags. */
function resolveRun(options: VerifyOptions): { run: string; since: Date; tenant: string; kafkaStartOffsets?: KafkaStartOffsets } {
  let report: LoadReport | undefined;
  if (options.report !== undefined) {
    try {
      report = JSON.parse(readFileSync(options.report, 'utf8')) as LoadReport;
    } catch (error) {
      throw new UsageError(`--report ${options.report}: ${(error as Error).message}`);
    }
    if (typeof report?.settings?.run !== 'string') throw new UsageError(`--report ${options.report} is not a dye load --json report`);
  }
  const run = options.run ?? report?.settings.run;
  if (run === undefined) throw new UsageError('name the run: --run <id> (with --since), or --report <load.json>');
  if (!/^[A-Za-z0-9._-]{6,64}$/.test(run)) throw new UsageError(`--run ${JSON.stringify(run)} is not a run id`);
  // A little before the start: clocks of brokers and this machine differ.
  const since =
    options.since !== undefined ? parseSince(options.since) : report ? new Date(Date.parse(report.settings.startedAt) - 60_000) : undefined;
  if (since === undefined || Number.isNaN(since.getTime()))
    throw new UsageError('say when the run started: --since <time>, or --report <load.json>');
  const tenantName = options.tenant ?? report?.settings.tenant ?? 'shadow';
  const resolved = getDefaultPolicy().resolve(tenantName);
  if (!resolved.ok) throw new UsageError(`--tenant: ${resolved.reason}`);
  if (resolved.tenant.kind !== 'isolated')
    throw new UsageError(`--tenant ${tenantName} is not isolated: its writes are production data, there is nothing to verify`);
  // Offsets the load took before it began are exact where --since is not given.
  const offsets = options.since === undefined ? report?.settings.kafkaStartOffsets : undefined;
  return { run, since, tenant: resolved.tenant.name, ...(offsets ? { kafkaStartOffsets: offsets } : {}) };
}

const SYSTEM_DATABASES = new Set(['information_schema', 'mysql', 'performance_schema', 'sys']);

/** Searches every store named in `options` for `run`'s marker. */
export async function verifyRun(
  options: Pick<
    VerifyOptions,
    'mysql' | 'db' | 'redis' | 'kafka' | 'topic' | 'amqp' | 'amqpManagement' | 'queue' | 'maxRows' | 'maxKeys' | 'maxMessages'
  > &
    KafkaAdminOptions,
  run: string,
  since: Date,
  tenant: string,
  kafkaStartOffsets?: KafkaStartOffsets,
): Promise<VerifyResult> {
  const maxRows = positive('--max-rows', options.maxRows);
  const maxKeys = positive('--max-keys', options.maxKeys);
  const maxMessages = positive('--max-messages', options.maxMessages);
  if (!options.mysql && !options.redis && !options.kafka && !options.amqp)
    throw new UsageError('name where to search: --mysql <url>, --redis <url>, --kafka <brokers> and/or --amqp <url>');
  if (options.db.length > 0 && !options.mysql) throw new UsageError('--db needs --mysql <url>');
  if (options.topic.length > 0 && !options.kafka) throw new UsageError('--topic needs --kafka <brokers>');
  if (options.queue.length > 0 && !options.amqp) throw new UsageError('--queue needs --amqp <url>');
  const amqp = options.amqp ? amqpTarget(options) : undefined;
  const searches: MarkerSearch[] = [];
  if (options.mysql) {
    const { config, database } = parseMysqlUrl(options.mysql);
    const connection = await mysql.createConnection({ connectTimeout: 10_000, ...config });
    try {
      // A table another session locks, or a scan that runs long, fails its own
      // query (reported, not searched) instead of holding the search for hours.
      await connection.query('SET SESSION lock_wait_timeout = 10');
      await connection
        .query('SET SESSION max_statement_time = 120')
        .catch(() => connection.query('SET SESSION max_execution_time = 120000'));
      const [rows] = (await connection.query('SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA')) as unknown as [
        Array<{ name: string }>,
      ];
      const existing = new Set(rows.map((row) => row.name));
      const named = options.db.length > 0 ? options.db : database ? [database] : [];
      const twins = named.map((db) => `${db}${isolatedSuffix(tenant)}`);
      const databases =
        named.length > 0 ? [...named, ...twins].filter((db) => existing.has(db)) : [...existing].filter((db) => !SYSTEM_DATABASES.has(db));
      for (const db of named) if (!existing.has(db)) throw new UsageError(`--db ${db}: no such database`);
      for (const db of named)
        if (db.endsWith(isolatedSuffix(tenant)))
          throw new UsageError(`--db ${db} is ${tenant}'s own database: name the production one (its twin is searched with it)`);
      searches.push(await searchMysql(connection, databases, run, tenant, maxRows));
    } finally {
      await connection.end();
    }
  }
  if (options.redis) {
    const redis = new Redis(redisUrl(options.redis), {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      retryStrategy: () => null,
      // A server that takes the connection and never answers fails the search, in seconds.
      connectTimeout: 10_000,
      commandTimeout: 30_000,
    });
    // Errors reach the search's own promises; the client's event would print a stack.
    redis.on('error', () => {});
    try {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        redis.connect(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`--redis ${options.redis}: no answer within 10 s`)), 10_000);
        }),
      ]).finally(() => clearTimeout(timer));
      // ioredis reports a failed SELECT only as an event and carries on in db 0.
      await redis.select(redis.options.db ?? 0);
      searches.push(await searchRedis(redis, run, tenant, maxKeys));
    } finally {
      redis.disconnect();
    }
  }
  if (options.kafka) {
    searches.push(
      await searchKafka(
        kafkaClient(options),
        options.topic.length > 0 ? options.topic : 'all',
        run,
        tenant,
        since,
        maxMessages,
        undefined,
        kafkaStartOffsets,
      ),
    );
  }
  if (amqp) {
    searches.push(await searchAmqp(amqp, options.queue.length > 0 ? options.queue : 'all', run, tenant, since, maxMessages));
  }
  const findings = searches.flatMap((search) => search.findings);
  return {
    run,
    tenant,
    since: since.toISOString(),
    findings,
    searched: searches.flatMap((search) => search.searched),
    leaks: findings.filter((finding) => !finding.isolated).length,
    ...(searches.some((search) => search.notes) ? { notes: searches.flatMap((search) => search.notes ?? []) } : {}),
  };
}

/** Prints a verify result for a person; returns the exit code (1 when production holds the marker). */
export function printVerifyResult(result: VerifyResult): number {
  const lines: string[] = [];
  for (const store of ['mysql', 'redis', 'kafka', 'amqp'] as const) {
    const searched = result.searched.filter((place) => place.store === store);
    if (searched.length === 0) continue;
    lines.push(pc.bold({ mysql: 'MySQL', redis: 'Redis', kafka: 'Kafka', amqp: 'RabbitMQ' }[store]));
    const storeFindings = result.findings.filter((found) => found.store === store);
    const own = storeFindings.filter((found) => found.isolated);
    // Where the run's writes belong can be many places: a count, past a few.
    const listed = own.length > 5 ? storeFindings.filter((found) => !found.isolated) : storeFindings;
    if (own.length > 5) lines.push(`  ${pc.green('✓')} ${own.length} places in ${result.tenant} hold the run (where its writes belong)`);
    for (const finding of listed) {
      lines.push(
        finding.isolated
          ? `  ${pc.green('✓')} ${finding.place}: ${finding.count} (${result.tenant}: where the run's writes belong)`
          : `  ${pc.red('✗')} ${finding.place}: ${finding.count} (production: a leak)`,
      );
    }
    const production = searched.filter((place) => !place.isolated);
    const scanned = production.reduce((total, place) => total + place.scanned, 0);
    const cut = production.filter((place) => place.truncated && place.unread === undefined).map((place) => place.place);
    const [places, items] = {
      mysql: ['table(s)', 'rows'],
      redis: ['database(s)', 'keys'],
      kafka: ['topic(s)', 'messages'],
      amqp: ['queue(s)', 'waiting messages'],
    }[store];
    lines.push(
      `  searched ${store === 'redis' ? 1 : production.length} production ${places}, ${scanned} ${items}${
        cut.length > 0 ? pc.yellow(`; cut short by the bound: ${cut.join(', ')}`) : ''
      }`,
    );
    for (const place of production) if (place.unread !== undefined) lines.push(pc.yellow(`  ! ${place.place}: not read (${place.unread})`));
  }
  for (const note of result.notes ?? []) lines.push(pc.yellow(`note: ${note}`));
  const isolatedHits = result.findings.filter((finding) => finding.isolated).length;
  const incomplete = incompletePlaces(result.searched);
  if (result.leaks > 0) {
    lines.push(pc.red(`LEAK: run ${result.run} is in production at ${result.leaks} place(s)`));
  } else if (incomplete.length > 0) {
    lines.push(
      pc.yellow(
        `NOT PROVEN: run ${result.run} was found in no production place searched, but ${incomplete.length} production place(s) were not read in full (${incomplete
          .map((place) => place.place)
          .slice(0, 5)
          .join(', ')}${incomplete.length > 5 ? ', …' : ''}); raise the bound, or grant the search what it needs`,
      ),
    );
  } else {
    lines.push(pc.green(`production is clean: run ${result.run} is in no production place searched`));
    if (isolatedHits === 0)
      lines.push(
        pc.yellow(
          `note: the run's marker was found nowhere, not even in ${result.tenant}; the proof is only as good as the marker: put {{run}} in the load's body, or have the service keep x-dye-run`,
        ),
      );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return verifyExitCode(result);
}

/** 1 for a leak; 5 when nothing was found but some production place was not read in full; else 0. */
export function verifyExitCode(result: VerifyResult): number {
  if (result.leaks > 0) return EXIT.failed;
  return incompletePlaces(result.searched).length > 0 ? EXIT.unproven : EXIT.ok;
}

export async function runVerifyCommand(options: VerifyOptions): Promise<number> {
  const { run, since, tenant, kafkaStartOffsets } = resolveRun(options);
  process.stderr.write(`${pc.bold('dye verify')} run ${pc.cyan(run)} · tenant ${tenant} · since ${since.toISOString()}\n`);
  let result: VerifyResult;
  try {
    result = await verifyRun(options, run, since, tenant, kafkaStartOffsets);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    // A store that could not be searched proves nothing either way: not a leak (1), not clean (0).
    process.stderr.write(`dye: not proven: the search failed: ${(error as Error).message}\n`);
    return EXIT.unproven;
  }
  if (options.json) writeFileSync(options.json, `${JSON.stringify(result, null, 2)}\n`);
  return printVerifyResult(result);
}
