import { randomBytes } from 'node:crypto';
import { accessSync, constants, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { BASELINE_NAME, getDefaultPolicy, parseDuration, signTenantToken, TENANT_TOKEN_HEADER } from '@dye/core';
import { SingleBar } from 'cli-progress';
import Table from 'cli-table3';
import type { Command } from 'commander';
import pc from 'picocolors';
import { parseAbortRules } from './abort-rules.js';
import { renderHtmlReport } from './html-report.js';
import { kafkaClient } from './kafka-admin.js';
import { type LoadSecond, type LoadSummary, startLoad } from './load-engine.js';
import type { LoadReport } from './load-report.js';
import { checkPreflight } from './preflight.js';
import { ProductionGuard } from './production-guard.js';
import { kafkaEndOffsets } from './search-kafka.js';
import { parseServedTenant } from './served-tenant.js';
import { secretsFromEnv } from './token-command.js';
import { EXIT, UsageError } from './usage-error.js';
import {
  addVerifyStoreOptions,
  printVerifyResult,
  type VerifyOptions,
  type VerifyResult,
  verifyExitCode,
  verifyRun,
} from './verify-command.js';

interface LoadOptions extends Omit<VerifyOptions, 'run' | 'since' | 'report' | 'tenant' | 'json'> {
  verify?: boolean;
  verifyDelay: string;
  tenant: string;
  rate: string;
  duration: string;
  connections: string;
  method: string;
  body?: string;
  header: string[];
  timeout: string;
  probe?: string;
  abortOn?: string;
  probeInterval: string;
  report?: string;
  json?: string;
  allowProductionData?: boolean;
  servedTenant: string;
  preflight?: string;
  run?: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];
// A token outlives the test by this much: the last requests must not be baseline.
const TOKEN_MARGIN_SECONDS = 300;

export function registerLoadCommand(program: Command): void {
  const command = program
    .command('load')
    .description('send a load test in a tenant (shadow by default) with signed tokens; stop when production suffers')
    .argument('<url>', 'the public endpoint to load, as https://shop.example.com/orders')
    .option('--tenant <name>', 'the tenant of the load (an isolated one: its writes stay out of production)', 'shadow')
    .option('--rate <n>', 'requests per second, all connections together', '100')
    .option('--duration <time>', 'how long: 30s, 5m', '30s')
    .option('--connections <n>', 'concurrent connections', '10')
    .option('--method <verb>', 'HTTP method', 'GET')
    .option('--body <text|@file>', 'request body, or @path to read it from a file')
    .option('--header <name:value>', 'an extra request header (repeat for more)', collect, [])
    .option('--timeout <time>', 'per-request timeout', '10s')
    .option('--probe <url>', 'a baseline (production) endpoint to sample during the test')
    .option('--abort-on <rules>', "when the probe breaches these, abort (exit 3): 'p99>300ms,errors>1%'")
    .option('--probe-interval <time>', 'how often the probe window is judged', '1s')
    .option('--report <file.html>', 'write a self-contained HTML report with latency and throughput over time')
    .option('--json <file>', 'write the full result as JSON')
    .option('--allow-production-data', 'load in a tenant that is not isolated (its writes are production data)')
    .option(
      '--served-tenant <where>',
      'where a response says the tenant it was served in: header:<name>, json:<field> (dotted), or none for an edge that does not say (unchecked)',
      'header:x-tenant',
    )
    .option(
      '--preflight <url>',
      'a side-effect-free endpoint (GET) whose answer must be in the tenant before any load is sent; default: the first load request itself',
    )
    .option('--run <id>', 'the run id sent as x-dye-run and put in the body for {{run}} (default: a new one)')
    .option('--verify', 'after the run, search the stores named below for the run id, as dye verify (exit 1 if production holds it)')
    .option('--verify-delay <time>', 'how long to let queued work (consumers, jobs) finish before verifying', '3s');
  addVerifyStoreOptions(command).action(async (url: string, options: LoadOptions) => {
    process.exitCode = await runLoadCommand(url, options);
  });
}

function positiveInteger(name: string, value: string, max: number): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1 || number > max)
    throw new UsageError(`${name} must be a whole number from 1 to ${max}, got ${value}`);
  return number;
}

