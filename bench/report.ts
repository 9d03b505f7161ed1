/**
 * Turns the tables the suites recorded into bench/results.json and
 * docs/benchmarks.md: ratios next to absolute figures, per Node version, with
 * the targets Dye sets itself and whether each was met.
 */
import { cpus, totalmem } from 'node:os';
import type { RecordedTable } from './harness.js';

export interface NodeRun {
  node: string;
  tables: RecordedTable[];
  /** Suites that failed to run, with their exit code. */
  failed: { suite: string; code: number | null }[];
}

export interface BenchResults {
  date: string;
  machine: { cpu: string; cores: number; memoryGiB: number; platform: string };
  runs: NodeRun[];
}

/** What a row measures, from its name: the bare client, Dye's baseline path, a colored or isolated tenant, or the alternative users would pick. */
export type RowPath = 'reference' | 'baseline' | 'colored' | 'isolated' | 'alternative' | 'per-op';

// The names the suites give their rows (bench/*.bench.ts) say which path they
// measure; the rules live here, in one place.
export function rowPath(table: RecordedTable, name: string): RowPath {
  const lower = name.toLowerCase();
  if (/^bare|noise control/.test(lower)) return 'reference';
  if (/opentelemetry|^otel/.test(lower)) return 'alternative';
  if (table.kind === 'ns') return 'per-op';
  if (/shadow/.test(lower)) return 'isolated';
  if (/\bred\b|edge|lane/.test(lower)) return 'colored';
  return 'baseline';
}

/** Allowed throughput loss: 2 % on the baseline path, 5 % for colored and isolated tenants. */
export const TARGETS: Partial<Record<RowPath, number>> = { baseline: 0.02, colored: 0.05, isolated: 0.05 };

export function machine(): BenchResults['machine'] {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    platform: `${process.platform}/${process.arch}`,
  };
}

const fixed = (value: number | undefined, digits: number) => (value === undefined ? '—' : value.toFixed(digits));

/**
 * The noise floor of a table: how far its second measurement of the bare
 * client (a "noise control" row) landed from 1.00. Undefined without one.
 */
export function noiseFloor(table: RecordedTable | undefined): number | undefined {
  const controls = (table?.rows ?? []).filter((row) => /noise control/i.test(row.name));
  if (controls.length === 0) return undefined;
  return Math.max(...controls.map((row) => Math.abs(1 - row.ratio)));
}

/** Met, missed, or missed by less than the table's noise floor (then the figure cannot tell). */
function verdict(path: RowPath, ratio: number, noise: number | undefined): string {
  const allowed = TARGETS[path];
  if (allowed === undefined) return '';
  const loss = 1 - ratio;
  const target = `≤ ${allowed * 100}% loss`;
  if (loss <= allowed) return `met (${target})`;
  if (noise !== undefined && loss <= allowed + noise) return `within noise (${target}, noise ±${Math.round(noise * 100)}%)`;
  return `**missed** (${target})`;
}

const VERDICT_ORDER = ['met', 'cannot tell', 'missed'];

/**
 * A CPU-time table: per Node version the CPU per operation and the ratio to
 * the row's reference with its 95% interval; the verdict is the worse of the
 * versions' (each judged from its interval).
 */
