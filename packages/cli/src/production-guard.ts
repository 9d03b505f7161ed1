import { EventEmitter } from 'node:events';
import { type AbortRule, breachedRule, describeObserved, type ProbeStats } from './abort-rules.js';
import { summarize } from './percentiles.js';

export interface ProductionGuardOptions {
  /** A baseline (production) endpoint: requests carry no tenant. */
  url: string;
  rules: readonly AbortRule[];
  /** How often the window is judged. Default 1000 ms. */
  intervalMs?: number;
  /** Probes sent per interval, one after another. Default 5. */
  probesPerInterval?: number;
  /** A probe slower than this is a failed probe. Default 5000 ms. */
  timeoutMs?: number;
}

export interface ProbeWindow extends ProbeStats {
  /** Seconds since the guard started, at the end of the window. */
  at: number;
}

export interface GuardBreach {
  rule: AbortRule;
  /** `p99 = 412 ms`. */
  observed: string;
  window: ProbeWindow;
}

interface Probe {
  latencyMs: number;
  ok: boolean;
}

/**
 * Samples a production endpoint while a load test runs and says when it
 * suffers: every interval it judges the probes of that interval against the
 * `--abort-on` rules and emits `breach` (once) or `window`. A probe still in
 * flight at the end of an interval counts with the time it has taken so far,
 * so a target that stopped answering is caught in the interval it stopped.
 */
export class ProductionGuard extends EventEmitter<{ window: [ProbeWindow]; breach: [GuardBreach] }> {
  readonly #options: Required<ProductionGuardOptions>;
  readonly #windows: ProbeWindow[] = [];
  #probes: Probe[] = [];
  #inFlightSince: number | undefined;
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  #startedAt = 0;
  #breach: GuardBreach | undefined;
  #loop: Promise<void> | undefined;

  constructor(options: ProductionGuardOptions) {
    super();
    this.#options = { intervalMs: 1000, probesPerInterval: 5, timeoutMs: 5000, ...options };
  }

  /** Every judged window so far. */
  get windows(): readonly ProbeWindow[] {
    return this.#windows;
  }

  get breach(): GuardBreach | undefined {
    return this.#breach;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#startedAt = performance.now();
    this.#loop = this.#probeLoop();
    this.#timer = setInterval(() => this.#judge(), this.#options.intervalMs);
  }

  async stop(): Promise<void> {
    this.#running = false;
    clearInterval(this.#timer);
    await this.#loop;
  }

  async #probeLoop(): Promise<void> {
    const spacing = this.#options.intervalMs / this.#options.probesPerInterval;
    while (this.#running) {
      const started = performance.now();
      this.#inFlightSince = started;
      const ok = await fetch(this.#options.url, { signal: AbortSignal.timeout(this.#options.timeoutMs) }).then(
        async (response) => {
          await response.arrayBuffer();
          return response.status < 500;
        },
        () => false,
      );
      this.#inFlightSince = undefined;
      // A probe production did not answer (refused, reset, 5xx) is as slow as
      // the timeout: a rule on latency alone still sees production down.
      const elapsed = performance.now() - started;
      this.#probes.push({ latencyMs: ok ? elapsed : Math.max(elapsed, this.#options.timeoutMs), ok });
      const rest = spacing - (performance.now() - started);
      if (rest > 0 && this.#running) await new Promise((resolve) => setTimeout(resolve, rest));
    }
  }

  #judge(): void {
    const probes = this.#probes;
    this.#probes = [];
    if (this.#inFlightSince !== undefined) {
      // Not failed yet, but at least this slow.
      probes.push({ latencyMs: performance.now() - this.#inFlightSince, ok: true });
    }
    const latency = summarize(probes.map((probe) => probe.latencyMs));
    const failures = probes.filter((probe) => !probe.ok).length;
    const window: ProbeWindow = {
      ...latency,
      errors: probes.length === 0 ? 0 : failures / probes.length,
      at: (performance.now() - this.#startedAt) / 1000,
    };
    this.#windows.push(window);
    this.emit('window', window);
    const rule = breachedRule(this.#options.rules, window);
    if (rule && !this.#breach) {
      this.#breach = { rule, observed: describeObserved(rule, window), window };
      this.emit('breach', this.#breach);
    }
  }
}
