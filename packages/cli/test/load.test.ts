import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyTenantToken } from '@dye/core';
import { afterEach, describe, expect, it } from 'vitest';
import { dye } from './run-cli.js';

/** A real HTTP server on loopback that records what reached it and can be made slow. */
async function target(): Promise<{
  url: string;
  server: Server;
  seen: { at: number; req: IncomingMessage }[];
  delayMs: { value: number };
}> {
  const seen: { at: number; req: IncomingMessage }[] = [];
  const delayMs = { value: 0 };
  const server = createServer((req, res) => {
    seen.push({ at: performance.now(), req });
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
    const load = await target();
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
    const tokens = new Set(load.seen.map(({ req }) => req.headers['x-tenant-token']));
    expect(tokens.size).toBe(1);
    expect(verifyTenantToken(String([...tokens][0]), secret)).toMatchObject({ ok: true, tenant: 'shadow', subject: 'dye-load' });
    expect(load.seen.every(({ req }) => req.headers['x-run'] === 'abc' && req.headers['x-tenant'] === undefined)).toBe(true);
    expect(run.stdout).toMatch(/│ requests +│ \d+ answered or failed, \d+ sent/);
    expect(run.stdout).toMatch(/│ status codes +│ 200 × \d+/);
    expect(run.stdout).toMatch(/│ latency p99 +│ \d+ ms/);

    const report = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'));
    expect(report.outcome).toBe('completed');
    expect(report.settings).toMatchObject({ tenant: 'shadow', rate: 40, durationSeconds: 3 });
    expect(report.summary.statusCodes['200']).toBe(report.summary.requests);
    expect(report.timeline.length).toBeGreaterThanOrEqual(3);
    expect(report.timeline.reduce((sum: number, second: { requests: number }) => sum + second.requests, 0)).toBe(report.summary.requests);
    const html = readFileSync(join(dir, 'r.html'), 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('uPlot'); // the chart library, inlined
    expect(html).not.toMatch(/<script[^>]+src=/); // self-contained
    const embedded = /const report = (.*);\n/.exec(html)?.[1];
    expect(JSON.parse(embedded ?? 'null')).toEqual(report);
  });

  it('aborts with exit 3 within two probe intervals once the production probe breaches --abort-on', async () => {
    const load = await target();
    const probe = await target();
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
    ] as const) {
      const run = await dye(args, { DYE_SECRET: secret });
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(run.stderr, args.join(' ')).toMatch(message);
    }
  });

  it('exits 1 when the target answers nothing', async () => {
    const run = await dye(['load', 'http://127.0.0.1:1/', '--rate', '20', '--duration', '1s', '--timeout', '1s'], { DYE_SECRET: secret });
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toMatch(/answered no request/);
  });
});
