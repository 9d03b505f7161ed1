import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { currentTenant, verifyTenantToken } from '@dye/core';
import { tenantMiddleware } from '@dye/http';
import mysql from 'mysql2/promise';
import { afterEach, describe, expect, it } from 'vitest';
import { MYSQL, uniqueName } from '../../../test/support/services.js';
import { dye } from './run-cli.js';

interface Seen {
  at: number;
  req: IncomingMessage;
  /** The token as it arrived (the edge removes it from the headers). */
  token: string | undefined;
  /** The headers as they arrived, before the edge cleaned them. */
  sent: IncomingMessage['headers'];
  /** The tenant the edge served the request in. */
  tenant: string;
}

/**
 * A real edge on loopback: Dye's tenantMiddleware in edge mode with `secret`
 * (answering `x-tenant`), recording each request and the tenant it was served
 * in; it can be made slow, rotated to another secret, made to answer the
 * tenant only in a JSON body, or to go away after its first answer.
 */
async function target(options: { secret?: string; tenantIn?: 'header' | 'json'; goneAfterFirst?: boolean } = {}): Promise<{
  url: string;
  server: Server;
  seen: Seen[];
  delayMs: { value: number };
  /** From now on the edge holds another secret only. */
  rotate(): void;
}> {
  const seen: Seen[] = [];
  const delayMs = { value: 0 };
  const edgeWith = (secret: string) => tenantMiddleware({ mode: 'edge', secrets: [secret], responseHeader: options.tenantIn !== 'json' });
  let edge = edgeWith(options.secret ?? randomBytes(32).toString('base64url'));
  const server = createServer((req, res) => {
    const sent = { ...req.headers };
    const token = sent['x-tenant-token'] as string | undefined;
    edge(req, res, () => {
      const tenant = currentTenant().name;
      seen.push({ at: performance.now(), req, token, sent, tenant });
      req.resume();
      if (options.goneAfterFirst)
        res.on('finish', () => {
          server.close();
          server.closeAllConnections();
        });
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, tenant })), delayMs.value);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    server,
    seen,
    delayMs,
    rotate: () => {
      edge = edgeWith(randomBytes(32).toString('base64url'));
    },
  };
}