function duration(name: string, value: string): number {
  try {
    return parseDuration(value);
  } catch (error) {
    throw new UsageError(`${name}: ${(error as Error).message}`);
  }
}

function milliseconds(name: string, value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s)$/.exec(value.trim());
  if (!match) throw new UsageError(`${name} takes ms or s, as 500ms or 1s; got ${value}`);
  const ms = Number(match[1]) * (match[2] === 's' ? 1000 : 1);
  if (ms < 100) throw new UsageError(`${name} must be at least 100ms`);
  return ms;
}

function checkUrl(name: string, value: string): string {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new UsageError(`${name} is not a URL: ${value}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new UsageError(`${name} must be http:// or https://, got ${parsed.protocol}`);
  return parsed.toString();
}

function parseHeaders(headers: readonly string[]): Record<string, string> {
  const parsed: Record<string, string> = {};
  for (const header of headers) {
    const colon = header.indexOf(':');
    const name = header.slice(0, colon).trim().toLowerCase();
    if (colon <= 0 || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name))
      throw new UsageError(`--header must be name:value, got ${JSON.stringify(header)}`);
    if (name === TENANT_TOKEN_HEADER || name === 'x-tenant' || name === 'baggage') {
      throw new UsageError(`--header ${name}: dye sets the tenant itself (--tenant); a second one would conflict`);
    }
    parsed[name] = header.slice(colon + 1).trim();
  }
  return parsed;
}

