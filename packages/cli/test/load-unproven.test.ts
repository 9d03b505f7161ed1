/**
 * dye load claims a shadow run only where responses prove it. Edges that
 * answer in ways a careless reading would accept are staged on loopback, each
 * counting what it served in baseline (production): the edge's own
 * `x-tenant: baseline` wins over a JSON field or `--served-tenant none`; a
 * field named twice is not trusted; requests that got no answer (reset, timed
 * out) leave the run "not proven" (exit 5), never "completed" (exit 0).
 */

import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dye } from './run-cli.js';

const secret = randomBytes(32).toString('base64url');
const env = { DYE_SECRET: secret };
const servers: Server[] = [];

/** An edge whose answer to each request (its number from 1) is `answer`; counts what it says it served in baseline. */
async function edge(answer: (n: number, res: ServerResponse, req: IncomingMessage) => 'shadow' | 'baseline') {
  const served = { baseline: 0, shadow: 0 };
  let n = 0;
  const server = createServer((req, res) => {
    req.resume();
    served[answer(++n, res, req)]++;
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/orders`, served };
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('dye load: a shadow run is claimed only where responses prove it', () => {
  it.each([
    [
      'json:tenant, while the edge answers x-tenant: baseline',
      ['--served-tenant', 'json:tenant'],
      { 'x-tenant': 'baseline' },
      '{"tenant":"shadow"}',
    ],
    ['json:tenant, a body that names the field twice', ['--served-tenant', 'json:tenant'], {}, '{"tenant":"baseline","tenant":"shadow"}'],
    ['none, while the edge answers x-tenant: baseline', ['--served-tenant', 'none'], { 'x-tenant': 'baseline' }, '{}'],
  ] as const)('%s: exit 4 at the preflight, one request served', async (_name, flags, headers, body) => {
    const target = await edge((_n, res) => {
      res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(body);
      return 'baseline';
    });
    const run = await dye(['load', target.url, '--rate', '50', '--duration', '2s', ...flags], env);
    expect(run.code, run.stderr).toBe(4);
    expect(target.served.baseline).toBe(1);
  });

  it('an x-tenant trailer naming baseline counts, after a shadow header: exit 4 at the preflight', async () => {
    const target = await edge((_n, res) => {
      res.writeHead(200, { 'x-tenant': 'shadow', trailer: 'x-tenant' });
      res.write('{}');
      res.addTrailers({ 'x-tenant': 'baseline' });
      res.end();
      return 'baseline';
    });
    const run = await dye(['load', target.url, '--rate', '50', '--duration', '2s'], env);
    expect(run.code, run.stderr).toBe(4);
    expect(target.served.baseline).toBe(1);
  });

  it('requests served in baseline whose answers never come (reset, timed out): not proven, exit 5, and says why', async () => {
    const target = await edge((n, res) => {
      // Every third request after the preflight is served in production, then the connection dies.
      if (n > 1 && n % 3 === 0) {
        res.socket?.destroy();
        return 'baseline';
      }
      res.writeHead(200, { 'x-tenant': 'shadow' }).end('{}');
      return 'shadow';
    });
    const dir = mkdtempSync(join(tmpdir(), 'dye-unproven-'));
    const run = await dye(['load', target.url, '--rate', '30', '--duration', '1s', '--json', join(dir, 'r.json')], env);
    expect(target.served.baseline).toBeGreaterThan(0);
    expect(run.code, run.stderr).toBe(5);
    expect(run.stderr).toMatch(
      /not proven: \d+ request\(s\) got no response that says which tenant served them \(they failed or timed out\)/,
    );
    expect(run.stderr).toMatch(/--verify/);
    const report = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'));
    expect(report.summary.failed).toBe(target.served.baseline);
  });

  it('a --preflight on another origin than the load is refused before anything is sent', async () => {
    const target = await edge((_n, res) => {
      res.writeHead(200, { 'x-tenant': 'shadow' }).end('{}');
      return 'shadow';
    });
    const other = await edge((_n, res) => {
      res.writeHead(200, { 'x-tenant': 'shadow' }).end('{}');
      return 'shadow';
    });
    const run = await dye(['load', target.url, '--rate', '10', '--duration', '1s', '--preflight', other.url], env);
    expect([run.code, run.stderr.trim().split('\n').at(-1)]).toEqual([
      2,
      expect.stringMatching(/--preflight must be on the load's origin/),
    ]);
    expect(target.served.shadow + other.served.shadow).toBe(0);
  });

  it('a report that cannot be written is refused before anything is sent', async () => {
    const target = await edge((_n, res) => {
      res.writeHead(200, { 'x-tenant': 'shadow' }).end('{}');
      return 'shadow';
    });
    const run = await dye(['load', target.url, '--rate', '10', '--duration', '1s', '--json', '/no/such/dir/r.json'], env);
    expect([run.code, run.stderr.trim().split('\n').at(-1)]).toEqual([
      2,
      expect.stringMatching(/--json \/no\/such\/dir\/r.json: its directory cannot be written/),
    ]);
    expect(target.served.shadow).toBe(0);
  });

  it('a production probe that is refused breaches a latency rule alone (a failed probe is as slow as the timeout): exit 3', async () => {
    const target = await edge((_n, res) => {
      res.writeHead(200, { 'x-tenant': 'shadow' }).end('{}');
      return 'shadow';
    });
    const run = await dye(
      ['load', target.url, '--rate', '10', '--duration', '10s', '--probe', 'http://127.0.0.1:1/', '--abort-on', 'p99>300ms'],
      env,
    );
    expect(run.code, run.stderr).toBe(3);
    expect(run.stderr).toMatch(/aborted: production breached p99>300ms/);
  }, 30_000);

  it('SIGTERM (a job runner stopping it) writes the results, as Ctrl-C does, and exits 143', async () => {
    const target = await edge((_n, res) => {
      res.writeHead(200, { 'x-tenant': 'shadow' }).end('{}');
      return 'shadow';
    });
    const dir = mkdtempSync(join(tmpdir(), 'dye-sigterm-'));
    const run = await dye(['load', target.url, '--rate', '20', '--duration', '30s', '--json', join(dir, 'r.json')], env, {
      signal: { name: 'SIGTERM', afterMs: 2_500 },
    });
    expect(run.code, run.stderr).toBe(143);
    const report = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'));
    expect(report.outcome).toBe('interrupted');
    expect(report.summary.answered).toBeGreaterThan(0);
  }, 40_000);
});
