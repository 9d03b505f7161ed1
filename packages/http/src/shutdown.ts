import type { Server } from 'node:http';
import type { Http2SecureServer, Http2Server } from 'node:http2';
import { leaveRotation, type Registration } from '@dye/discovery';

export interface GracefulHttpShutdownOptions {
  /**
   * How long the server keeps serving after it deregistered, ms, while
   * callers drop it (a preStop sleep). Default: the registration's
   * `propagationMs`, 0 without a registration.
   */
  drainDelayMs?: number;
  /** How long requests in flight may take once the server stops taking connections, ms, before the rest are cut. Default 10 000. */
  timeoutMs?: number;
}

/**
 * Takes an HTTP instance out of rotation and stops it without losing a
 * request, as `gracefulShutdown` does for gRPC: deregisters it (a registry it
 * cannot reach is logged, never a rejection), keeps serving for the drain
 * delay (requests from callers that have not heard yet are answered, and say
 * `Connection: close`, so keep-alive callers reconnect elsewhere), then stops
 * taking connections, closes idle ones and waits for requests in flight,
 * cutting the rest after `timeoutMs`. Resolves `'graceful'` or `'forced'`.
 */
export async function gracefulHttpShutdown(
  server: Server | Http2Server | Http2SecureServer,
  registration: Registration | undefined,
  options: GracefulHttpShutdownOptions = {},
): Promise<'graceful' | 'forced'> {
  // From now on each response closes its connection: a caller's next request opens one elsewhere.
  const closing = (_req: unknown, res: { setHeader?: (name: string, value: string) => void; headersSent?: boolean }) => {
    if (!res.headersSent && (res as { stream?: unknown }).stream === undefined) res.setHeader?.('connection', 'close');
  };
  server.prependListener('request', closing as never);
  await leaveRotation(registration, options.drainDelayMs, 'dye.http');
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      (server as Server).closeAllConnections?.();
      resolve('forced');
    }, options.timeoutMs ?? 10_000);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve('graceful');
    });
    (server as Server).closeIdleConnections?.();
  });
}
