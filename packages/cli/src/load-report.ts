import type { LoadSecond, LoadSummary } from './load-engine.js';
import type { GuardBreach, ProbeWindow } from './production-guard.js';

/** Everything a load test produced: what `--json` writes and the HTML report shows. */
export interface LoadReport {
  settings: {
    url: string;
    tenant: string;
    method: string;
    rate: number;
    durationSeconds: number;
    connections: number;
    startedAt: string;
    probe?: string;
    abortOn?: string;
  };
  summary: LoadSummary;
  timeline: LoadSecond[];
  guard?: {
    windows: readonly ProbeWindow[];
    breach?: GuardBreach;
  };
  /** How the run ended. */
  outcome: 'completed' | 'aborted' | 'interrupted';
}
