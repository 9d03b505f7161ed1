import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { breachedRule, parseAbortRules } from '../src/abort-rules.js';
import { UsageError } from '../src/usage-error.js';

const stats = { count: 10, p50: 20, p90: 80, p95: 120, p99: 310, max: 400, mean: 40, errors: 0.02 };

describe('--abort-on rules', () => {
  it('reads latencies in ms or s and errors in %', () => {
    expect(parseAbortRules('p99>300ms, errors>1%,max>=2s,p50>15')).toEqual([
      { metric: 'p99', inclusive: false, threshold: 300, text: 'p99>300ms' },
      { metric: 'errors', inclusive: false, threshold: 0.01, text: 'errors>1%' },
      { metric: 'max', inclusive: true, threshold: 2000, text: 'max>=2s' },
      { metric: 'p50', inclusive: false, threshold: 15, text: 'p50>15' },
    ]);
  });

  it('finds the first breached rule, and none in an empty window', () => {
    expect(breachedRule(parseAbortRules('p99>300ms,errors>1%'), stats)?.text).toBe('p99>300ms');
    expect(breachedRule(parseAbortRules('p99>310ms,errors>1%'), stats)?.text).toBe('errors>1%');
    expect(breachedRule(parseAbortRules('p99>=310ms'), stats)?.text).toBe('p99>=310ms');
    expect(breachedRule(parseAbortRules('p99>310ms,errors>2%'), stats)).toBeUndefined();
    expect(breachedRule(parseAbortRules('p99>1ms'), { ...stats, count: 0 })).toBeUndefined();
  });

  it('refuses what it cannot read with a UsageError naming the part', () => {
    for (const [text, message] of [
      ['', /empty/],
      ['p99<300ms', /cannot read "p99<300ms"/],
      ['errors>1ms', /percentage/],
      ['p99>3%', /ms or s/],
      ['errors>150%', /above 100/],
      ['p98>3ms', /cannot read/],
      [Array(17).fill('p99>1ms').join(','), /at most 16/],
    ] as const) {
      expect(() => parseAbortRules(text)).toThrow(UsageError);
      expect(() => parseAbortRules(text)).toThrow(message);
    }
  });

  it('never throws anything but a UsageError, whatever it is given (fuzz)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^(p\d\d|max|errors)[<>=]{1,2}[0-9.]{1,6}(ms|s|%)?(,.*)?$/)), (text) => {
        try {
          const rules = parseAbortRules(text);
          for (const rule of rules) expect(Number.isFinite(rule.threshold) && rule.threshold >= 0).toBe(true);
        } catch (error) {
          expect(error).toBeInstanceOf(UsageError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