function cpuTable(table: RecordedTable, others: Array<RecordedTable | undefined>, versions: string[]): string[] {
  const major = (version: string) => version.split('.')[0];
  const lines = [
    `| variant | ${versions.map((v) => `CPU µs/op (Node ${major(v)})`).join(' | ')} | ${versions.map((v) => `ratio [95% interval] (Node ${major(v)})`).join(' | ')} | target | verdict |`,
    `| --- | ${versions.map(() => '---:').join(' | ')} | ${versions.map(() => '---:').join(' | ')} | --- | --- |`,
  ];
  for (const row of table.rows) {
    const matched = others.map((other) => other?.rows.find((r) => r.name === row.name));
    const reference = row.against && row.against !== table.rows[0]?.name ? ` (vs ${row.against})` : '';
    const ratios = matched.map((r) =>
      r === undefined || r.against === r.name ? '—' : `${r.ratio.toFixed(3)}× [${fixed(r.low, 3)}, ${fixed(r.high, 3)}]`,
    );
    const verdicts = matched.map((r) => r?.verdict).filter((v): v is string => v !== undefined);
    const worst = verdicts.sort((a, b) => VERDICT_ORDER.indexOf(b) - VERDICT_ORDER.indexOf(a))[0];
    lines.push(
      `| ${row.name}${row.target === undefined ? '' : reference} | ${matched.map((r) => fixed(r?.cpuNsPerOp === undefined ? undefined : r.cpuNsPerOp / 1000, 2)).join(' | ')} | ${ratios.join(' | ')} | ${row.target === undefined ? '' : `≥ ${row.target.toFixed(2)}×`} | ${worst === undefined ? '' : worst === 'met' ? 'met' : `**${worst}**`} |`,
    );
  }
  return lines;
}

