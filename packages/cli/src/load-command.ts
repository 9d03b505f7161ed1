import { readFileSync, writeFileSync } from 'node:fs';
import { BASELINE_NAME, getDefaultPolicy, parseDuration, signTenantToken, TENANT_TOKEN_HEADER } from '@dye/core';
import { SingleBar } from 'cli-progress';
import Table from 'cli-table3';
import type { Command } from 'commander';
import pc from 'picocolors';
import { parseAbortRules } from './abort-rules.js';
import { renderHtmlReport } from './html-report.js';
import { type LoadSecond, startLoad } from './load-engine.js';
import type { LoadReport } from './load-report.js';
import { ProductionGuard } from './production-guard.js';
import { secretsFromEnv } from './token-command.js';
import { EXIT, UsageError } from './usage-error.js';

interface LoadOptions {
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
}

const collect = (value: string, previous: string[]) => [...previous, value];
// A token outlives the test by this much: the last requests must not be baseline.
const TOKEN_MARGIN_SECONDS = 300;

export function registerLoadCommand(program: Command): void {
  program
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
    .action(async (url: string, options: LoadOptions) => {
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
  if (tenant.name !== BASELINE_NAME) {
    const [secret] = secretsFromEnv();
    headers[TENANT_TOKEN_HEADER] = signTenantToken(
      { tenant: tenant.name, ttl: Math.min(durationSeconds + TOKEN_MARGIN_SECONDS, 24 * 3600), subject: 'dye-load' },
      secret as string,
    );
  }

  const settings: LoadReport['settings'] = {
    url,
    tenant: tenant.name,
    method,
    rate,
    durationSeconds,
    connections,
    startedAt: new Date().toISOString(),
    ...(probe ? { probe, abortOn: options.abortOn as string } : {}),
  };
  process.stderr.write(
    `${pc.bold('dye load')} ${method} ${url} · tenant ${pc.cyan(tenant.name)} · ${rate} req/s for ${durationSeconds}s on ${connections} connections${
      probe ? ` · guarding ${probe} (${options.abortOn})` : ''
    }\n`,
  );

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
  const onSecond = (second: LoadSecond) => {
    errors += second.errors + second.failedResponses;
    bar.update(Math.min(second.second, durationSeconds), { rps: second.requests, p99: Math.round(second.p99), errors, guard: guardText });
  };
  const run = startLoad(
    { url, rate, durationSeconds, connections, method, headers, timeoutSeconds, ...(body === undefined ? {} : { body }) },
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
  const interrupt = () => {
    outcome = 'interrupted';
    run.stop();
  };
  process.once('SIGINT', interrupt);
  guard?.start();
  let result: Awaited<LoadRunDone>;
  try {
    result = await run.done;
  } finally {
    await guard?.stop();
    process.off('SIGINT', interrupt);
    bar.stop();
  }

  const report: LoadReport = {
    settings,
    summary: result.summary,
    timeline: result.timeline,
    ...(guard ? { guard: { windows: guard.windows, ...(guard.breach ? { breach: guard.breach } : {}) } } : {}),
    outcome,
  };
  process.stdout.write(`${summaryTable(report)}\n`);
  if (options.report) {
    writeFileSync(options.report, renderHtmlReport(report));
    process.stderr.write(`report: ${options.report}\n`);
  }
  if (options.json) {
    writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
    process.stderr.write(`json: ${options.json}\n`);
  }
  if (guard?.breach) {
    process.stderr.write(
      `${pc.red('aborted')}: production breached ${guard.breach.rule.text} (${guard.breach.observed}) at ${guard.breach.window.at.toFixed(1)}s\n`,
    );
    return EXIT.aborted;
  }
  const answered = Object.values(result.summary.statusCodes).reduce((total, count) => total + count, 0);
  if (answered === 0) {
    process.stderr.write(`${pc.red('failed')}: ${url} answered no request (${result.summary.errors} errors)\n`);
    return EXIT.failed;
  }
  return (outcome as LoadReport['outcome']) === 'interrupted' ? 130 : EXIT.ok;
}

type LoadRunDone = ReturnType<typeof startLoad>['done'];

function summaryTable(report: LoadReport): string {
  const { summary } = report;
  const table = new Table({ style: { head: [], border: [] } });
  const percent = summary.requests === 0 ? 0 : ((summary.errors + summary.non2xx) / summary.requests) * 100;
  table.push(
    { requests: `${summary.requests} answered or failed, ${summary.sent} sent` },
    { throughput: `${summary.throughput.toFixed(1)} req/s` },
    { 'latency p50': `${summary.latency.p50} ms` },
    { 'latency p90': `${summary.latency.p90} ms` },
    { 'latency p99': `${summary.latency.p99} ms` },
    { 'latency max': `${summary.latency.max} ms` },
    { errors: `${summary.errors} network/timeouts, ${summary.non2xx} non-2xx (${percent.toFixed(2)}%)` },
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
