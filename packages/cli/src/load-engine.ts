import { build as buildHistogram, type Histogram } from 'hdr-histogram-js';
import { Pool } from 'undici';
import { summarize } from './percentiles.js';
import { edgeContradicts, type ServedTenantReader } from './served-tenant.js';

export interface LoadOptions {
  url: string;
  /** Requests per second, all connections together. */
  rate: number;
  durationSeconds: number;
  connections: number;
  method: string;
  headers: Record<string, string>;
  /** The body; `{{run}}` becomes the run id, `{{seq}}` the request's number (from 1). */
  body?: string;
  /** Per-request timeout, seconds. */
  timeoutSeconds: number;
  /** This run's id: sent as `x-dye-run` and put in the body for `{{run}}`, so `dye verify` can look for it. */
  runId: string;
  /** Reads the tenant a response was served in; a response in another tenant than `tenant` stops the run. */
  servedTenant: ServedTenantReader;
  /** The tenant every response must have been served in. */
  tenant: string;
}

/** One second of the test. */
export interface LoadSecond {
  /** Which second of the test (1 = the first). */
  second: number;
  /** Seconds since the start at this bucket's end (the last bucket of a run may be shorter than a second). */
  at: number;
  /** How long this bucket lasted, in seconds: 1, or less for the last. */
  seconds: number;
  /** Requests answered or failed in this second. */
  requests: number;
  /** Network errors and timeouts. */
  errors: number;
  /** Responses with status ≥ 400. */
  failedResponses: number;
  /** Responses served in another tenant than the one asked for. */
  mismatched: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/**
 * What a run did, each request counted once: `sent` = `answered` + `failed`
 * + `inFlightAtEnd`; `scheduled` = `sent` + `notSent`.
 */
export interface LoadSummary {
  /** Request slots the rate called for while the run lasted. */
  scheduled: number;
  /** Slots skipped because every connection was busy with an earlier request (the target is slower than rate ÷ connections). */
  notSent: number;
  /** Requests handed to a connection. */
  sent: number;
  /** Requests that got a response (any status). */
  answered: number;
  /** Requests that got no response: connection refused or reset, timeout. */
  failed: number;
  /** Requests still without an answer when the run stopped (cancelled by an abort or an interrupt). */
  inFlightAtEnd: number;
  durationSeconds: number;
  /** Mean answered requests per second. */
  throughput: number;
  latency: { p50: number; p90: number; p99: number; max: number; mean: number };
  timeouts: number;
  /** Answered with status ≥ 400. */
  non2xx: number;
  statusCodes: Record<string, number>;
  /** Answered requests by the tenant they were served in (`unknown` where it could not be read). */
  servedTenants: Record<string, number>;
  /** Answered in another tenant than the one asked for. */
  mismatched: number;
  /** The first such answer. */
  firstMismatch?: { seq: number; served: string; status: number };
}

export type LoadEnd = 'completed' | 'wrong-tenant' | 'stopped';

export interface LoadRun {
  readonly timeline: readonly LoadSecond[];
  /** Stops the load: no new request; those in flight are cancelled. */
  stop(): void;
  readonly done: Promise<{ summary: LoadSummary; timeline: LoadSecond[]; end: LoadEnd }>;
}

// How often the scheduler wakes: requests due meanwhile go out together, so
// short bursts of at most rate × 5 ms.
const TICK_MS = 5;

/**
 * Sends a load test at a fixed overall rate: request n is due at n ÷ rate
 * seconds, whatever happened to the ones before (a failing connection is not
 * retried faster than the rate), on at most `connections` connections; a slot
 * that finds them all busy is skipped and counted. Every response's served
 * tenant is read, and the first one in another tenant stops the run.
 */
export function startLoad(options: LoadOptions, onSecond?: (second: LoadSecond) => void): LoadRun {
  const origin = new URL(options.url);
  const path = `${origin.pathname}${origin.search}`;
  const timeoutMs = options.timeoutSeconds * 1000;
  const pool = new Pool(origin.origin, {
    connections: options.connections,
    pipelining: 1,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connectTimeout: timeoutMs,
  });
  const headers = { ...options.headers, 'x-dye-run': options.runId };
  const template = options.body;
  const templated = template !== undefined && (template.includes('{{run}}') || template.includes('{{seq}}'));

  const timeline: LoadSecond[] = [];
  const latencies: Histogram = buildHistogram({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
  });
  let bucket = { latencies: [] as number[], errors: 0, failedResponses: 0, mismatched: 0 };
  const summary: LoadSummary = {
    scheduled: 0,
    notSent: 0,
    sent: 0,
    answered: 0,
    failed: 0,
    inFlightAtEnd: 0,
    durationSeconds: 0,
    throughput: 0,
    latency: { p50: 0, p90: 0, p99: 0, max: 0, mean: 0 },
    timeouts: 0,
    non2xx: 0,
    statusCodes: {},
    servedTenants: {},
    mismatched: 0,
  };
  let bucketStart = 0;
  const closeSecond = () => {
    const { count, p50, p90, p99, max } = summarize(bucket.latencies);
    const at = (performance.now() - startedAt) / 1000;
    const second: LoadSecond = {
      second: timeline.length + 1,
      at: Math.round(at * 1000) / 1000,
      seconds: Math.round((at - bucketStart) * 1000) / 1000,
      requests: count + bucket.errors,
      errors: bucket.errors,
      failedResponses: bucket.failedResponses,
      mismatched: bucket.mismatched,
      p50,
      p90,
      p99,
      max,
    };
    timeline.push(second);
    bucketStart = at;
    bucket = { latencies: [], errors: 0, failedResponses: 0, mismatched: 0 };
    onSecond?.(second);
  };

  const startedAt = performance.now();
  const endsAt = startedAt + options.durationSeconds * 1000;
  let inFlight = 0;
  let stopping = false;
  let end: LoadEnd = 'completed';
  const cancel = new AbortController();
  let settle: () => void = () => {};
  const drained = new Promise<void>((resolve) => {
    settle = resolve;
  });
  const maybeDrained = () => {
    if (inFlight === 0 && (stopping || performance.now() >= endsAt)) settle();
  };

  const sendOne = async (seq: number) => {
    inFlight++;
    summary.sent++;
    const sentAt = performance.now();
    const body = templated ? (template as string).replaceAll('{{run}}', options.runId).replaceAll('{{seq}}', String(seq)) : template;
    try {
      const response = await pool.request({
        path,
        method: options.method as 'GET',
        headers,
        ...(body === undefined ? {} : { body }),
        signal: cancel.signal,
      });
      const text = options.servedTenant.needsBody ? await response.body.text() : (await response.body.dump(), '');
      const latency = performance.now() - sentAt;
      if (stopping && cancel.signal.aborted) return;
      summary.answered++;
      latencies.recordValue(Math.max(1, Math.round(latency)));
      bucket.latencies.push(latency);
      const status = String(response.statusCode);
      summary.statusCodes[status] = (summary.statusCodes[status] ?? 0) + 1;
      if (response.statusCode < 200 || response.statusCode >= 300) summary.non2xx++;
      if (response.statusCode >= 400) bucket.failedResponses++;
      // The edge's x-tenant counts in the trailers too (read once the body is).
      const contradicted = edgeContradicts(response.headers, options.tenant) ?? edgeContradicts(response.trailers ?? {}, options.tenant);
      const served = contradicted ?? options.servedTenant.read(response.headers, text) ?? 'unknown';
      summary.servedTenants[served] = (summary.servedTenants[served] ?? 0) + 1;
      if ((options.servedTenant.checks || contradicted !== undefined) && served !== options.tenant) {
        summary.mismatched++;
        bucket.mismatched++;
        summary.firstMismatch ??= { seq, served, status: response.statusCode };
        if (end === 'completed') end = 'wrong-tenant';
        stop();
      }
    } catch (error) {
      if (cancel.signal.aborted) return;
      summary.failed++;
      bucket.errors++;
      const code = (error as { code?: string }).code;
      if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') summary.timeouts++;
    } finally {
      inFlight--;
      maybeDrained();
    }
  };

  let seq = 0;
  let timer: NodeJS.Timeout | undefined;
  const secondTimer = setInterval(closeSecond, 1000);
  const tick = () => {
    const now = performance.now();
    const until = Math.min(now, endsAt);
    // Every slot due by now: sent if a connection is free, skipped otherwise.
    while (!stopping && startedAt + (seq * 1000) / options.rate <= until) {
      seq++;
      summary.scheduled++;
      if (inFlight >= options.connections) summary.notSent++;
      else void sendOne(seq);
    }
    if (stopping || now >= endsAt) {
      maybeDrained();
      return;
    }
    timer = setTimeout(tick, TICK_MS);
  };
  const stop = () => {
    if (stopping) return;
    stopping = true;
    if (end === 'completed') end = 'stopped';
    clearTimeout(timer);
    // What is in flight is cancelled: after a wrong tenant or a breach, nothing more should be served.
    cancel.abort();
    maybeDrained();
  };
  tick();

  const done = (async () => {
    await drained;
    clearTimeout(timer);
    clearInterval(secondTimer);
    if (bucket.latencies.length > 0 || bucket.errors > 0) {
      const previous = timeline.at(-1);
      const at = (performance.now() - startedAt) / 1000;
      // A last sliver (the answers that came in just after the final second)
      // joins that second, or it would chart as a spike of its own.
      if (previous && at - bucketStart < 0.25) {
        previous.requests += bucket.latencies.length + bucket.errors;
        previous.errors += bucket.errors;
        previous.failedResponses += bucket.failedResponses;
        previous.mismatched += bucket.mismatched;
        previous.max = Math.max(previous.max, ...bucket.latencies);
        previous.seconds = Math.round((previous.seconds + at - bucketStart) * 1000) / 1000;
        previous.at = Math.round(at * 1000) / 1000;
      } else closeSecond();
    }
    await pool.destroy().catch(() => {});
    const elapsed = (performance.now() - startedAt) / 1000;
    summary.inFlightAtEnd = summary.sent - summary.answered - summary.failed;
    summary.durationSeconds = elapsed;
    summary.throughput = elapsed > 0 ? summary.answered / elapsed : 0;
    if (summary.answered > 0) {
      summary.latency = {
        p50: latencies.getValueAtPercentile(50),
        p90: latencies.getValueAtPercentile(90),
        p99: latencies.getValueAtPercentile(99),
        max: latencies.maxValue,
        mean: Math.round(latencies.mean * 100) / 100,
      };
    }
    latencies.destroy();
    return { summary, timeline, end };
  })();

  return { timeline, stop, done };
}
