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

const OUTCOME_TEXT: Record<LoadReport['outcome'], string> = {
  completed: 'Completed.',
  aborted: 'Aborted.',
  interrupted: 'Interrupted (Ctrl-C).',
  'wrong-tenant': 'Stopped: the target answered in another tenant than the one asked for.',
  failed: 'Failed: the target answered no request.',
};

/**
 * A self-contained HTML report of a load test: the settings, the preflight,
 * the summary with the tenants responses were served in, and charts of latency
 * and throughput over time in seconds from the start (and the production
 * probe's latency, when a guard ran). Legends carry each series' peak, as a
 * static page has no cursor to read values at.
 */
export function renderHtmlReport(report: LoadReport): string {
  const { script, style } = uplotAssets();
  const { settings, summary, guard, preflight } = report;
  const problems: string[] = [];
  if (!summary) problems.push(`Stopped before the load: ${escapeHtml(preflight.message)}`);
  else if (report.outcome === 'wrong-tenant' || report.outcome === 'failed') problems.push(OUTCOME_TEXT[report.outcome]);
  if (summary?.firstMismatch)
    problems.push(
      `${summary.mismatched} response(s) served in another tenant; the first, request #${summary.firstMismatch.seq}, in <code>${escapeHtml(summary.firstMismatch.served)}</code> with status ${summary.firstMismatch.status}.`,
    );
  if (report.loadBreach) problems.push(`Aborted: ${escapeHtml(report.loadBreach)}.`);
  if (guard?.breach)
    problems.push(
      `Aborted by the production guard after ${guard.breach.window.at.toFixed(1)} s: ${escapeHtml(guard.breach.rule.text)} breached (${escapeHtml(guard.breach.observed)}).`,
    );
  const verify = report.verify;
  if (verify && verify.leaks > 0)
    problems.push(
      `dye verify: run ${escapeHtml(verify.run)} is in production at ${verify.leaks} place(s): ${verify.findings
        .filter((finding) => !finding.isolated)
        .map((finding) => `<code>${escapeHtml(`${finding.store} ${finding.place}`)}</code>`)
        .join(', ')}.`,
    );
  const verdict =
    problems.length > 0
      ? problems.map((problem) => `<p class="abort">${problem}</p>`).join('\n')
      : `<p class="ok">${OUTCOME_TEXT[report.outcome]}${guard ? ' The production guard saw no breach.' : ''}${
          verify
            ? ` dye verify: production is clean (${verify.searched.filter((place) => !place.isolated).length} production places searched; the run found in ${verify.findings.length} of ${escapeHtml(verify.tenant)}'s).`
            : ''
        }</p>`;
  const rows: [string, string][] = [
    ['run', settings.run],
    ['preflight', preflight.message],
  ];
  if (summary) {
    rows.push(
      [
        'requests',
        `${summary.sent} sent: ${summary.answered} answered, ${summary.failed} failed, ${summary.inFlightAtEnd} in flight at the end${
          summary.notSent > 0 ? ` (${summary.notSent} of ${summary.scheduled} scheduled not sent: every connection busy)` : ''
        }`,
      ],
      [
        `served in (${settings.servedTenant})`,
        Object.entries(summary.servedTenants)
          .map(([served, count]) => `${served}: ${count}`)
          .join(', ') || 'none',
      ],
      ['duration', `${summary.durationSeconds.toFixed(1)} s`],
      ['throughput', `${summary.throughput.toFixed(1)} req/s`],
      [
        'latency p50 / p90 / p99 / max',
        `${summary.latency.p50} / ${summary.latency.p90} / ${summary.latency.p99} / ${summary.latency.max} ms`,
      ],
      ['failed (network, timeouts)', `${summary.failed} (${summary.timeouts} timeouts)`],
      ['non-2xx responses', String(summary.non2xx)],
      [
        'status codes',
        Object.entries(summary.statusCodes)
          .map(([code, count]) => `${code}: ${count}`)
          .join(', ') || 'none',
      ],
    );
  }
  const charts = summary
    ? `<h2>Latency over time (ms)</h2>
<div id="latency" class="chart"></div>
<h2>Throughput over time (per second)</h2>
<div id="throughput" class="chart"></div>
${guard ? '<h2>Production probe latency (ms)</h2>\n<div id="probe" class="chart"></div>' : ''}`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dye load: ${escapeHtml(settings.tenant)} → ${escapeHtml(settings.url)}</title>
<style>${style}
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
table { border-collapse: collapse; } td, th { padding: .25em .8em; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
.abort { color: #b00020; font-weight: 600; } .ok { color: #1b5e20; }
.chart { width: 100%; }
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
<table id="summary">${rows.map(([name, value]) => `<tr><th>${escapeHtml(name)}</th><td>${escapeHtml(value)}</td></tr>`).join('')}</table>
${charts}
<script>${script}</script>
<script>
const report = ${scriptJson(report)};
const peak = (values) => values.reduce((max, value) => (value > max ? value : max), 0);
const round = (value) => Math.round(value * 10) / 10;
// A static page has no cursor: legends name each series with its peak instead of live values.
const series = (label, values, style, unit) => ({ label: label + ' (peak ' + round(peak(values)) + (unit ? ' ' + unit : '') + ')', ...style });
const charts = [];
function chart(id, title, unit, xs, lines) {
  const element = document.getElementById(id);
  const options = {
    title,
    width: element.clientWidth,
    height: 300,
    // Seconds from the start, not dates.
    scales: { x: { time: false } },
    axes: [{ label: 'seconds from start' }, { label: unit }],
    legend: { live: false },
    series: [{ label: 'second' }, ...lines.map((line) => series(line.label, line.values, line.style, unit))],
  };
  charts.push([element, new uPlot(options, [xs, ...lines.map((line) => line.values)], element)]);
}
if (report.timeline) {
  const t = report.timeline;
  // Each bucket at its end; the last may be shorter than a second, so counts become rates.
  const seconds = t.map((s) => s.at);
  const rate = (count, s) => (s.seconds > 0 ? round(count / s.seconds) : 0);
  // Drawn in order: max first and light, so p99 stays visible on top of it.
  chart('latency', 'load latency', 'ms', seconds, [
    { label: 'max', values: t.map((s) => s.max), style: { stroke: '#ce93d8', dash: [4, 4], width: 1 } },
    { label: 'p50', values: t.map((s) => s.p50), style: { stroke: '#1e88e5', width: 2 } },
    { label: 'p90', values: t.map((s) => s.p90), style: { stroke: '#fb8c00', width: 2 } },
    { label: 'p99', values: t.map((s) => s.p99), style: { stroke: '#e53935', width: 2.5 } },
  ]);
  chart('throughput', 'throughput', 'per second', seconds, [
    { label: 'answered or failed', values: t.map((s) => rate(s.requests, s)), style: { stroke: '#43a047', width: 2 } },
    { label: 'failed', values: t.map((s) => rate(s.errors, s)), style: { stroke: '#e53935', width: 2 } },
    { label: 'status ≥ 400', values: t.map((s) => rate(s.failedResponses, s)), style: { stroke: '#fb8c00', width: 2 } },
    { label: 'wrong tenant', values: t.map((s) => rate(s.mismatched, s)), style: { stroke: '#000', width: 2 } },
  ]);
  if (report.guard) {
    const w = report.guard.windows;
    chart('probe', 'production probe', 'ms', w.map((x) => round(x.at)), [
      { label: 'p50', values: w.map((x) => x.p50), style: { stroke: '#1e88e5', width: 2 } },
      { label: 'p99', values: w.map((x) => x.p99), style: { stroke: '#e53935', width: 2.5 } },
    ]);
  }
}
addEventListener('resize', () => {
  for (const [element, plot] of charts) plot.setSize({ width: element.clientWidth, height: 300 });
});
</script>
</body>
</html>
`;
}
