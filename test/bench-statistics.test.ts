/**
 * The statistics behind bench verdicts: a paired bootstrap ratio that finds a
 * known cost, an interval that covers it, and verdicts read from the interval.
 */
import { describe, expect, it } from 'vitest';
import { cpuVerdict, pairedRatio } from '../bench/harness.js';
import { markdown } from '../bench/report.js';

/** A seeded normal sample (Box-Muller), so the test is the same on every run. */
function noisy(n: number, mean: number, spread: number, seed: number): number[] {
  let state = seed;
  const uniform = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return (state + 1) / 2147483649;
  };
  return Array.from({ length: n }, () => mean + spread * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()));
}

describe('pairedRatio', () => {
  it('finds an exact 5% cost with an interval of no width when nothing else varies', () => {
    const reference = noisy(200, 80, 10, 1);
    const result = pairedRatio(
      reference,
      reference.map((value) => value * 1.05),
    );
    expect(result.ratio).toBeCloseTo(1 / 1.05, 10);
    expect(result.low).toBeCloseTo(1 / 1.05, 10);
    expect(result.high).toBeCloseTo(1 / 1.05, 10);
  });

  it('pairs rounds: a drift shared by both sides does not widen the interval', () => {
    const drift = noisy(400, 80, 15, 2);
    const result = pairedRatio(
      drift,
      drift.map((value, i) => value * 1.03 + (noisy(1, 0, 0.5, 100 + i)[0] as number)),
    );
    expect(result.low).toBeLessThan(1 / 1.03);
    expect(result.high).toBeGreaterThan(1 / 1.03);
    expect(result.high - result.low).toBeLessThan(0.01);
  });

  it('covers the true ratio about 95% of the time on independent noisy samples', () => {
    let covered = 0;
    const trials = 200;
    for (let trial = 0; trial < trials; trial++) {
      const reference = noisy(100, 80, 8, 1000 + trial);
      const variant = noisy(100, 84, 8, 5000 + trial);
      const { low, high } = pairedRatio(reference, variant, 2000);
      if (low <= 80 / 84 && 80 / 84 <= high) covered++;
    }
    expect(covered / trials).toBeGreaterThan(0.9);
    expect(covered / trials).toBeLessThanOrEqual(0.99);
  });
});

describe('cpuVerdict', () => {
  it.each([
    [0.981, 0.99, 0.98, 'met'],
    [0.98, 0.99, 0.98, 'met'],
    [0.97, 0.99, 0.98, 'cannot tell'],
    [0.96, 0.979, 0.98, 'missed'],
  ] as const)('[%s, %s] against %s: %s', (low, high, target, verdict) => {
    expect(cpuVerdict(low, high, target)).toBe(verdict);
  });
});

describe('the CPU-time table in docs/benchmarks.md', () => {
  it("shows each Node version's interval and the worse verdict", () => {
    const table = (node: string, low: number, high: number, verdict: string) => ({
      node,
      failed: [],
      tables: [
        {
          suite: 'node-http',
          title: 'One hop: CPU time per request',
          kind: 'cpu' as const,
          rows: [
            { name: 'bare', cpuNsPerOp: 66_000, ratio: 1, low: 1, high: 1, against: 'bare', rounds: 1200 },
            { name: 'dye baseline', cpuNsPerOp: 67_000, ratio: 0.985, low, high, against: 'bare', target: 0.98, verdict, rounds: 1200 },
          ],
        },
      ],
    });
    const text = markdown({
      date: '2026-11-30T00:00:00.000Z',
      machine: { cpu: 'test', cores: 2, memoryGiB: 24, platform: 'linux/x64' },
      runs: [table('20.20.2', 0.981, 0.99, 'met'), table('24.9.0', 0.975, 0.99, 'cannot tell')],
    });
    const row = text.split('\n').find((line) => line.startsWith('| dye baseline'));
    expect(row).toContain('0.985× [0.981, 0.990]');
    expect(row).toContain('0.985× [0.975, 0.990]');
    expect(row).toContain('≥ 0.98×');
    expect(row).toContain('**cannot tell**');
    expect(text.split('\n').find((line) => line.startsWith('| bare'))).toContain('—');
  });
});