export async function runLoadCommand(rawUrl: string, options: LoadOptions): Promise<number> {
  const url = checkUrl('<url>', rawUrl);
  const rate = positiveInteger('--rate', options.rate, 1_000_000);
  const durationSeconds = duration('--duration', options.duration);
  const connections = positiveInteger('--connections', options.connections, 10_000);
  const timeoutSeconds = duration('--timeout', options.timeout);
  const method = options.method.toUpperCase();
  if (!/^[A-Z]+$/.test(method)) throw new UsageError(`--method is not an HTTP method: ${options.method}`);
  const headers = parseHeaders(options.header);
  let body: string | undefined;
  if (options.body !== undefined) {
    if (options.body.startsWith('@')) {
      try {
        body = readFileSync(options.body.slice(1), 'utf8');
      } catch (error) {
        throw new UsageError(`--body ${options.body}: ${(error as Error).message}`);
      }
    } else {
      body = options.body;
    }
    headers['content-type'] ??= body.trimStart().startsWith('{') || body.trimStart().startsWith('[') ? 'application/json' : 'text/plain';
  }
  if ((options.probe === undefined) !== (options.abortOn === undefined)) throw new UsageError('--probe and --abort-on go together');
  const rules = options.abortOn === undefined ? undefined : parseAbortRules(options.abortOn);
  const probe = options.probe === undefined ? undefined : checkUrl('--probe', options.probe);
  const probeIntervalMs = milliseconds('--probe-interval', options.probeInterval);

  // The tenant: a token signed with DYE_SECRET, as a tester at the public edge has it.
  const resolved = getDefaultPolicy().resolve(options.tenant);
  if (!resolved.ok) throw new UsageError(`--tenant: ${resolved.reason}`);
  const tenant = resolved.tenant;
  if (tenant.kind !== 'isolated' && !options.allowProductionData) {
    throw new UsageError(
      `tenant ${tenant.name} is not isolated: its writes would be production data. Use an isolated tenant (shadow, shadow-<name>) or pass --allow-production-data`,
    );
  }
  const servedTenant = parseServedTenant(options.servedTenant);
  const verifyDelayMs = milliseconds('--verify-delay', options.verifyDelay);
  if (options.verify && !options.mysql && !options.redis && !options.kafka && !options.amqp)
    throw new UsageError('--verify needs where to search: --mysql <url>, --redis <url>, --kafka <brokers> and/or --amqp <url>');
  if (!options.verify && (options.mysql || options.redis || options.kafka || options.amqp))
    throw new UsageError('--mysql, --redis, --kafka and --amqp are where --verify searches; add --verify');
  // A report that cannot be written is found now, not after the load was sent.
  for (const [flag, file] of [
    ['--json', options.json],
    ['--report', options.report],
  ] as const) {
    if (file === undefined) continue;
    try {
      accessSync(dirname(resolve(file)), constants.W_OK);
    } catch {
      throw new UsageError(`${flag} ${file}: its directory cannot be written`);
    }
  }
  const preflightUrl = options.preflight === undefined ? undefined : checkUrl('--preflight', options.preflight);
  // The preflight vouches for the edge the load goes to: another origin proves nothing about it.
  if (preflightUrl !== undefined && new URL(preflightUrl).origin !== new URL(url).origin)
    throw new UsageError(`--preflight must be on the load's origin (${new URL(url).origin}), got ${new URL(preflightUrl).origin}`);
  if (options.run !== undefined && !/^[A-Za-z0-9._-]{6,64}$/.test(options.run))
    throw new UsageError('--run takes 6 to 64 letters, digits, dots, dashes or underscores');
  const runId = options.run ?? `dye-${new Date().toISOString().slice(0, 10).replaceAll('-', '')}-${randomBytes(6).toString('hex')}`;
  if (tenant.name !== BASELINE_NAME) {
    const [secret] = secretsFromEnv();
    headers[TENANT_TOKEN_HEADER] = signTenantToken(
      { tenant: tenant.name, ttl: Math.min(durationSeconds + TOKEN_MARGIN_SECONDS, 24 * 3600), subject: 'dye-load' },
      secret as string,
    );
  }

  const settings: LoadReport['settings'] = {
    url,
    run: runId,
    servedTenant: servedTenant.description,
    tenant: tenant.name,
    method,
    rate,
    durationSeconds,
    connections,
    startedAt: new Date().toISOString(),
    ...(probe ? { probe, abortOn: options.abortOn as string } : {}),
  };
  if (options.verify && options.kafka) {
    // Where every partition ends now: the search after the load starts there,
    // whatever timestamps the run's messages carry.
    settings.kafkaStartOffsets = await kafkaEndOffsets(kafkaClient(options), options.topic.length > 0 ? options.topic : 'all');
  }
  process.stderr.write(
    `${pc.bold('dye load')} ${method} ${url} · tenant ${pc.cyan(tenant.name)} · ${rate} req/s for ${durationSeconds}s on ${connections} connections${
      probe ? ` · guarding ${probe} (${options.abortOn})` : ''
    }\n`,
  );

  // One request first, alone: a load in the wrong tenant is found before it is sent.
  const preflight = await checkPreflight({
    url: preflightUrl ?? url,
    method: preflightUrl ? 'GET' : method,
    headers: { ...headers, 'x-dye-run': runId },
    ...(preflightUrl || body === undefined ? {} : { body: body.replaceAll('{{run}}', runId).replaceAll('{{seq}}', '0') }),
    timeoutSeconds,
    servedTenant,
    tenant: tenant.name,
  });
  if (!preflight.ok) {
    process.stderr.write(`${pc.red(preflight.answered ? 'wrong tenant' : 'failed')}: ${preflight.message}\n`);
    const verify = preflight.answered ? await verifyAfter(options, runId, settings, tenant.name, verifyDelayMs) : undefined;
    const report: LoadReport = {
      settings,
      preflight,
      ...(verify ? { verify } : {}),
      outcome: preflight.answered ? 'wrong-tenant' : 'failed',
    };
    writeReports(report, options);
    return preflight.answered ? EXIT.wrongTenant : EXIT.failed;
  }
  if (!servedTenant.checks)
    process.stderr.write(
      `${pc.yellow('unchecked')}: --served-tenant none; nothing proves the target serves these requests in ${tenant.name}\n`,
    );
  else process.stderr.write(`preflight: served in ${pc.cyan(tenant.name)} (${servedTenant.description}) · run ${runId}\n`);

  const bar = new SingleBar({
    format: ' {bar} {percentage}% | {value}/{total}s | {rps} req/s | p99 {p99} ms | errors {errors}{guard}',
    barsize: 30,
    stream: process.stderr,
    hideCursor: true,
    noTTYOutput: true,
    notTTYSchedule: 5000,
  });
  let errors = 0;
  let guardText = '';
  bar.start(durationSeconds, 0, { rps: 0, p99: 0, errors: 0, guard: '' });
  // The load's own connection errors and timeouts count against an errors rule too: a target that stopped answering is not load.
  const errorRule = rules?.find((rule) => rule.metric === 'errors');
  let loadBreach: string | undefined;
  const onSecond = (second: LoadSecond) => {
    errors += second.errors + second.failedResponses;
    if (errorRule && second.requests > 0 && loadBreach === undefined) {
      const share = second.errors / second.requests;
      if (errorRule.inclusive ? share >= errorRule.threshold : share > errorRule.threshold) {
        loadBreach = `the load target failed ${(share * 100).toFixed(1)}% of requests (connection errors and timeouts) in second ${second.second}, breaching ${errorRule.text}`;
        outcome = 'aborted';
        run.stop();
      }
    }
    bar.update(Math.min(second.second, durationSeconds), { rps: second.requests, p99: Math.round(second.p99), errors, guard: guardText });
  };
  const run = startLoad(
    {
      url,
      rate,
      durationSeconds,
      connections,
      method,
      headers,
      timeoutSeconds,
      runId,
      servedTenant,
      tenant: tenant.name,
      ...(body === undefined ? {} : { body }),
    },
    onSecond,
  );

  let outcome: LoadReport['outcome'] = 'completed';
  const guard = probe && rules ? new ProductionGuard({ url: probe, rules, intervalMs: probeIntervalMs }) : undefined;
  guard?.on('window', (window) => {
    guardText = ` | production p99 ${Math.round(window.p99)} ms`;
  });
  guard?.on('breach', () => {
    outcome = 'aborted';
    run.stop();
  });
  let signal: NodeJS.Signals | undefined;
  const interrupt = (received: NodeJS.Signals) => {
    signal = received;
    outcome = 'interrupted';
    run.stop();
  };
  // Ctrl-C, and a CI job or a container stopped: the results are written either way.
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  guard?.start();
  let result: Awaited<LoadRunDone>;
  try {
    result = await run.done;
  } finally {
    await guard?.stop();
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    bar.stop();
  }

  const { summary } = result;
  const verify = await verifyAfter(options, runId, settings, tenant.name, verifyDelayMs);
  if (result.end === 'wrong-tenant') outcome = 'wrong-tenant';
  else if (summary.answered === 0 && outcome === 'completed') outcome = 'failed';
  const report: LoadReport = {
    settings,
    preflight,
    summary,
    timeline: result.timeline,
    ...(guard ? { guard: { windows: guard.windows, ...(guard.breach ? { breach: guard.breach } : {}) } } : {}),
    ...(loadBreach ? { loadBreach } : {}),
    ...(verify ? { verify } : {}),
    outcome,
  };
  process.stdout.write(`${summaryTable(report)}\n`);
  writeReports(report, options);
  if (result.end === 'wrong-tenant') {
    const first = summary.firstMismatch;
    process.stderr.write(
      `${pc.red('wrong tenant')}: ${summary.mismatched} response(s) served in another tenant than ${tenant.name} (${servedTenant.description}); the first, request #${first?.seq}, in ${first?.served} with status ${first?.status}. The run stopped at once${
        summary.inFlightAtEnd > 0
          ? `; ${summary.inFlightAtEnd} more were in flight and cancelled, and the edge may have served them in ${first?.served} too`
          : ''
      }.\n`,
    );
    return EXIT.wrongTenant;
  }
  if (verify && verify.leaks > 0) return EXIT.failed;
  if (loadBreach) {
    process.stderr.write(`${pc.red('aborted')}: ${loadBreach}\n`);
    return EXIT.aborted;
  }
  if (guard?.breach) {
    process.stderr.write(
      `${pc.red('aborted')}: production breached ${guard.breach.rule.text} (${guard.breach.observed}) at ${guard.breach.window.at.toFixed(1)}s\n`,
    );
    return EXIT.aborted;
  }
  if (summary.answered === 0) {
    process.stderr.write(`${pc.red('failed')}: ${url} answered no request (${summary.failed} failed)\n`);
    return EXIT.failed;
  }
  if ((outcome as LoadReport['outcome']) === 'interrupted') return signal === 'SIGTERM' ? 143 : 130;
  // A request no response came back for (a timeout, a reset) may have been
  // served in any tenant: only a clean, complete --verify proves it was not.
  const unconfirmed = servedTenant.checks ? summary.failed + summary.inFlightAtEnd : summary.sent;
  if (verify) return verifyExitCode(verify);
  if (unconfirmed > 0) {
    process.stderr.write(
      `${pc.yellow('not proven')}: ${unconfirmed} request(s) got no response that says which tenant served them${
        servedTenant.checks ? ' (they failed or timed out)' : ' (--served-tenant none)'
      }; they may have been served in production. Run with --verify, or dye verify --run ${runId}, to prove production untouched.\n`,
    );
    return EXIT.unproven;
  }
  return EXIT.ok;
}

