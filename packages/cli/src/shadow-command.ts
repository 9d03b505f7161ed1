import {
  type GrantAmqpShadowAccessResult,
  grantShadowAccess as grantAmqpShadowAccess,
  type SyncShadowTopologyResult,
  syncShadowTopology,
} from '@dye/amqplib';
import { isolatedName } from '@dye/core';
import { grantShadowAccess as grantRedisShadowAccess, type GrantShadowAccessResult as RedisGrantResult } from '@dye/ioredis';
import {
  type GrantKafkaShadowAccessResult,
  grantShadowAccess as grantKafkaShadowAccess,
  type SyncShadowTopicsResult,
  syncShadowTopics,
} from '@dye/kafkajs';
import {
  checkShadowSchema,
  type GrantShadowAccessResult,
  grantShadowAccess,
  type ShadowSchemaReport,
  type SyncShadowSchemaResult,
  syncShadowSchema,
} from '@dye/mysql2';
import amqplib from 'amqplib';
import type { Command } from 'commander';
import { Cluster, Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pc from 'picocolors';
import { type AmqpAdminOptions, addAmqpAdminOptions, amqpTarget } from './amqp-admin.js';
import { addKafkaAdminOptions, type KafkaAdminOptions, kafkaAdmin } from './kafka-admin.js';
import { parseMysqlUrl } from './mysql-url.js';
import { EXIT, UsageError } from './usage-error.js';

interface ShadowOptions extends KafkaAdminOptions, AmqpAdminOptions {
  exchange: string[];
  queue: string[];
  mysql?: string;
  db?: string;
  definer?: string;
  rewriteForeignDatabases?: boolean;
  copyTable: string[];
  topic: string[];
  tenant: string;
  apply?: boolean;
  recreate?: boolean;
  json?: boolean;
}

interface ShadowOutcome {
  mysql?: ShadowSchemaReport | SyncShadowSchemaResult;
  kafka?: SyncShadowTopicsResult;
  amqp?: SyncShadowTopologyResult;
  inSync: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];

function addShadowOptions(command: Command): Command {
  return addAmqpAdminOptions(addKafkaAdminOptions(command))
    .option('--exchange <name>', 'RabbitMQ: a production exchange to twin (repeat for more; default every one)', collect, [])
    .option('--queue <name>', 'RabbitMQ: a production queue to twin (repeat for more; default every one)', collect, [])
    .option('--mysql <url>', 'admin connection, as mysql://root@127.0.0.1:3306 (the database may be in the URL)')
    .option('--db <name>', 'the production database (shop → shop_shadow)')
    .option('--kafka <brokers>', 'Kafka brokers, comma-separated')
    .option('--topic <name>', 'a production topic (repeat for more)', collect, [])
    .option('--tenant <name>', 'the isolated tenant', 'shadow')
    .option('--definer <account>', "the shadow account shadow triggers run as, as 'shop_shadow'@'%'")
    .option('--json', 'print the result as JSON');
}

export function registerShadowCommands(program: Command): void {
  const shadow = program.command('shadow').description("create and check isolated tenants' databases and topics");

  addShadowOptions(
    shadow
      .command('sync')
      .description('bring <db>_shadow and <topic>_shadow in line with production (a dry run without --apply)')
      .option('--apply', 'make the changes (additive: missing database, tables, views, columns, indexes, topics)')
      .option('--recreate', 'with --apply: drop and recreate tables whose drift is not additive (their shadow rows are lost)')
      .option('--copy-table <table>', 'with --apply: copy this table’s rows from production (repeat for more)', collect, [])
      .option('--rewrite-foreign-databases', 'point views, triggers and routines naming another database at its isolated twin'),
  ).action(async (options: ShadowOptions) => {
    const outcome = await runShadow(options, options.apply === true);
    print(outcome, options, options.apply ? 'sync' : 'dry-run');
    process.exitCode = EXIT.ok;
  });

  const grant = shadow
    .command('grant')
    .description(
      'create or fix the account isolated tenants connect as, confined by the server to <db>_<tenant> (MySQL), <tenant>:* keys and channels (Redis) or <topic>_<tenant> topics and <group>_<tenant> groups (Kafka ACLs); a dry run without --apply',
    )
    .option('--mysql <url>', 'MySQL admin connection, as mysql://root@127.0.0.1:3306 (the database may be in the URL)')
    .option('--redis <url>', 'Redis admin connection, as redis://127.0.0.1:6379 (a cluster node: every node gets the user)')
    .option('--kafka <brokers>', 'Kafka brokers, comma-separated: ACLs for the principal User:<user>')
    .option(
      '--amqp <url>',
      'RabbitMQ as an administrator (amqp://admin:secret@host:5672/<vhost>): the user gets only <name>_<tenant> in that vhost',
    )
    .option('--amqp-management <url>', 'the RabbitMQ management API (default http://<the --amqp host>:15672, same user)')
    .option('--topic <name>', 'Kafka: a production topic (repeat for more): the principal gets <topic>_<tenant>', collect, [])
    .option('--group <name>', 'Kafka: a production consumer group (repeat for more): the principal gets <group>_<tenant>', collect, [])
    .option(
      '--transactional-id <id>',
      'Kafka: a production transactional id (repeat for more): the principal gets <id>_<tenant>',
      collect,
      [],
    )
    .option('--channel-pattern <pattern>', 'Redis: a pattern the service PSUBSCRIBEs to (repeat for more)', collect, [])
    .option('--db <name>', 'a production database (repeat for more): the account gets <db>_<tenant>', collect, [])
    .option('--tenant <name>', 'an isolated tenant (repeat for more; default shadow)', collect, [])
    .requiredOption('--user <name>', "the shadow account's user name")
    .option('--host <pattern>', "the account's host pattern", '%')
    .option(
      '--password-env <name>',
      'the environment variable holding its password (never taken from the command line)',
      'DYE_SHADOW_PASSWORD',
    )
    .option('--max-user-connections <n>', 'connections the account may hold at once (0: no limit)', '50')
    .option('--apply', 'run the statements')
    .option('--json', 'print the result as JSON');
  addKafkaAdminOptions(grant).action(async (options: GrantOptions) => {
    const stores = [options.mysql, options.redis, options.kafka, options.amqp].filter(Boolean).length;
    if (stores !== 1) throw new UsageError('name one store to grant on: --mysql <url>, --redis <url>, --kafka <brokers> or --amqp <url>');
    if (!options.kafka && (options.topic.length > 0 || options.group.length > 0 || options.transactionalId.length > 0))
      throw new UsageError('--topic, --group and --transactional-id are for --kafka');
    if (options.redis) printRedisGrant(await runRedisGrant(options), options);
    else if (options.amqp) printAmqpGrant(await runAmqpGrant(options), options);
    else if (options.kafka) {
      const result = await runKafkaGrant(options);
      printKafkaGrant(result, options);
      if (result.conflicts.length > 0) {
        process.exitCode = EXIT.failed;
        return;
      }
    } else printGrant(await runGrant(options), options);
    process.exitCode = EXIT.ok;
  });

  addShadowOptions(
    shadow.command('check').description('report drift between production and its shadow resources; exit 1 when there is any'),
  ).action(async (options: ShadowOptions) => {
    const outcome = await runShadow({ ...options, copyTable: [] }, false);
    print(outcome, options, 'check');
    process.exitCode = outcome.inSync ? EXIT.ok : EXIT.failed;
  });
}

async function runShadow(options: ShadowOptions, apply: boolean): Promise<ShadowOutcome> {
  if (!options.mysql && !options.kafka && !options.amqp)
    throw new UsageError('name what to sync: --mysql <url> --db <name>, --kafka <brokers> --topic <name>, and/or --amqp <url>');
  if (!options.amqp && (options.exchange.length > 0 || options.queue.length > 0))
    throw new UsageError('--exchange and --queue are for --amqp <url>');
  if (options.kafka && options.topic.length === 0) throw new UsageError('--kafka needs at least one --topic');
  if (options.topic.length > 0 && !options.kafka) throw new UsageError('--topic needs --kafka <brokers>');
  if ((options.copyTable?.length ?? 0) > 0 && !apply) throw new UsageError('--copy-table copies rows, so it needs --apply');
  try {
    isolatedName('mysql-database', 'x', options.tenant);
  } catch (error) {
    throw new UsageError(`--tenant ${options.tenant}: ${(error as Error).message.replace(/^isolatedName: /, '')}`);
  }
  const outcome: ShadowOutcome = { inSync: true };
  if (options.mysql) {
    const { connection, database } = await connectMysql(options.mysql, options.db);
    try {
      outcome.mysql = apply
        ? await syncShadowSchema({
            connection,
            database,
            tenant: options.tenant,
            apply: true,
            ...(options.recreate ? { recreate: true } : {}),
            ...(options.rewriteForeignDatabases ? { rewriteForeignDatabases: true } : {}),
            ...(options.definer ? { definer: options.definer } : {}),
            copyTables: options.copyTable ?? [],
          })
        : await checkShadowSchema({
            connection,
            database,
            tenant: options.tenant,
            ...(options.definer ? { definer: options.definer } : {}),
          });
      outcome.inSync &&= isMysqlInSync(outcome.mysql, apply);
    } finally {
      await connection.end();
    }
  }
  if (options.kafka) {
    const admin = kafkaAdmin(options);
    await admin.connect();
    try {
      outcome.kafka = await syncShadowTopics({ admin, topics: options.topic, tenant: options.tenant, apply });
      outcome.inSync &&= outcome.kafka.inSync;
    } finally {
      await admin.disconnect();
    }
  }
  if (options.amqp) {
    const target = amqpTarget(options);
    // Only an apply declares anything, over AMQP; reading is the management API's.
    const connection = apply ? await amqplib.connect(target.url) : undefined;
    try {
      outcome.amqp = await syncShadowTopology({
        management: target.management,
        vhost: target.vhost,
        tenants: [options.tenant],
        ...(options.exchange.length > 0 ? { exchanges: options.exchange } : {}),
        ...(options.queue.length > 0 ? { queues: options.queue } : {}),
        ...(connection ? { connection, apply: true } : {}),
      });
      // After an apply, what is left is drift a declaration cannot fix.
      outcome.inSync &&= apply ? outcome.amqp.drift.length === 0 && outcome.amqp.absent.length === 0 : outcome.amqp.inSync;
    } finally {
      await connection?.close();
    }
  }
  return outcome;
}

interface GrantOptions extends KafkaAdminOptions, AmqpAdminOptions {
  mysql?: string;
  redis?: string;
  topic: string[];
  group: string[];
  transactionalId: string[];
  channelPattern: string[];
  db: string[];
  tenant: string[];
  user: string;
  host: string;
  passwordEnv: string;
  maxUserConnections: string;
  apply?: boolean;
  json?: boolean;
}

async function runGrant(options: GrantOptions): Promise<GrantShadowAccessResult> {
  const tenants = options.tenant.length > 0 ? options.tenant : ['shadow'];
  for (const tenant of tenants) {
    try {
      isolatedName('mysql-database', 'x', tenant);
    } catch (error) {
      throw new UsageError(`--tenant ${tenant}: ${(error as Error).message.replace(/^isolatedName: /, '')}`);
    }
  }
  const password = process.env[options.passwordEnv];
  const maxUserConnections = Number(options.maxUserConnections);
  if (!Number.isInteger(maxUserConnections) || maxUserConnections < 0) {
    throw new UsageError(`--max-user-connections must be a whole number ≥ 0, got ${options.maxUserConnections}`);
  }
  const { connection, database } = await connectMysql(options.mysql as string, options.db[0]);
  try {
    return await grantShadowAccess(connection, {
      database: options.db.length > 0 ? options.db : [database],
      tenants,
      user: options.user,
      host: options.host,
      maxUserConnections,
      ...(password ? { password } : {}),
      apply: options.apply === true,
    });
  } catch (error) {
    if (error instanceof TypeError && /give a password/.test(error.message)) {
      throw new UsageError(`${error.message.replace('give a password', `set ${options.passwordEnv}`)}`);
    }
    throw error;
  } finally {
    await connection.end();
  }
}

async function runRedisGrant(options: GrantOptions): Promise<RedisGrantResult> {
  const tenants = options.tenant.length > 0 ? options.tenant : ['shadow'];
  if (options.db.length > 0) throw new UsageError('--db is for --mysql; Redis users are confined by key prefix');
  const password = process.env[options.passwordEnv];
  const admin = await connectRedis(options.redis as string);
  try {
    return await grantRedisShadowAccess(admin, {
      tenants,
      user: options.user,
      ...(password ? { password } : {}),
      channelPatterns: options.channelPattern,
      apply: options.apply === true,
    });
  } catch (error) {
    if (error instanceof TypeError) throw new UsageError(error.message.replace('give a password', `set ${options.passwordEnv}`));
    throw error;
  } finally {
    admin.disconnect();
  }
}

async function runAmqpGrant(options: GrantOptions): Promise<GrantAmqpShadowAccessResult> {
  if (options.db.length > 0) throw new UsageError('--db is for --mysql; RabbitMQ users are confined by name patterns');
  const target = amqpTarget(options);
  const password = process.env[options.passwordEnv];
  try {
    return await grantAmqpShadowAccess({
      management: target.management,
      vhost: target.vhost,
      user: options.user,
      ...(password ? { password } : {}),
      tenants: options.tenant.length > 0 ? options.tenant : ['shadow'],
      apply: options.apply === true,
    });
  } catch (error) {
    if (error instanceof TypeError)
      throw new UsageError(error.message.replace(/give a password|needs a password/, `set ${options.passwordEnv}`));
    throw error;
  }
}

function printAmqpGrant(result: GrantAmqpShadowAccessResult, options: GrantOptions): void {
  if (options.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const wanted = result.wanted;
  const lines = [
    pc.bold(
      `RabbitMQ user ${result.user} in vhost ${result.vhost} → configure ${wanted.configure}, write ${wanted.write}, read ${wanted.read}`,
    ),
  ];
  for (const change of result.changes) lines.push(`  ${pc.cyan(result.applied ? '+' : '·')} ${change}`);
  if (result.inSync) lines.push(`  ${pc.green('✓')} confined to its isolated exchanges and queues, nothing to do`);
  else if (!result.applied) lines.push(pc.dim('dry run: nothing changed; add --apply to make these changes'));
  else lines.push(`  ${pc.green('✓')} confined to its isolated exchanges and queues`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function runKafkaGrant(options: GrantOptions): Promise<GrantKafkaShadowAccessResult> {
  const tenants = options.tenant.length > 0 ? options.tenant : ['shadow'];
  if (options.db.length > 0) throw new UsageError('--db is for --mysql; Kafka principals are confined by topic and group ACLs');
  if (options.topic.length === 0) throw new UsageError('--kafka needs at least one --topic');
  for (const tenant of tenants) {
    try {
      isolatedName('kafka-topic', 'x', tenant);
    } catch (error) {
      throw new UsageError(`--tenant ${tenant}: ${(error as Error).message.replace(/^isolatedName: /, '')}`);
    }
  }
  const admin = kafkaAdmin(options);
  await admin.connect();
  try {
    return await grantKafkaShadowAccess({
      admin,
      principal: `User:${options.user}`,
      topics: options.topic,
      groups: options.group,
      transactionalIds: options.transactionalId,
      tenants,
      host: options.host === '%' ? '*' : options.host,
      apply: options.apply === true,
    });
  } catch (error) {
    if (error instanceof TypeError) throw new UsageError(error.message);
    throw error;
  } finally {
    await admin.disconnect();
  }
}

function printKafkaGrant(result: GrantKafkaShadowAccessResult, options: GrantOptions): void {
  if (options.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const describe = (acl: GrantKafkaShadowAccessResult['wanted'][number]) =>
    `${acl.permission} ${acl.operation} on ${acl.resourceType} ${acl.resourceName}${acl.patternType === 'LITERAL' ? '' : ` (${acl.patternType})`}${acl.host === '*' ? '' : ` from ${acl.host}`}`;
  const lines = [pc.bold(`Kafka principal ${result.principal} → ${[...new Set(result.wanted.map((acl) => acl.resourceName))].join(', ')}`)];
  for (const acl of result.remove) lines.push(`  ${pc.red(result.applied ? '-' : '·')} remove ${describe(acl)}`);
  for (const acl of result.create) lines.push(`  ${pc.cyan(result.applied ? '+' : '·')} add ${describe(acl)}`);
  for (const acl of result.conflicts)
    lines.push(
      `  ${pc.red('✗')} ${describe(acl)} for User:* reaches production too and cannot be denied to this principal alone; remove it`,
    );
  if (result.conflicts.length > 0) lines.push(pc.red('not confined: every principal is allowed more than its isolated topics'));
  else if (result.inSync) lines.push(`  ${pc.green('✓')} confined to its isolated topics and groups, nothing to do`);
  else if (!result.applied) lines.push(pc.dim('dry run: nothing changed; add --apply to change these ACLs'));
  else lines.push(`  ${pc.green('✓')} confined to its isolated topics and groups`);
  lines.push(
    pc.dim(
      'the SASL user itself lives in the broker (SCRAM credentials or the JAAS file); the broker must run with allow.everyone.if.no.acl.found=false',
    ),
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** A Redis admin connection; a cluster node turns into a connection to the whole cluster. */
async function connectRedis(url: string): Promise<Redis | Cluster> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--redis ${url} is not a URL (redis://host:port)`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new UsageError(`--redis ${url}: use redis:// or rediss://`);
  const node = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  node.on('error', () => {});
  await node.connect();
  const info = String(await node.info('cluster'));
  if (!/cluster_enabled:1/.test(info)) return node;
  node.disconnect();
  const cluster = new Cluster([{ host: parsed.hostname, port: Number(parsed.port || 6379) }], {
    redisOptions: {
      ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
      ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
      ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
    },
  });
  cluster.on('error', () => {});
  return cluster;
}

function printRedisGrant(result: RedisGrantResult, options: GrantOptions): void {
  if (options.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const lines = [pc.bold(`Redis user ${result.user} → keys ${result.keys.join(' ')}, channels ${result.channels.join(' ')}`)];
  for (const command of result.commands) lines.push(`  ${pc.cyan(result.applied ? '+' : '·')} ${command}`);
  if (result.commands.length === 0) lines.push(`  ${pc.green('✓')} confined to its isolated keys and channels, nothing to do`);
  else if (!result.applied) lines.push(pc.dim('dry run: nothing changed; add --apply to run these commands'));
  else lines.push(`  ${pc.green('✓')} confined to its isolated keys and channels`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

function printGrant(result: GrantShadowAccessResult, options: GrantOptions): void {
  if (options.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const lines = [pc.bold(`MySQL account ${result.account} → ${result.databases.join(', ')}`)];
  for (const statement of result.statements) lines.push(`  ${pc.cyan(result.applied ? '+' : '·')} ${statement}`);
  if (result.statements.length === 0) lines.push(`  ${pc.green('✓')} confined to its isolated databases, nothing to do`);
  else if (!result.applied) lines.push(pc.dim('dry run: nothing changed; add --apply to run these statements'));
  else lines.push(`  ${pc.green('✓')} confined to its isolated databases`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

function isMysqlInSync(report: ShadowSchemaReport | SyncShadowSchemaResult, applied: boolean): boolean {
  // After an apply, what is left is what could not be fixed additively.
  if (applied && 'unresolved' in report) return report.unresolved.length === 0;
  return report.inSync;
}

async function connectMysql(url: string, db: string | undefined): Promise<{ connection: mysql.Connection; database: string }> {
  const { config, database: named } = parseMysqlUrl(url);
  const database = db ?? named;
  if (!database) throw new UsageError('name the production database: --db <name>, or mysql://…/<db>');
  return { connection: await mysql.createConnection(config), database };
}

function print(outcome: ShadowOutcome, options: ShadowOptions, mode: 'sync' | 'dry-run' | 'check'): void {
  if (options.json) {
    process.stdout.write(`${JSON.stringify(outcome, null, 2)}\n`);
    return;
  }
  const lines: string[] = [];
  const ok = (text: string) => lines.push(`  ${pc.green('✓')} ${text}`);
  const bad = (text: string) => lines.push(`  ${pc.red('✗')} ${text}`);
  const note = (text: string) => lines.push(`  ${pc.cyan('+')} ${text}`);
  if (outcome.mysql) {
    const report = outcome.mysql;
    lines.push(pc.bold(`MySQL ${report.database} → ${report.shadowDatabase}`));
    if ('applied' in report) {
      for (const statement of report.applied) note(statement.replace(/\s+/g, ' ').slice(0, 160));
      for (const copy of report.copied) note(`copied ${copy.rows} rows of ${copy.table}`);
      for (const drift of report.unresolved) bad(`${describeDrift(drift)} (needs --recreate)`);
      if (report.applied.length === 0 && report.copied.length === 0 && report.unresolved.length === 0) ok('in sync, nothing to do');
    } else {
      if (!report.shadowDatabaseExists) bad(`database ${report.shadowDatabase} does not exist`);
      for (const table of report.missingTables) bad(`table ${table} missing`);
      for (const view of report.missingViews) bad(`view ${view} missing`);
      for (const trigger of report.missingTriggers) bad(`trigger ${trigger} missing`);
      for (const routine of report.missingRoutines) bad(`${routine} missing`);
      for (const reference of report.foreignReferences) bad(`${reference.kind} ${reference.name} cannot be copied: ${reference.reason}`);
      for (const object of report.elevatedObjects)
        bad(`${object.kind} ${object.name} in ${report.shadowDatabase} runs as ${object.definer}`);
      for (const table of report.extraTables) lines.push(`  ${pc.yellow('!')} table ${table} exists only in shadow (never dropped)`);
      for (const drift of report.drift) bad(describeDrift(drift));
      if (report.inSync) ok('in sync');
    }
  }
  if (outcome.kafka) {
    const result = outcome.kafka;
    lines.push(
      pc.bold(`Kafka ${options.topic.join(', ')} → ${options.topic.map((t) => isolatedName('kafka-topic', t, options.tenant)).join(', ')}`),
    );
    for (const topic of result.created) note(`created ${topic}`);
    for (const topic of result.missing) bad(`topic ${topic} missing`);
    for (const drift of result.drift) {
      bad(
        drift.kind === 'partitions'
          ? `${drift.shadowTopic}: ${drift.shadow} partitions, production ${drift.topic} has ${drift.production}`
          : `${drift.shadowTopic}: config ${drift.name} = ${drift.shadow ?? '(default)'}, production has ${drift.production ?? '(default)'}`,
      );
    }
    if (result.inSync && result.created.length === 0) ok('in sync');
  }
  if (outcome.amqp) {
    const result = outcome.amqp;
    lines.push(pc.bold(`RabbitMQ → twins for ${options.tenant}`));
    const declared = (declaration: SyncShadowTopologyResult['missing'][number]) =>
      declaration.kind === 'binding'
        ? `binding ${declaration.source || '(default)'} → ${declaration.destinationType} ${declaration.destination} (${JSON.stringify(declaration.routingKey)})`
        : `${declaration.kind} ${declaration.name}`;
    for (const declaration of result.created) note(`declared ${declared(declaration)}`);
    for (const declaration of result.missing) bad(`${declared(declaration)} missing`);
    for (const drift of result.drift)
      bad(
        `${drift.resource} ${drift.shadowName}: ${drift.kind}${drift.setting ? ` ${drift.setting}` : ''} — production ${JSON.stringify(drift.production)}, shadow ${JSON.stringify(drift.shadow)}`,
      );
    for (const { kind, name } of result.absent) bad(`${kind} ${name} does not exist in production`);
    for (const skipped of result.skipped) lines.push(`  ${pc.yellow('!')} ${skipped.kind} ${skipped.name} gets no twin: ${skipped.reason}`);
    if (result.inSync && result.created.length === 0) ok('in sync');
  }
  if (mode === 'dry-run' && !outcome.inSync) lines.push(pc.dim('dry run: nothing changed; add --apply to make the additive changes'));
  if (mode === 'check') lines.push(outcome.inSync ? pc.green('no drift') : pc.red('drift found'));
  process.stdout.write(`${lines.join('\n')}\n`);
}

function describeDrift(drift: { table: string; kind: string; name?: string; production?: string | null; shadow?: string | null }): string {
  const where = drift.name ? `${drift.table}.${drift.name}` : drift.table;
  const show = (value: string | null | undefined) => (value === null || value === undefined ? '(none)' : value);
  return `${where}: ${drift.kind.replace(/-/g, ' ')} — production ${show(drift.production)}, shadow ${show(drift.shadow)}`;
}
