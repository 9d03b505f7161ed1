import { leaveRotation, type Registration } from '@dye/discovery';
import type { Server } from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatusMap } from 'grpc-health-check';

/** `grpc.health.v1` (Check and Watch) for a server; `''` is the whole server. */
export function addHealthService(server: Server, initial: ServingStatusMap = { '': 'SERVING' }): HealthImplementation {
  const health = new HealthImplementation(initial);
  health.addToServer(server);
  return health;
}

export interface GracefulShutdownOptions {
  /**
   * How long the instance keeps serving after it deregistered, ms, so that
   * callers that have not yet seen the change still get answers (a preStop
   * sleep). Default: the registration's `propagationMs` (RedisRegistry: its
   * resync interval + 1 s), 0 without a registration.
   */
  drainDelayMs?: number;
  /** How long calls in flight may take once the server stops taking new ones, ms, before it is forced down. Default 10 000. */
  timeoutMs?: number;
  /** The health service to report NOT_SERVING on (for every listed service name). */
  health?: HealthImplementation;
  /** Service names whose status turns NOT_SERVING. Default `['']`. */
  services?: readonly string[];
}

/**
 * Takes an instance out of rotation and stops it without losing a call:
 * reports NOT_SERVING and deregisters it (callers' pickers drop it when they
 * hear of the change), keeps serving for the drain delay (calls from callers
 * that have not heard yet still succeed), then stops taking calls
 * (`tryShutdown`: HTTP/2 GOAWAY, which grpc-js callers retry elsewhere) and
 * waits for those in flight, forcing the rest down after `timeoutMs`. A
 * registry that cannot be reached is logged and the drain goes on (the
 * instance then leaves callers' pools when its connections close or its
 * entry expires): it never rejects. Resolves `'graceful'` or `'forced'`.
 * Budget `drainDelayMs + timeoutMs` for it (Kubernetes:
 * terminationGracePeriodSeconds).
 */
export async function gracefulShutdown(
  server: Server,
  registration: Registration | undefined,
  options: GracefulShutdownOptions = {},
): Promise<'graceful' | 'forced'> {
  for (const service of options.services ?? ['']) options.health?.setStatus(service, 'NOT_SERVING');
  await leaveRotation(registration, options.drainDelayMs, 'dye.grpc');
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve('forced');
    }, options.timeoutMs ?? 10_000);
    timer.unref();
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve('graceful');
    });
  });
}
