import type { LoadSecond, LoadSummary } from './load-engine.js';
import type { PreflightResult } from './preflight.js';
import type { GuardBreach, ProbeWindow } from './production-guard.js';
import type { VerifyResult } from './verify-command.js';

/** Everything a load test produced: what `--json` writes and the HTML report shows. */
/** Per topic, the end offset of each partition: `{ orders: { '0': '42' } }`. */
export type KafkaStartOffsets = Record<string, Record<string, string>>;

export interface LoadReport {
  settings: {
    url: string;
    /** The run id: `x-dye-run` on every request, `{{run}}` in bodies; what `dye verify --run` looks for. */
    run: string;
    /** Where responses said their tenant (`header x-tenant`, `JSON field tenant`, `not checked`). */
    servedTenant: string;
    tenant: string;
    method: string;
    rate: number;
    durationSeconds: number;
    connections: number;
    startedAt: string;
    probe?: string;
    abortOn?: string;
    /**
     * Where each Kafka partition ended just before the load (`--verify
     * --kafka`): the verify search starts there, not at a timestamp a producer
     * could set earlier. Topics not listed were made later and are read whole.
     */
    kafkaStartOffsets?: KafkaStartOffsets;
  };
  /** The one request sent alone before the load. */
  preflight: PreflightResult;
  /** Absent when the preflight stopped the run. */
  summary?: LoadSummary;
  timeline?: LoadSecond[];
  guard?: {
    windows: readonly ProbeWindow[];
    breach?: GuardBreach;
  };
  /** With `--verify`: where the run's id was found afterwards (production places are leaks). */
  verify?: VerifyResult;
  /** Why the run aborted on the load's own errors (an `errors>` rule of `--abort-on`). */
  loadBreach?: string;
  /** How the run ended. */
  outcome: 'completed' | 'aborted' | 'interrupted' | 'wrong-tenant' | 'failed';
}
