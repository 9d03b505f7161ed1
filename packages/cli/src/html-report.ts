import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { LoadReport } from './load-report.js';

const require = createRequire(import.meta.url);

/** uPlot, inlined: the report opens from a file, offline, years later. */
function uplotAssets(): { script: string; style: string } {
  return {
    script: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
    style: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
  };
}

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[char] as string);

/** JSON that is safe inside a <script> element. */
const scriptJson = (value: unknown) =>
  JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028|\u2029/g, '');

/**
 * A self-contained HTML report of a load test: the settings, the summary, and
 * charts of latency and throughput over time (and the production probe's
 * latency, when a guard ran).
 */
export function renderHtmlReport(report: LoadReport): string {
  const { script, style } = uplotAssets();
  const { settings, summary, guard } = report;
  const verdict = guard?.breach
    ? `<p class="abort">Aborted by the production guard after ${guard.breach.window.at.toFixed(1)} s: ${escapeHtml(guard.breach.rule.text)} breached (${escapeHtml(guard.breach.observed)}).</p>`
    : guard
      ? '<p class="ok">The production guard saw no breach.</p>'
      : '';
  const rows: [string, string][] = [
    ['requests', `${summary.requests} answered or failed (${summary.sent} sent)`],
    ['duration', `${summary.durationSeconds.toFixed(1)} s`],
    ['throughput', `${summary.throughput.toFixed(1)} req/s`],
    [
      'latency p50 / p90 / p99 / max',
      `${summary.latency.p50} / ${summary.latency.p90} / ${summary.latency.p99} / ${summary.latency.max} ms`,
    ],
    ['errors (network, timeouts)', `${summary.errors} (${summary.timeouts} timeouts)`],
    ['non-2xx responses', String(summary.non2xx)],
    [
      'status codes',
      Object.entries(summary.statusCodes)
        .map(([code, count]) => `${code}: ${count}`)
        .join(', ') || 'none',
    ],
  ];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>dye load: ${escapeHtml(settings.tenant)} → ${escapeHtml(settings.url)}</title>
<style>${style}
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
table { border-collapse: collapse; } td, th { padding: .25em .8em; border-bottom: 1px solid #ddd; text-align: left; }
.abort { color: #b00020; font-weight: 600; } .ok { color: #1b5e20; }
code { background: #f3f3f3; padding: 0 .3em; }
</style>
</head>
<body>
<h1>Load test: tenant <code>${escapeHtml(settings.tenant)}</code> → <code>${escapeHtml(settings.method)} ${escapeHtml(settings.url)}</code></h1>
<p>${escapeHtml(settings.startedAt)} · ${settings.rate} req/s target · ${settings.durationSeconds} s · ${settings.connections} connections${
    settings.probe
      ? ` · production probe <code>${escapeHtml(settings.probe)}</code>, abort on <code>${escapeHtml(settings.abortOn ?? '')}</code>`
      : ''
  }</p>
${verdict}
<h2>Summary</h2>
<table>${rows.map(([name, value]) => `<tr><th>${escapeHtml(name)}</th><td>${escapeHtml(value)}</td></tr>`).join('')}</table>
<h2>Latency over time (ms)</h2>
<div id="latency"></div>
<h2>Throughput over time (per second)</h2>
<div id="throughput"></div>
${guard ? '<h2>Production probe latency (ms)</h2>\n<div id="probe"></div>' : ''}
<script>${script}</script>
<script>
const report = ${scriptJson(report)};
const width = Math.min(960, document.body.clientWidth);
const seconds = report.timeline.map((s) => s.second);
const axes = (unit) => [{ label: 'seconds' }, { label: unit }];
const plain = { time: false };
new uPlot({ ...plain, title: 'load latency', width, height: 300, axes: axes('ms'), series: [{}, { label: 'p50', stroke: '#1e88e5' }, { label: 'p90', stroke: '#fb8c00' }, { label: 'p99', stroke: '#e53935' }, { label: 'max', stroke: '#8e24aa', dash: [4, 4] }] },
  [seconds, report.timeline.map((s) => s.p50), report.timeline.map((s) => s.p90), report.timeline.map((s) => s.p99), report.timeline.map((s) => s.max)], document.getElementById('latency'));
new uPlot({ ...plain, title: 'throughput', width, height: 260, axes: axes('per second'), series: [{}, { label: 'responses', stroke: '#43a047' }, { label: 'errors', stroke: '#e53935' }, { label: 'status ≥ 400', stroke: '#fb8c00' }] },
  [seconds, report.timeline.map((s) => s.requests), report.timeline.map((s) => s.errors), report.timeline.map((s) => s.failedResponses)], document.getElementById('throughput'));
if (report.guard) {
  const windows = report.guard.windows;
  new uPlot({ ...plain, title: 'production probe', width, height: 260, axes: axes('ms'), series: [{}, { label: 'p50', stroke: '#1e88e5' }, { label: 'p99', stroke: '#e53935' }, { label: 'errors %', stroke: '#6d4c41', scale: '%' }] },
    [windows.map((w) => Number(w.at.toFixed(2))), windows.map((w) => w.p50), windows.map((w) => w.p99), windows.map((w) => w.errors * 100)], document.getElementById('probe'));
}
</script>
</body>
</html>
`;
}