/** docs/benchmarks.md */
export function markdown(results: BenchResults): string {
  const versions = results.runs.map((run) => run.node);
  const lines: string[] = [
    '# Benchmarks',
    '',
    `Measured ${results.date.slice(0, 10)} on ${results.machine.cpu} (${results.machine.cores} cores, ${results.machine.memoryGiB} GiB, ${results.machine.platform}), Node ${versions.join(' and ')}; a table measured by an earlier run (of other suites) says when and on what. Compare ratios, not absolute figures, across tables. Written by \`npm run bench\`; raw figures in [bench/results.json](../bench/results.json).`,
    '',
    'Where a table says "CPU time", the figure is what a person choosing whether to run Dye needs and what a shared machine disturbs least: the CPU time (user + system) the whole process tree spent per operation (the client process and the server children it talks to, each read with `process.cpuUsage()`), not how long the machine made it wait. The variants run in short rounds (20 ms) in a fresh random order each round, over many rounds (1,200); a ratio is the reference\'s mean CPU per operation over the variant\'s (1.00 = no cost; 0.95 = 5% more CPU per operation), and its 95% interval comes from a paired bootstrap over rounds (10,000 resamples). A verdict is **met** when the whole interval is at or above the target, **missed** when all of it is below, and **cannot tell** otherwise. A second measurement of the bare client (the noise control) sits within ±1% of 1.00 this way, where throughput ratios wander by ±5% or more on the same machine.',
    '',
    'Every suite runs in a process of its own and measures the bare client and Dye side by side in one run, on real services (Redis, MariaDB, Kafka, HTTP and gRPC servers on loopback), in alternating rounds so that drift cancels; figures are medians over the rounds. A ratio is Dye ÷ bare for throughput (1.00 = no cost, higher is better) and Dye ÷ bare for nanoseconds per operation (lower is better). Rows marked "noise control" measure the bare client a second time in the same run: their distance from 1.00 is the noise floor of that table, and a target missed by less than it is marked "within noise" (the figure cannot tell).',
    '',
    `Targets: the baseline path within ${(TARGETS.baseline ?? 0) * 100}% of the bare client's throughput, colored and isolated tenants within ${(TARGETS.colored ?? 0) * 100}%. They are reported as measured, met or not.`,
    '',
    'Reading the tables:',
    '',
    '- *Per-operation tables* (core, grpc-pick) time one call in nanoseconds; a request makes a handful of them, so they explain request-level figures rather than set targets.',
    "- *kafkajs-produce*: the row of bare kafkajs sending the same two headers Dye adds (`x-tenant`, `baggage`) is kafkajs alone: most of the shadow path's cost is kafkajs encoding message headers, which any header-carried context (OpenTelemetry's trace context included) pays.",
    "- *amqplib-publish*: the row of bare amqplib publishing with the same two headers Dye adds (`x-tenant`, `baggage`) is amqplib and RabbitMQ alone: a message with a headers table costs the broker and the client encoder more than one without, and that, not Dye, is most of the red and shadow rows' loss. Consume figures are medians of three rounds of 20,000 messages; their noise control shows how far two runs of the same client differ.",
    '- *otel-http, otel-grpc*: the OpenTelemetry rows record spans too (a tracer provider with a batch processor and an exporter that drops them), as a service running the SDK does; Dye rows carry the tenant only. They answer "what would carrying a tenant with the OTel SDK cost instead".',
    '',
  ];
  const first = results.runs[0];
  if (!first) return `${lines.join('\n')}\nNo suite ran.\n`;
  // A suite measured by CPU time is judged by it; its throughput table is there for scale.
  const judgedByCpu = new Set(first.tables.filter((table) => table.kind === 'cpu').map((table) => table.suite));
  for (const [index, table] of first.tables.entries()) {
    const others = results.runs.map((run) =>
      run.tables.find((t, i) => t.title === table.title && (t.suite === table.suite || i === index)),
    );
    lines.push(`## ${table.suite}: ${table.title}`, '');
    const measured = table.measured;
    if (measured && (measured.date.slice(0, 10) !== results.date.slice(0, 10) || measured.cpu !== results.machine.cpu))
      lines.push(`Measured ${measured.orEarlier ? 'on or before ' : ''}${measured.date.slice(0, 10)} on ${measured.cpu}.`, '');
    if (table.kind === 'cpu') {
      lines.push(...cpuTable(table, others, versions));
    } else if (table.kind === 'throughput') {
      lines.push(
        `| variant | path | ${versions.map((v) => `ops/s (Node ${v.split('.')[0]})`).join(' | ')} | ${versions.map((v) => `ratio (Node ${v.split('.')[0]})`).join(' | ')} | target |`,
      );
      lines.push(`| --- | --- | ${versions.map(() => '---:').join(' | ')} | ${versions.map(() => '---:').join(' | ')} | --- |`);
      for (const row of table.rows) {
        const path = rowPath(table, row.name);
        const matched = others.map((other) => other?.rows.find((r) => r.name === row.name));
        // Judged on the worse Node version, against that version's noise floor.
        const worstIndex = matched.reduce(
          (worst, r, i) => ((r?.ratio ?? Number.POSITIVE_INFINITY) < (matched[worst]?.ratio ?? Number.POSITIVE_INFINITY) ? i : worst),
          0,
        );
        const worst = matched[worstIndex]?.ratio ?? Number.POSITIVE_INFINITY;
        lines.push(
          `| ${row.name} | ${path} | ${matched.map((r) => fixed(r?.opsPerSecond, 0)).join(' | ')} | ${matched.map((r) => (r ? `${r.ratio.toFixed(2)}×` : '—')).join(' | ')} | ${judgedByCpu.has(table.suite) ? (TARGETS[path] === undefined ? '' : 'see the CPU-time table') : verdict(path, worst, noiseFloor(others[worstIndex]))} |`,
        );
      }
    } else {
      lines.push(
        `| operation | ${versions.map((v) => `bare ns (Node ${v.split('.')[0]}) | Dye ns (Node ${v.split('.')[0]})`).join(' | ')} | ${versions.map((v) => `ratio (Node ${v.split('.')[0]})`).join(' | ')} |`,
      );
      lines.push(`| --- | ${versions.map(() => '---: | ---:').join(' | ')} | ${versions.map(() => '---:').join(' | ')} |`);
      for (const row of table.rows) {
        const matched = others.map((other) => other?.rows.find((r) => r.name === row.name));
        lines.push(
          `| ${row.name} | ${matched.map((r) => `${fixed(r?.bare, 1)} | ${fixed(r?.dye, 1)}`).join(' | ')} | ${matched.map((r) => (r ? `${r.ratio.toFixed(2)}×` : '—')).join(' | ')} |`,
        );
      }
    }
    lines.push('');
  }
  const failed = results.runs.flatMap((run) => run.failed.map((f) => `${f.suite} on Node ${run.node} (exit ${f.code})`));
  if (failed.length > 0) lines.push('## Suites that failed', '', ...failed.map((f) => `- ${f}`), '');
  return `${lines.join('\n')}\n`;
}