type LoadRunDone = ReturnType<typeof startLoad>['done'];

/** With --verify: waits for queued work to settle, searches the stores for the run id and prints what it found. */
async function verifyAfter(
  options: LoadOptions,
  runId: string,
  settings: LoadReport['settings'],
  tenant: string,
  delayMs: number,
): Promise<VerifyResult | undefined> {
  if (!options.verify) return undefined;
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  process.stderr.write(`${pc.bold('verify')}: searching for run ${runId}\n`);
  let result: VerifyResult;
  try {
    result = await verifyRun(options, runId, new Date(Date.parse(settings.startedAt) - 60_000), tenant, settings.kafkaStartOffsets);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    // The search failed: the run is not proven, and the report says why.
    process.stderr.write(`verify: the search failed: ${(error as Error).message}\n`);
    result = {
      run: runId,
      tenant,
      since: settings.startedAt,
      findings: [],
      searched: [
        {
          store: options.mysql ? 'mysql' : options.redis ? 'redis' : options.kafka ? 'kafka' : 'amqp',
          place: '(the search failed)',
          scanned: 0,
          truncated: false,
          isolated: false,
          unread: (error as Error).message,
        },
      ],
      leaks: 0,
    };
  }
  printVerifyResult(result);
  return result;
}

function writeReports(report: LoadReport, options: LoadOptions): void {
  if (options.report) {
    writeFileSync(options.report, renderHtmlReport(report));
    process.stderr.write(`report: ${options.report}\n`);
  }
  if (options.json) {
    writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
    process.stderr.write(`json: ${options.json}\n`);
  }
}

