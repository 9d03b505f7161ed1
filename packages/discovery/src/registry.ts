import { logWarning } from '@dye/core';
import type { Instance } from './instance.js';

/** Removes a registration: the instance stops being routed to. */
export interface Registration {
  readonly instance: Instance;
  /**
   * How long after `deregister()` every caller has stopped picking the
   * instance, ms: the registry's change events may be lost, and its callers
   * re-read within this time. A drain keeps serving for this long (a
   * preStop sleep). 0 when callers hear of changes at once.
   */
  readonly propagationMs?: number;
  deregister(): Promise<void>;
}

/** What a watcher is told: the instances to route to now, and how fresh that is. */
export interface InstancesUpdate {
  readonly app: string;
  readonly instances: readonly Instance[];
  /** When the registry last answered for this app (ms since epoch). */
  readonly syncedAt: number;
  /** True while the registry is unreachable and `instances` come from the cache. */
  readonly stale: boolean;
  /** True while a mass expiry is being held back (self-preservation). */
  readonly preserving: boolean;
}

export type InstancesListener = (update: InstancesUpdate) => void;

/** Where instances announce themselves and callers find them. */
export interface Registry {
  /** Announces an instance until `deregister()` (or, for a registry with heartbeats, until it stops). */
  register(instance: Instance): Promise<Registration>;
  /** Calls `listener` with the current instances of `app` and on every change; returns an unsubscribe function. */
  watch(app: string, listener: InstancesListener): () => void;
  /** The current instances of `app` (from the cache when the registry is unreachable). */
  snapshot(app: string): Promise<InstancesUpdate>;
  /** Stops timers and connections the registry owns. */
  close(): Promise<void>;
}

/**
 * The first half of a drain, for every server kind: deregisters (an
 * unreachable registry is logged as `<source>.deregister-failed`, never a
 * rejection: the instance then leaves callers' pools when its connections
 * close or its entry expires) and waits `drainDelayMs` (default the
 * registration's `propagationMs`) while the server keeps serving.
 */
export async function leaveRotation(
  registration: Registration | undefined,
  drainDelayMs: number | undefined,
  source: string,
): Promise<void> {
  try {
    await registration?.deregister();
  } catch (error) {
    logWarning(
      `${source}.deregister-failed`,
      `could not deregister ${registration?.instance.app}/${registration?.instance.id} (draining anyway; callers drop it when its connections close or its entry expires): ${(error as Error).message}`,
    );
  }
  const delay = drainDelayMs ?? registration?.propagationMs ?? 0;
  if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
}
