import { appendFileSync } from 'node:fs';
import { Bench } from 'tinybench';

/** One operation measured twice: the bare way and through Dye. */
export interface Case {
  name: string;
  /** One operation done without Dye (the baseline the ratio divides by). */
  bare: () => unknown;
  /** The same operation through Dye. */
  dye: () => unknown;
  /**
   * Wraps a batch of operations, for cases that must run inside a context (the
   * batch runs in it, so only the operation itself is timed).
   */
  around?: (batch: () => void) => void;
}

export interface CaseResult {
  suite: string;
  name: string;
  bareNsPerOp: number;
  dyeNsPerOp: number;
  /** dye / bare: 1.00 means no measurable cost. */
  ratio: number;
}

export interface CompareOptions {
  /** Rounds; bare and Dye swap order every round so drift cancels. Default 6. */
  rounds?: number;
  /** Milliseconds per task per round. Default 150. */
  timeMs?: number;
  /** Operations per timed sample: nanosecond operations need batching to rise above timer resolution. */
  batch?: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

function batched(op: () => unknown, batch: number, around: Case['around']): () => void {
  const loop = () => {
    for (let i = 0; i < batch; i++) op();
  };
  return around ? () => around(loop) : loop;
}

/**
 * Measures each case's bare and Dye operation in alternating rounds in one
 * process and reports medians per operation and their ratio.
 */
export async function compare(suite: string, cases: Case[], options: CompareOptions = {}): Promise<CaseResult[]> {
  const rounds = options.rounds ?? 6;
  const timeMs = options.timeMs ?? 150;
  const batch = options.batch ?? 1000;
  const samples = new Map<string, { bare: number[]; dye: number[] }>();
  for (const testCase of cases) samples.set(testCase.name, { bare: [], dye: [] });

  for (let round = 0; round < rounds; round++) {
    for (const testCase of cases) {
      const bench = new Bench({ time: timeMs, warmupTime: 30 });
      const order: Array<'bare' | 'dye'> = round % 2 === 0 ? ['bare', 'dye'] : ['dye', 'bare'];
      for (const side of order) bench.add(side, batched(testCase[side], batch, testCase.around));
      await bench.run();
      for (const task of bench.tasks) {
        const result = task.result;
        if (result.state !== 'completed') throw new Error(`${suite} / ${testCase.name} / ${task.name}: ${result.state}`);
        samples.get(testCase.name)?.[task.name as 'bare' | 'dye'].push((result.period * 1e6) / batch);
      }
    }
  }

  return cases.map((testCase) => {
    const { bare, dye } = samples.get(testCase.name) as { bare: number[]; dye: number[] };
    const bareNsPerOp = median(bare);
    const dyeNsPerOp = median(dye);
    return { suite, name: testCase.name, bareNsPerOp, dyeNsPerOp, ratio: dyeNsPerOp / bareNsPerOp };
  });
}

/** One printed table, as bench/run.ts collects it into bench/results.json. */
export interface RecordedTable {
  /** The bench file that printed it (set by bench/run.ts). */
  file?: string;
  suite: string;
  title: string;
  /** `ns`: nanoseconds per operation, lower is better; `throughput`: operations per second, higher is better. */
  kind: 'ns' | 'throughput';
  rows: Array<{ name: string; bare?: number; dye?: number; opsPerSecond?: number; ratio: number }>;
}

/** Appends a table to the file bench/run.ts passed in DYE_BENCH_OUT (one JSON per line); nothing when run alone. */
function record(table: RecordedTable): void {
  const out = process.env.DYE_BENCH_OUT;
  if (out) appendFileSync(out, `${JSON.stringify(table)}\n`);
}

export function printResults(title: string, results: CaseResult[]): void {
  record({
    suite: results[0]?.suite ?? '',
    title,
    kind: 'ns',
    rows: results.map((result) => ({ name: result.name, bare: result.bareNsPerOp, dye: result.dyeNsPerOp, ratio: result.ratio })),
  });
  console.log(`\n${title}`);
  console.table(
    results.map((result) => ({
      case: result.name,
      'bare ns/op': result.bareNsPerOp.toFixed(1),
      'dye ns/op': result.dyeNsPerOp.toFixed(1),
      'dye / bare': `${result.ratio.toFixed(2)}x`,
    })),
  );
}

/** One way of doing an I/O operation (a request, a command), measured for throughput. */
export interface ThroughputVariant {
  name: string;
  /** One operation; resolves when it is complete. */
  run: () => Promise<unknown>;
  /** Runs before each of this variant's rounds, outside the timing (switching a global on). */
  before?: () => void;
  /** Runs after each of this variant's rounds (switching it off again). */
  after?: () => void;
}

export interface ThroughputResult {
  suite: string;
  name: string;
  /** Median operations per second over the rounds. */
  opsPerSecond: number;
  /** opsPerSecond / the first variant's: 1.00 means no measurable cost. */
  ratio: number;
}

/**
 * Runs each variant for `durationMs` with `concurrency` operations in flight,
 * in rounds whose order rotates so drift cancels, and reports median
 * throughput and the ratio to the first variant (the bare client).
 */
export async function compareThroughput(
  suite: string,
  variants: ThroughputVariant[],
  options: { rounds?: number; durationMs?: number; concurrency?: number; warmupMs?: number } = {},
): Promise<ThroughputResult[]> {
  const rounds = options.rounds ?? 5;
  const durationMs = options.durationMs ?? 1500;
  const concurrency = options.concurrency ?? 16;
  const timed = async (variant: ThroughputVariant, durationMs: number) => {
    variant.before?.();
    try {
      return await drive(variant.run, durationMs, concurrency);
    } finally {
      variant.after?.();
    }
  };
  for (const variant of variants) await timed(variant, options.warmupMs ?? 500);
  const samples = new Map<string, number[]>(variants.map((variant) => [variant.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < variants.length; i++) {
      const variant = variants[(i + round) % variants.length] as ThroughputVariant;
      samples.get(variant.name)?.push(await timed(variant, durationMs));
    }
  }
  const first = median(samples.get(variants[0]?.name ?? '') ?? [1]);
  return variants.map((variant) => {
    const opsPerSecond = median(samples.get(variant.name) as number[]);
    return { suite, name: variant.name, opsPerSecond, ratio: opsPerSecond / first };
  });
}

async function drive(run: () => Promise<unknown>, durationMs: number, concurrency: number): Promise<number> {
  const deadline = performance.now() + durationMs;
  const started = performance.now();
  let completed = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        await run();
        completed++;
      }
    }),
  );
  return completed / ((performance.now() - started) / 1000);
}

export function printThroughput(title: string, results: ThroughputResult[]): void {
  record({
    suite: results[0]?.suite ?? '',
    title,
    kind: 'throughput',
    rows: results.map((result) => ({ name: result.name, opsPerSecond: result.opsPerSecond, ratio: result.ratio })),
  });
  console.log(`\n${title}`);
  console.table(
    results.map((result) => ({
      variant: result.name,
      'ops/s': Math.round(result.opsPerSecond),
      'vs bare': `${result.ratio.toFixed(2)}x`,
    })),
  );
}
