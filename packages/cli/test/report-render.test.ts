/**
 * The load report as a person sees it: rendered by headless Chromium from a
 * real `dye load` run against a Dye edge, judged on the DOM and a screenshot.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { currentTenant } from '@dye/core';
import { tenantMiddleware } from '@dye/http';
import puppeteer, { type Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumBinary } from '../../../scripts/infra.mjs';
import { dye } from './run-cli.js';

const secret = randomBytes(32).toString('base64url');
let edge: Server;
let probe: Server;
let browser: Browser;
let reportFile: string;
let jsonFile: string;

const listen = async (server: Server) => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
};

beforeAll(async () => {
  const guard = tenantMiddleware({ mode: 'edge', secrets: [secret] });
  let served = 0;
  edge = createServer((req, res) =>
    guard(req, res, () => {
      req.resume();
      // Latency that varies: a p99 and a max that differ.
      const delay = ++served % 50 === 0 ? 120 : served % 7;
      setTimeout(() => res.end(JSON.stringify({ tenant: currentTenant().name })), delay);
    }),
  );
  probe = createServer((_req, res) => res.end('ok'));
  const [edgeUrl, probeUrl] = [await listen(edge), await listen(probe)];
  const dir = mkdtempSync(join(tmpdir(), 'dye-report-'));
  reportFile = join(dir, 'report.html');
  jsonFile = join(dir, 'report.json');
  const run = await dye(
    [
      'load',
      edgeUrl,
      '--rate',
      '60',
      '--duration',
      '4s',
      '--probe',
      probeUrl,
      '--abort-on',
      'p99>5s',
      '--report',
      reportFile,
      '--json',
      jsonFile,
    ],
    { DYE_SECRET: secret },
  );
  expect(run.code, run.stderr).toBe(0);
  browser = await puppeteer.launch({
    executablePath: process.env.DYE_CHROMIUM ?? chromiumBinary(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  edge?.closeAllConnections();
  edge?.close();
  probe?.close();
});

describe('the load report in a browser', () => {
  it('charts span the page, in seconds from the start, with legends that carry values and p99 drawn over max; it names the tenant served', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(String(error)));
    await page.setViewport({ width: 1400, height: 1000 });
    await page.goto(pathToFileURL(reportFile).href, { waitUntil: 'load' });
    // Runs in the page (DOM types are not this project's): the charts as uPlot drew them.
    const seen = (await page.evaluate(`(() => {
      const body = document.body.clientWidth;
      const drawn = charts.map(([element, plot]) => ({
        id: element.id,
        width: element.querySelector('canvas').getBoundingClientRect().width,
        timeScale: plot.scales.x.time,
        axisLabels: plot.axes.map((axis) => axis.label),
        // The tick labels uPlot drew on the x axis.
        ticks: (plot.axes[0]._values ?? []).map(String),
        legend: [...element.querySelectorAll('.u-legend .u-series')].map((row) => row.innerText.trim()),
      }));
      const rows = Object.fromEntries(
        [...document.querySelectorAll('#summary tr')].map((row) => [row.querySelector('th').textContent, row.querySelector('td').textContent]),
      );
      return { body, charts: drawn, rows };
    })()`)) as {
      body: number;
      charts: { id: string; width: number; timeScale: boolean; axisLabels: string[]; ticks: string[]; legend: string[] }[];
      rows: Record<string, string>;
    };
    expect(errors).toEqual([]);
    const report = JSON.parse(readFileSync(jsonFile, 'utf8'));
    expect(seen.charts.map((chart) => chart.id)).toEqual(['latency', 'throughput', 'probe']);
    for (const chart of seen.charts) {
      // Full width, not a fixed 960 px.
      expect(chart.width, chart.id).toBeGreaterThan(0.95 * seen.body);
      // Seconds, never dates or times of day (1/1/70, 12:00am).
      expect(chart.timeScale, chart.id).toBe(false);
      expect(chart.axisLabels[0], chart.id).toBe('seconds from start');
      expect(chart.ticks.length, chart.id).toBeGreaterThan(1);
      for (const tick of chart.ticks) expect(tick, chart.id).toMatch(/^\d+(\.\d+)?$/);
      // A static page has no cursor: no "--" placeholders; each series names its peak.
      for (const entry of chart.legend.slice(1)) {
        expect(entry, chart.id).not.toContain('--');
        expect(entry, chart.id).toMatch(/peak \d/);
      }
    }
    const latency = seen.charts[0]?.legend ?? [];
    // max is drawn first, p99 last: p99 stays visible where they meet.
    expect(latency.findIndex((entry) => entry.startsWith('max'))).toBeLessThan(latency.findIndex((entry) => entry.startsWith('p99')));
    const peakOf = (label: string) => Number(/peak ([\d.]+)/.exec(latency.find((entry) => entry.startsWith(label)) ?? '')?.[1]);
    expect(peakOf('max')).toBe(Math.round(Math.max(...report.timeline.map((second: { max: number }) => second.max)) * 10) / 10);
    expect(seen.rows['served in (header x-tenant)']).toBe(`shadow: ${report.summary.answered}`);
    expect(seen.rows.run).toBe(report.settings.run);
    const screenshot = await page.screenshot({ fullPage: true, type: 'png' });
    // A page with three drawn charts, not an empty one.
    expect(screenshot.byteLength).toBeGreaterThan(40_000);
    expect(Buffer.from(screenshot).readUInt32BE(16)).toBe(1400);
    await page.close();
  }, 60_000);
});