function summaryTable(report: LoadReport): string {
  const summary = report.summary as LoadSummary;
  const table = new Table({ style: { head: [], border: [] } });
  const finished = summary.answered + summary.failed;
  const percent = finished === 0 ? 0 : ((summary.failed + summary.non2xx) / finished) * 100;
  table.push(
    { run: report.settings.run },
    {
      requests: `${summary.sent} sent: ${summary.answered} answered, ${summary.failed} failed, ${summary.inFlightAtEnd} in flight at the end${
        summary.notSent > 0 ? ` (${summary.notSent} of ${summary.scheduled} scheduled not sent: every connection busy)` : ''
      }`,
    },
    {
      'served in':
        Object.entries(summary.servedTenants)
          .map(([served, count]) => `${served} × ${count}`)
          .join(', ') || 'none',
    },
    { throughput: `${summary.throughput.toFixed(1)} req/s` },
    { 'latency p50': `${summary.latency.p50} ms` },
    { 'latency p90': `${summary.latency.p90} ms` },
    { 'latency p99': `${summary.latency.p99} ms` },
    { 'latency max': `${summary.latency.max} ms` },
    { errors: `${summary.failed} network/timeouts, ${summary.non2xx} non-2xx (${percent.toFixed(2)}%)` },
    {
      'status codes':
        Object.entries(summary.statusCodes)
          .map(([code, count]) => `${code} × ${count}`)
          .join(', ') || 'none',
    },
    { outcome: report.outcome },
  );
  return table.toString();
}