/** A server that answers nothing about tenants: a production probe. */
async function plainServer(): Promise<{ url: string; server: Server; seen: Seen[]; delayMs: { value: number } }> {
  const seen: Seen[] = [];
  const delayMs = { value: 0 };
  const server = createServer((req, res) => {
    seen.push({ at: performance.now(), req, token: undefined, sent: req.headers, tenant: 'baseline' });
    req.resume();
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'), delayMs.value);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server, seen, delayMs };
}

describe('dye load', () => {
  const secret = randomBytes(32).toString('base64url');
  const servers: Server[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('sends signed shadow-token requests at the asked rate and writes a table, an HTML report and JSON', async () => {
    const load = await target({ secret });
    servers.push(load.server);
    const dir = mkdtempSync(join(tmpdir(), 'dye-load-'));
    const run = await dye(
      [
        'load',
        load.url,
        '--rate',
        '40',
        '--duration',
        '3s',
        '--connections',
        '4',
        '--header',
        'x-run:abc',
        '--report',
        join(dir, 'r.html'),
        '--json',
        join(dir, 'r.json'),
      ],
      { DYE_SECRET: secret },
    );
    expect(run.code, run.stderr).toBe(0);
    // Every request carried a token for shadow, valid at the edge, and the extra header.
    expect(load.seen.length).toBeGreaterThan(80);
    expect(load.seen.length).toBeLessThan(160);
    expect(load.seen.every((request) => request.tenant === 'shadow')).toBe(true);
    const tokens = new Set(load.seen.map(({ token }) => token));
    expect(tokens.size).toBe(1);
    expect(verifyTenantToken(String([...tokens][0]), secret)).toMatchObject({ ok: true, tenant: 'shadow', subject: 'dye-load' });
    expect(load.seen.every(({ sent }) => sent['x-run'] === 'abc' && sent['x-tenant'] === undefined)).toBe(true);
    // Every request names the run, for dye verify.
    const runIds = new Set(load.seen.map(({ req }) => req.headers['x-dye-run']));
    expect(runIds.size).toBe(1);
    expect(run.stdout).toMatch(/│ requests +│ \d+ sent: \d+ answered, 0 failed, 0 in flight at the end/);
    expect(run.stdout).toMatch(/│ served in +│ shadow × \d+/);
    expect(run.stdout).toMatch(/│ status codes +│ 200 × \d+/);
    expect(run.stdout).toMatch(/│ latency p99 +│ \d+ ms/);

    const report = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'));
    expect(report.outcome).toBe('completed');
    expect(report.settings).toMatchObject({ tenant: 'shadow', rate: 40, durationSeconds: 3, run: [...runIds][0] });
    expect(report.preflight).toMatchObject({ ok: true, served: 'shadow' });
    const summary = report.summary;
    // The preflight and every load request reached the target; each counted once.
    expect(summary.sent + 1).toBe(load.seen.length);
    expect(summary.statusCodes['200']).toBe(summary.answered);
    expect(summary.servedTenants).toEqual({ shadow: summary.answered });
    expect(summary.answered + summary.failed + summary.inFlightAtEnd).toBe(summary.sent);
    expect(summary.sent + summary.notSent).toBe(summary.scheduled);
    expect(summary.scheduled).toBeGreaterThanOrEqual(119);
    expect(summary.scheduled).toBeLessThanOrEqual(121);
    expect(report.timeline.length).toBeGreaterThanOrEqual(3);
    expect(report.timeline.reduce((sum: number, second: { requests: number }) => sum + second.requests, 0)).toBe(summary.answered);
    const html = readFileSync(join(dir, 'r.html'), 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('uPlot'); // the chart library, inlined
    expect(html).not.toMatch(/<script[^>]+src=/); // self-contained
    const embedded = /const report = (.*);\n/.exec(html)?.[1];
    expect(JSON.parse(embedded ?? 'null')).toEqual(report);
  });

  it('aborts with exit 3 within two probe intervals once the production probe breaches --abort-on', async () => {
    const load = await target({ secret });
    const probe = await plainServer();
    servers.push(load.server, probe.server);
    const dir = mkdtempSync(join(tmpdir(), 'dye-guard-'));
    const intervalMs = 1000;
    let slowAt = 0;
    // Production gets slow 3 s into the test.
    const slowDown = setTimeout(() => {
      probe.delayMs.value = 600;
      slowAt = performance.now();
    }, 3000);
    const run = await dye(
      [
        'load',
        load.url,
        '--rate',
        '50',
        '--duration',
        '30s',
        '--probe',
        probe.url,
        '--abort-on',
        'p99>300ms,errors>5%',
        '--probe-interval',
        `${intervalMs}ms`,
        '--json',
        join(dir, 'r.json'),
      ],
      { DYE_SECRET: secret },
    );
    clearTimeout(slowDown);
    expect(run.code, run.stdout + run.stderr).toBe(3);
    expect(run.stderr).toMatch(/aborted: production breached p99>300ms \(p99 = \d+ ms\)/);
    // The load stopped: its last request reached the target within two probe
    // intervals of the slowdown (plus 100 ms of timer slack on a busy machine).
    const lastLoad = Math.max(...load.seen.map((request) => request.at));
    expect(lastLoad - slowAt).toBeLessThanOrEqual(2 * intervalMs + 100);
    expect(lastLoad - slowAt).toBeGreaterThan(0);
    // Probes carried no tenant: they measure production.
    expect(probe.seen.every(({ req }) => req.headers['x-tenant-token'] === undefined && req.headers['x-tenant'] === undefined)).toBe(true);
    const report = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'));
    expect(report.outcome).toBe('aborted');
    expect(report.guard.breach.rule.text).toBe('p99>300ms');
    expect(report.guard.windows.length).toBeGreaterThanOrEqual(3);
  });

  it('a secret the edge does not hold: the preflight comes back baseline, exit 4, one request reached production and no load was sent', async () => {
    const load = await target();
    servers.push(load.server);
    const dir = mkdtempSync(join(tmpdir(), 'dye-wrong-'));
    const run = await dye(
      [
        'load',
        load.url,
        '--method',
        'POST',
        '--body',
        '{"sku":"apple"}',
        '--rate',
        '50',
        '--duration',
        '3s',
        '--json',
        join(dir, 'r.json'),
      ],
      { DYE_SECRET: secret },
    );
    expect(run.code, run.stderr).toBe(4);
    expect(run.stderr).toMatch(
      /wrong tenant: the preflight POST .* was served in baseline with status 200, not in shadow; no load was sent/,
    );
    expect(run.stderr).toMatch(/DYE_SECRET/);
    // Judged at the target: the preflight alone, in baseline.
    expect(load.seen.map((request) => request.tenant)).toEqual(['baseline']);
    const report = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'));
    expect(report.outcome).toBe('wrong-tenant');
    expect(report.summary).toBeUndefined();
  });

  it('with --preflight on a GET endpoint, a wrong secret sends nothing to the load endpoint', async () => {
    const load = await target();
    servers.push(load.server);
    const run = await dye(
      [
        'load',
        `${load.url}orders`,
        '--method',
        'POST',
        '--body',
        '{}',
        '--preflight',
        `${load.url}health`,
        '--rate',
        '50',
        '--duration',
        '2s',
      ],
      { DYE_SECRET: secret },
    );
    expect(run.code, run.stderr).toBe(4);
    expect(load.seen.map(({ req }) => `${req.method} ${req.url}`)).toEqual(['GET /health']);
  });

  it('an edge that drops the secret mid-run: the run stops at the first answer in another tenant, exit 4, counted and reported', async () => {
    const load = await target({ secret });
    servers.push(load.server);
    const dir = mkdtempSync(join(tmpdir(), 'dye-midrun-'));
    // 1.5 s in, the edge rotates to another secret: the load's token is no longer valid there.
    const rotate = setTimeout(() => load.rotate(), 1500);
    const connections = 4;
    const run = await dye(
      [
        'load',
        load.url,
        '--rate',
        '100',
        '--duration',
        '20s',
        '--connections',
        String(connections),
        '--json',
        join(dir, 'r.json'),
        '--report',
        join(dir, 'r.html'),
      ],
      { DYE_SECRET: secret },
    );
    clearTimeout(rotate);
    expect(run.code, run.stderr).toBe(4);
    expect(run.stderr).toMatch(
      /wrong tenant: \d+ response\(s\) served in another tenant than shadow \(header x-tenant\); the first, request #\d+, in baseline/,
    );
    const inBaseline = load.seen.filter((request) => request.tenant === 'baseline');
    expect(inBaseline.length).toBeGreaterThan(0);
    // Only what was in flight when the first wrong answer came: at most one per connection.
    expect(inBaseline.length).toBeLessThanOrEqual(connections);
    const report = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'));
    expect(report.outcome).toBe('wrong-tenant');
    expect(report.summary.mismatched).toBeGreaterThanOrEqual(1);
    expect(report.summary.servedTenants.baseline).toBe(report.summary.mismatched);
    expect(report.summary.answered + report.summary.failed + report.summary.inFlightAtEnd).toBe(report.summary.sent);
    expect(readFileSync(join(dir, 'r.html'), 'utf8')).toContain('served in another tenant');
  });

  it('reads the served tenant from a JSON body field; none runs unchecked and says so', async () => {
    const load = await target({ secret, tenantIn: 'json' });
    servers.push(load.server);
    const byHeader = await dye(['load', load.url, '--rate', '20', '--duration', '1s'], { DYE_SECRET: secret });
    // The edge answers no x-tenant header: the header check cannot pass.
    expect(byHeader.code, byHeader.stderr).toBe(4);
    expect(byHeader.stderr).toMatch(/did not say a tenant \(header x-tenant\)/);
    const byJson = await dye(['load', load.url, '--rate', '20', '--duration', '1s', '--served-tenant', 'json:tenant'], {
      DYE_SECRET: secret,
    });
    expect(byJson.code, byJson.stderr).toBe(0);
    expect(byJson.stdout).toMatch(/│ served in +│ shadow × \d+/);
    const unchecked = await dye(['load', load.url, '--rate', '20', '--duration', '1s', '--served-tenant', 'none'], { DYE_SECRET: secret });
    // Nothing says which tenant served it: not proven (exit 5) unless --verify proves production clean.
    expect(unchecked.code, unchecked.stderr).toBe(5);
    expect(unchecked.stderr).toMatch(/unchecked: --served-tenant none; nothing proves/);
    expect(unchecked.stderr).toMatch(
      /not proven: \d+ request\(s\) got no response that says which tenant served them \(--served-tenant none\)/,
    );
  });

  it('connection errors are sent at the rate, never faster, and count against an errors rule of --abort-on', async () => {
    // The target answers the preflight, then goes away: every later request fails to connect.
    const load = await target({ secret, goneAfterFirst: true });
    const probe = await plainServer();
    servers.push(probe.server);
    const dir = mkdtempSync(join(tmpdir(), 'dye-down-'));
    const plain = await dye(['load', load.url, '--rate', '5', '--duration', '2s', '--json', join(dir, 'plain.json')], {
      DYE_SECRET: secret,
    });
    expect(plain.code, plain.stderr).toBe(1);
    const report = JSON.parse(readFileSync(join(dir, 'plain.json'), 'utf8'));
    expect(report.outcome).toBe('failed');
    expect(report.summary.sent).toBeLessThanOrEqual(11);
    expect(report.summary.failed).toBe(report.summary.sent);
    expect(report.summary.answered).toBe(0);

    const guarded = await target({ secret, goneAfterFirst: true });
    const aborted = await dye(
      ['load', guarded.url, '--rate', '20', '--duration', '10s', '--probe', probe.url, '--abort-on', 'errors>50%'],
      { DYE_SECRET: secret },
    );
    expect(aborted.code, aborted.stderr).toBe(3);
    expect(aborted.stderr).toMatch(/aborted: the load target failed 100\.0% of requests .* breaching errors>50%/);
  });

  it('a target slower than rate ÷ connections: slots are skipped and counted, never queued', async () => {
    const load = await target({ secret });
    servers.push(load.server);
    load.delayMs.value = 400;
    const dir = mkdtempSync(join(tmpdir(), 'dye-slow-'));
    const run = await dye(['load', load.url, '--rate', '50', '--duration', '2s', '--connections', '2', '--json', join(dir, 'r.json')], {
      DYE_SECRET: secret,
    });
    expect(run.code, run.stderr).toBe(0);
    const { summary } = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'));
    expect(summary.notSent).toBeGreaterThan(50);
    expect(summary.sent + summary.notSent).toBe(summary.scheduled);
    // Two connections at 400 ms each: about 5 requests a second each.
    expect(summary.sent).toBeLessThanOrEqual(14);
    expect(run.stdout).toMatch(/not sent: every connection busy/);
  });

  it('--verify: a shadow run whose rows land in the twin database is clean; with a wrong secret the preflight row is found in production', async () => {
    const database = uniqueName('load_verify');
    const db = await mysql.createConnection({ ...MYSQL });
    try {
      for (const name of [database, `${database}_shadow`]) {
        await db.query(`CREATE DATABASE \`${name}\``);
        await db.query(`CREATE TABLE \`${name}\`.orders (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT)`);
      }
      // A service behind Dye's edge that writes each request's body where its tenant's data lives.
      const guard = tenantMiddleware({ mode: 'edge', secrets: [secret] });
      const server = createServer((req, res) =>
        guard(req, res, () => {
          let body = '';
          req.on('data', (chunk) => (body += chunk));
          req.on('end', async () => {
            const tenant = currentTenant();
            const into = tenant.kind === 'isolated' ? `${database}_shadow` : database;
            await db.query(`INSERT INTO \`${into}\`.orders (body) VALUES (?)`, [body]);
            res.writeHead(201).end();
          });
        }),
      );
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/orders`;
      const mysqlUrl = `mysql://${encodeURIComponent(MYSQL.user)}:${encodeURIComponent(MYSQL.password)}@${MYSQL.host}:${MYSQL.port}`;
      const args = ['load', url, '--method', 'POST', '--body', '{"run":"{{run}}","n":{{seq}}}', '--rate', '20', '--duration', '1s'];
      const verify = ['--verify', '--verify-delay', '100ms', '--mysql', mysqlUrl, '--db', database];
      const dir = mkdtempSync(join(tmpdir(), 'dye-load-verify-'));

      const clean = await dye([...args, ...verify, '--json', join(dir, 'clean.json')], { DYE_SECRET: secret });
      expect(clean.code, clean.stdout + clean.stderr).toBe(0);
      expect(clean.stdout).toMatch(/production is clean/);
      const cleanReport = JSON.parse(readFileSync(join(dir, 'clean.json'), 'utf8'));
      expect(cleanReport.verify.leaks).toBe(0);
      // The marker is where it belongs: the proof could have found it.
      expect(cleanReport.verify.findings).toEqual([
        { store: 'mysql', place: `${database}_shadow.orders.body`, count: cleanReport.summary.answered + 1, isolated: true },
      ]);

      const wrong = await dye([...args, ...verify, '--json', join(dir, 'wrong.json')], {
        DYE_SECRET: randomBytes(32).toString('base64url'),
      });
      expect(wrong.code, wrong.stdout + wrong.stderr).toBe(4);
      expect(wrong.stdout).toMatch(new RegExp(`✗ ${database}\\.orders\\.body: 1 \\(production: a leak\\)`));
      const wrongReport = JSON.parse(readFileSync(join(dir, 'wrong.json'), 'utf8'));
      expect(wrongReport.verify.leaks).toBe(1);
      const [rows] = (await db.query(`SELECT COUNT(*) AS n FROM \`${database}\`.orders`)) as unknown as [Array<{ n: number }>];
      expect(Number(rows[0]?.n)).toBe(1);
    } finally {
      await db.query(`DROP DATABASE IF EXISTS \`${database}\``);
      await db.query(`DROP DATABASE IF EXISTS \`${database}_shadow\``);
      await db.end();
    }
  }, 60_000);

  it('refuses a tenant that is not isolated unless told, and bad usage, with exit 2 and one line', async () => {
    for (const [args, message] of [
      [['load', 'http://127.0.0.1:1/', '--tenant', 'red'], /not isolated: its writes would be production data/],
      [['load', 'ftp://x/'], /http:\/\/ or https:\/\//],
      [['load', 'http://127.0.0.1:1/', '--rate', '0'], /--rate must be a whole number/],
      [['load', 'http://127.0.0.1:1/', '--duration', 'forever'], /--duration/],
      [['load', 'http://127.0.0.1:1/', '--probe', 'http://127.0.0.1:1/'], /--probe and --abort-on go together/],
      [['load', 'http://127.0.0.1:1/', '--probe', 'http://127.0.0.1:1/', '--abort-on', 'p99<1'], /--abort-on: cannot read/],
      [['load', 'http://127.0.0.1:1/', '--header', 'x-tenant:red'], /dye sets the tenant itself/],
      [['load', 'http://127.0.0.1:1/', '--header', 'nocolon'], /name:value/],
      [['load', 'http://127.0.0.1:1/', '--body', '@/does/not/exist'], /--body @\/does\/not\/exist/],
      [['load', 'http://127.0.0.1:1/', '--served-tenant', 'cookie:x'], /--served-tenant takes header:<name>/],
      [['load', 'http://127.0.0.1:1/', '--served-tenant', 'json:'], /--served-tenant takes/],
      [['load', 'http://127.0.0.1:1/', '--run', 'a b'], /--run takes/],
      [['load', 'http://127.0.0.1:1/', '--preflight', 'nope'], /--preflight is not a URL/],
      [['load', 'http://127.0.0.1:1/', '--verify'], /--verify needs where to search/],
      [['load', 'http://127.0.0.1:1/', '--redis', 'redis://127.0.0.1:6379'], /add --verify/],
    ] as const) {
      const run = await dye(args, { DYE_SECRET: secret });
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(run.stderr, args.join(' ')).toMatch(message);
    }
  });

  it('exits 1 when the target answers nothing, before any load', async () => {
    const run = await dye(['load', 'http://127.0.0.1:1/', '--rate', '20', '--duration', '1s', '--timeout', '1s'], { DYE_SECRET: secret });
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toMatch(/answered no request/);
  });
});
