import { UsageError } from './usage-error.js';

/** A latency percentile, the maximum, the mean, or the share of failed probes. */
export type GuardMetric = 'p50' | 'p90' | 'p95' | 'p99' | 'max' | 'mean' | 'errors';

/** One condition of `--abort-on`: `p99>300ms`, `errors>1%`. */
export interface AbortRule {
  readonly metric: GuardMetric;
  readonly inclusive: boolean;
  /** Milliseconds for latencies, a fraction (0.01) for errors. */
  readonly threshold: number;
  /** As written by the user, for messages. */
  readonly text: string;
}

/** What the guard measured in one probe window. */
export interface ProbeStats {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
  /** Share of probes that failed (network error, timeout, status ≥ 500). */
  readonly errors: number;
}

const RULE = /^(p50|p90|p95|p99|max|mean|errors)\s*(>=|>)\s*(\d+(?:\.\d+)?)\s*(ms|s|%)?$/;
const MAX_RULES = 16;

/**
 * Parses `--abort-on`: comma-separated conditions `<metric><op><value>`, where
 * metric is p50, p90, p95, p99, max or mean (a latency: `300ms`, `1.5s`; a bare
 * number is milliseconds) or errors (a share: `1%`), and op is `>` or `>=`.
 * Throws a UsageError that names the part it could not read.
 */
export function parseAbortRules(text: string): AbortRule[] {
  if (typeof text !== 'string' || text.trim() === '') throw new UsageError('--abort-on is empty; expected for example p99>300ms,errors>1%');
  const parts = text.split(',').map((part) => part.trim());
  if (parts.length > MAX_RULES) throw new UsageError(`--abort-on has ${parts.length} conditions; at most ${MAX_RULES}`);
  return parts.map((part) => {
    const match = RULE.exec(part.toLowerCase());
    if (!match) {
      throw new UsageError(
        `--abort-on: cannot read ${JSON.stringify(part.slice(0, 40))}; expected <p50|p90|p95|p99|max|mean><op><n>ms|s or errors<op><n>%, op > or >=`,
      );
    }
    const [, metric, op, number, unit] = match as unknown as [string, GuardMetric, string, string, string | undefined];
    const value = Number(number);
    if (metric === 'errors') {
      if (unit !== '%') throw new UsageError(`--abort-on: ${part}: errors take a percentage, as errors>1%`);
      if (value > 100) throw new UsageError(`--abort-on: ${part}: a percentage above 100 never triggers`);
      return { metric, inclusive: op === '>=', threshold: value / 100, text: part };
    }
    if (unit === '%') throw new UsageError(`--abort-on: ${part}: a latency takes ms or s, not %`);
    return { metric, inclusive: op === '>=', threshold: unit === 's' ? value * 1000 : value, text: part };
  });
}

/** The first rule that `stats` breaches, if any. */
export function breachedRule(rules: readonly AbortRule[], stats: ProbeStats): AbortRule | undefined {
  if (stats.count === 0) return undefined;
  return rules.find((rule) => {
    const observed = stats[rule.metric];
    return rule.inclusive ? observed >= rule.threshold : observed > rule.threshold;
  });
}

/** `p99 = 412 ms`, `errors = 3.1%`: what a rule measured, for the abort message. */
export function describeObserved(rule: AbortRule, stats: ProbeStats): string {
  const observed = stats[rule.metric];
  return rule.metric === 'errors' ? `errors = ${(observed * 100).toFixed(1)}%` : `${rule.metric} = ${Math.round(observed)} ms`;
}
