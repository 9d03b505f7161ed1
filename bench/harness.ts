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
  /** When and on what it was measured (set by bench/run.ts): a partial run keeps older suites' tables. */
  measured?: { date: string; cpu: string; orEarlier?: boolean };
  suite: string;
  title: string;
  /**
   * `ns`: nanoseconds per operation, lower is better; `throughput`: operations
   * per second, higher is better; `cpu`: CPU time per operation of the whole
   * process tree, as a ratio to a reference with a 95% interval.
   */
  kind: 'ns' | 'throughput' | 'cpu';
  rows: Array<{
    name: string;
    bare?: number;
    dye?: number;
    opsPerSecond?: number;
    cpuNsPerOp?: number;
    ratio: number;
    low?: number;
    high?: number;
    against?: string;
    target?: number;
    verdict?: string;
    rounds?: number;
  }>;
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
  /**
   * Runs the round inside something: `(drive) => withTenant('red', drive)`
   * makes every operation of the round run in `red`, as calls made while
   * serving a red request do, without the cost of entering it per operation.
   */
  around?: <T>(drive: () => Promise<T>) => Promise<T>;
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
      const round = () => drive(variant.run, durationMs, concurrency);
      return await (variant.around ? variant.around(round) : round());
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
  const started = performance.now();
  const completed = await count(run, durationMs, concurrency);
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

/** Where CPU time is spent besides this process: a server child, say. */
export interface CpuMeter {
  /** CPU time (user + system) the meter's process has used so far, in microseconds. */
  cpuMicros(): Promise<number>;
}

/** A variant measured by CPU time per operation. */
export interface CpuVariant extends ThroughputVariant {
  /** The variant this one's ratio is taken against (its name); default the first variant. */
  against?: string;
  /** The least ratio (reference CPU ÷ this variant's CPU) this variant must reach, if it has a target. */
  target?: number;
}

export interface CpuResult {
  suite: string;
  name: string;
  /** Mean CPU time per operation over the rounds, whole process tree, in nanoseconds. */
  cpuNsPerOp: number;
  /** Reference CPU per operation ÷ this variant's (1.00 = no cost; below 1 costs more), with its 95% interval. */
  ratio: number;
  low: number;
  high: number;
  against: string;
  target?: number;
  /** From the interval: met (all of it at or above the target), missed (all of it below), cannot tell. */
  verdict?: 'met' | 'missed' | 'cannot tell';
  rounds: number;
}

/** A small seeded generator, so a resampling is the same on every run of the same figures. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;

/**
 * The ratio of mean reference CPU to mean variant CPU, and its 95% interval by
 * a paired bootstrap over rounds (both figures of a round are drawn together,
 * so what disturbed that round disturbs both).
 */
export function pairedRatio(reference: number[], variant: number[], resamples = 10_000): { ratio: number; low: number; high: number } {
  const random = seeded(reference.length * 7919 + variant.length);
  const n = reference.length;
  const draws: number[] = [];
  for (let i = 0; i < resamples; i++) {
    let sumReference = 0;
    let sumVariant = 0;
    for (let j = 0; j < n; j++) {
      const k = Math.floor(random() * n);
      sumReference += reference[k] as number;
      sumVariant += variant[k] as number;
    }
    draws.push(sumReference / sumVariant);
  }
  draws.sort((a, b) => a - b);
  return {
    ratio: mean(reference) / mean(variant),
    low: draws[Math.floor(resamples * 0.025)] as number,
    high: draws[Math.ceil(resamples * 0.975) - 1] as number,
  };
}

/** Met when the whole interval reaches the target, missed when none of it does, else cannot tell. */
export function cpuVerdict(low: number, high: number, target: number): 'met' | 'missed' | 'cannot tell' {
  if (low >= target) return 'met';
  if (high < target) return 'missed';
  return 'cannot tell';
}

/**
 * Measures CPU time per operation of each variant, this process and every
 * meter (server children) together, in rounds whose order rotates, and
 * reports each variant against its reference with a 95% interval. CPU time
 * counts the work done, not how long a shared machine made it wait, so a 2%
 * difference stands out of the noise that wall-clock throughput has.
 */
export async function compareCpu(
  suite: string,
  variants: CpuVariant[],
  options: { rounds?: number; durationMs?: number; concurrency?: number; warmupMs?: number; meters?: CpuMeter[] } = {},
): Promise<CpuResult[]> {
  const rounds = options.rounds ?? 1200;
  const durationMs = options.durationMs ?? 20;
  const concurrency = options.concurrency ?? 16;
  const meters = options.meters ?? [];
  const treeMicros = async () => {
    const own = process.cpuUsage();
    let total = own.user + own.system;
    for (const meter of meters) total += await meter.cpuMicros();
    return total;
  };
  const measured = async (variant: CpuVariant, ms: number) => {
    variant.before?.();
    try {
      const start = await treeMicros();
      const round = () => count(variant.run, ms, concurrency);
      const operations = await (variant.around ? variant.around(round) : round());
      return (((await treeMicros()) - start) * 1000) / operations;
    } finally {
      variant.after?.();
    }
  };
  for (const variant of variants) await measured(variant, options.warmupMs ?? 500);
  const samples = new Map<string, number[]>(variants.map((variant) => [variant.name, []]));
  // A fresh order every round: no variant always follows the same one, so
  // what a round leaves behind (warm caches, pending work) favours nobody.
  const random = seeded(rounds);
  for (let round = 0; round < rounds; round++) {
    const order = [...variants];
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j] as CpuVariant, order[i] as CpuVariant];
    }
    for (const variant of order) samples.get(variant.name)?.push(await measured(variant, durationMs));
  }
  const first = variants[0]?.name ?? '';
  return variants.map((variant) => {
    const against = variant.against ?? first;
    const reference = samples.get(against);
    if (!reference) throw new Error(`${suite} / ${variant.name}: no variant named ${against}`);
    const own = samples.get(variant.name) as number[];
    const { ratio, low, high } = pairedRatio(reference, own);
    return {
      suite,
      name: variant.name,
      cpuNsPerOp: mean(own),
      ratio,
      low,
      high,
      against,
      target: variant.target,
      verdict: variant.target === undefined ? undefined : cpuVerdict(low, high, variant.target),
      rounds,
    };
  });
}

/** Operations completed in `durationMs` with `concurrency` in flight. */
async function count(run: () => Promise<unknown>, durationMs: number, concurrency: number): Promise<number> {
  const deadline = performance.now() + durationMs;
  let completed = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        await run();
        completed++;
      }
    }),
  );
  return completed;
}

export function printCpu(title: string, results: CpuResult[]): void {
  record({
    suite: results[0]?.suite ?? '',
    title,
    kind: 'cpu',
    rows: results.map((result) => ({
      name: result.name,
      cpuNsPerOp: result.cpuNsPerOp,
      ratio: result.ratio,
      low: result.low,
      high: result.high,
      against: result.against,
      target: result.target,
      verdict: result.verdict,
      rounds: result.rounds,
    })),
  });
  console.log(`\n${title}`);
  console.table(
    results.map((result) => ({
      variant: result.name,
      'CPU µs/op': (result.cpuNsPerOp / 1000).toFixed(2),
      'vs reference': `${result.ratio.toFixed(3)}x [${result.low.toFixed(3)}, ${result.high.toFixed(3)}]`,
      target: result.target === undefined ? '' : `≥ ${result.target.toFixed(2)}x: ${result.verdict}`,
    })),
  );
}
