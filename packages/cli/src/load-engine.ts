import autocannon from 'autocannon';
import { summarize } from './percentiles.js';

export interface LoadOptions {
  url: string;
  /** Requests per second, all connections together. */
  rate: number;
  durationSeconds: number;
  connections: number;
  method: string;
  headers: Record<string, string>;
  body?: string;
  /** Per-request timeout, seconds. */
  timeoutSeconds: number;
}

/** One second of the test. */
export interface LoadSecond {
  /** Seconds since the start (1 = the first second). */
  second: number;
  requests: number;
  /** Network errors and timeouts. */
  errors: number;
  /** Responses with status ≥ 400. */
  failedResponses: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface LoadSummary {
  /** Requests answered or failed. */
  requests: number;
  /** Requests sent, including those still in flight when the test ended (their answers are not waited for). */
  sent: number;
  durationSeconds: number;
  /** Mean completed requests per second. */
  throughput: number;
  latency: { p50: number; p90: number; p99: number; max: number; mean: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodes: Record<string, number>;
}

export interface LoadRun {
  /** Seconds completed so far, for a progress display. */
  readonly timeline: readonly LoadSecond[];
  /** Stops the load early; `done` resolves with what was measured. */
  stop(): void;
  readonly done: Promise<{ summary: LoadSummary; timeline: LoadSecond[] }>;
}

/**
 * Sends load with autocannon at a fixed overall rate and records every
 * response into one-second buckets (latency percentiles, errors) for the
 * report's charts; the summary is autocannon's own.
 */
export function startLoad(options: LoadOptions, onSecond?: (second: LoadSecond) => void): LoadRun {
  const timeline: LoadSecond[] = [];
  let bucket = { latencies: [] as number[], errors: 0, failedResponses: 0 };
  let startedAt = performance.now();
  const closeSecond = () => {
    const { count, p50, p90, p99, max } = summarize(bucket.latencies);
    const second: LoadSecond = {
      second: timeline.length + 1,
      requests: count,
      errors: bucket.errors,
      failedResponses: bucket.failedResponses,
      p50,
      p90,
      p99,
      max,
    };
    timeline.push(second);
    bucket = { latencies: [], errors: 0, failedResponses: 0 };
    onSecond?.(second);
  };

  let finish: (error: unknown, result: autocannon.Result) => void = () => {};
  const instance = autocannon(
    {
      url: options.url,
      connections: options.connections,
      duration: options.durationSeconds,
      overallRate: options.rate,
      method: options.method as autocannon.Request['method'],
      headers: options.headers,
      ...(options.body === undefined ? {} : { body: options.body }),
      timeout: options.timeoutSeconds,
      // autocannon notices stop() on its next sample: at the default 1 s, an
      // aborted test would keep loading production for up to a second.
      sampleInt: 100,
    },
    (error, result) => finish(error, result),
  );
  // autocannon's own 'tick' comes every second but is not aligned with our
  // start; a timer of our own keeps the buckets one second wide.
  let timer: NodeJS.Timeout | undefined;
  instance.on('start', () => {
    startedAt = performance.now();
    timer = setInterval(closeSecond, 1000);
  });
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    bucket.latencies.push(responseTime);
    if (statusCode >= 400) bucket.failedResponses++;
  });
  instance.on('reqError', () => {
    bucket.errors++;
  });

  const done = new Promise<{ summary: LoadSummary; timeline: LoadSecond[] }>((resolve, reject) => {
    finish = (error, result) => {
      clearInterval(timer);
      if (error) return reject(error);
      // The last partial second, if it saw anything.
      if (bucket.latencies.length > 0 || bucket.errors > 0) closeSecond();
      const elapsed = (performance.now() - startedAt) / 1000;
      const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, stats]) => [code, stats.count ?? 0]));
      const completed = Object.values(statusCodes).reduce((total, count) => total + count, 0);
      resolve({
        summary: {
          requests: completed + result.errors,
          sent: result.requests.sent,
          durationSeconds: elapsed,
          throughput: elapsed > 0 ? completed / elapsed : 0,
          latency: {
            p50: result.latency.p50,
            p90: result.latency.p90,
            p99: result.latency.p99,
            max: result.latency.max,
            mean: result.latency.average,
          },
          errors: result.errors,
          timeouts: result.timeouts,
          non2xx: result.non2xx,
          statusCodes,
        },
        timeline,
      });
    };
  });

  return { timeline, stop: () => instance.stop(), done };
}
