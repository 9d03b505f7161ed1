import type { Registration } from '@dye/discovery';
import type { Server } from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatusMap } from 'grpc-health-check';

/** `grpc.health.v1` (Check and Watch) for a server; `''` is the whole server. */
export function addHealthService(server: Server, initial: ServingStatusMap = { '': 'SERVING' }): HealthImplementation {
  const health = new HealthImplementation(initial);
  health.addToServer(server);
  return health;
}

export interface GracefulShutdownOptions {
  /** How long in-flight calls may take before the server is forced down, ms. Default 10 000. */
  timeoutMs?: number;
  /** The health service to report NOT_SERVING on (for every listed service name). */
  health?: HealthImplementation;
  /** Service names whose status turns NOT_SERVING. Default `['']`. */
  services?: readonly string[];
}

/**
 * Takes an instance out of rotation and stops it without cutting calls short:
 * deregisters it (callers' pickers drop it on the registry's change event),
 * reports NOT_SERVING, waits for in-flight calls with `tryShutdown`, and forces
 * the rest down after `timeoutMs`. Resolves `'graceful'` or `'forced'`.
 */
export async function gracefulShutdown(
  server: Server,
  registration: Registration | undefined,
  options: GracefulShutdownOptions = {},
): Promise<'graceful' | 'forced'> {
  await registration?.deregister();
  for (const service of options.services ?? ['']) options.health?.setStatus(service, 'NOT_SERVING');
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
