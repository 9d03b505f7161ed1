import { RedisRegistry, type Registration } from '@dye/discovery';
import { addHealthService, gracefulShutdown, registerTenantRouting, tenantServerInterceptor } from '@dye/grpc';
import { tenantRedis } from '@dye/ioredis';
import { createTenantPool, type TenantPool } from '@dye/mysql2';
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import type pino from 'pino';
import type { ShopConfig } from './config.js';

/**
 * The shop's MySQL pool: production as `MYSQL_URL`'s account, isolated tenants
 * in `<db>_shadow` as the shadow account setup created (checked at first use).
 */
export function shopDatabase(config: ShopConfig, connectionLimit: number): TenantPool {
  const { user, password } = config.mysqlShadow;
  if (password === undefined) throw new Error('MYSQL_SHADOW_PASSWORD is not set: the password of the shadow account setup created');
  return createTenantPool({ ...config.mysql, connectionLimit }, { isolatedConfig: { user, password } });
}

/**
 * The shop's Redis: production as `REDIS_URL`'s user, isolated tenants on
 * connections of their own as the ACL user setup created (checked at first use).
 */
export function shopRedis(config: ShopConfig): Redis {
  const { user, password } = config.redisShadow;
  if (password === undefined) throw new Error('REDIS_SHADOW_PASSWORD is not set: the password of the Redis user setup created');
  return tenantRedis(new Redis(config.redisUrl), { isolated: { username: user, password } });
}

/** The service registry every shop process shares (Redis), with tenant routing for its gRPC clients. */
export function connectRegistry(config: ShopConfig): RedisRegistry {
  const registry = new RedisRegistry({ redis: config.redisUrl, prefix: config.registryPrefix });
  registerTenantRouting({ registry });
  return registry;
}

/**
 * Starts a gRPC server with Dye's server interceptor and health service, and
 * registers it under `app` in its lane; SIGTERM/SIGINT drain it gracefully.
 */
export async function serveGrpc(options: {
  app: string;
  config: ShopConfig;
  registry: RedisRegistry;
  log: pino.Logger;
  services: [grpc.ServiceDefinition, grpc.UntypedServiceImplementation][];
  onStop?: () => Promise<void>;
}): Promise<{ port: number; registration: Registration }> {
  const { app, config, registry, log } = options;
  const server = new grpc.Server({ interceptors: [tenantServerInterceptor] });
  for (const [definition, implementation] of options.services) server.addService(definition, implementation);
  const health = addHealthService(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${config.host}:${config.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  const registration = await registry.register({
    app,
    id: `${app}-${config.lane}-${process.pid}`,
    address: `${config.host}:${port}`,
    lane: config.lane,
  });
  onShutdown(log, async () => {
    // Serves on for the registry's resync + 1 s (6 s) while callers drop it, then 3 s for calls in flight: within STOP_DEADLINE_MS.
    const how = await gracefulShutdown(server, registration, { health, timeoutMs: 3000 });
    log.info({ how }, 'gRPC server stopped');
    await options.onStop?.();
    await registry.close();
  });
  return { port, registration };
}

/** How long stopping may take before the process exits anyway. */
const STOP_DEADLINE_MS = 10_000;

/** Runs `stop` once on SIGTERM or SIGINT, then exits (1 if stopping failed or overran its deadline). */
export function onShutdown(log: pino.Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    setTimeout(() => {
      log.error({ deadlineMs: STOP_DEADLINE_MS }, 'stopping took too long; exiting');
      process.exit(1);
    }, STOP_DEADLINE_MS).unref();
    const flushTelemetry = (globalThis as Record<symbol, (() => Promise<void>) | undefined>)[Symbol.for('shop.telemetry.shutdown')];
    stop()
      .then(() => flushTelemetry?.())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          log.error({ err: error }, 'stopping failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  // Started by a supervisor over IPC (the demo, the e2e tests): stop with it,
  // even when it dies without a chance to send SIGTERM.
  if (process.send) process.once('disconnect', () => handler('supervisor gone'));
}

/** Maps an error to a gRPC status for the caller: isolation refusals and missing data keep their meaning. */
export function grpcError(error: unknown): Partial<grpc.StatusObject> & Error {
  const failure = error instanceof Error ? error : new Error(String(error));
  const code = (failure as { code?: unknown }).code;
  const status =
    code === 'DYE_ISOLATION'
      ? grpc.status.FAILED_PRECONDITION
      : typeof code === 'number' && code in grpc.status
        ? code
        : grpc.status.INTERNAL;
  return Object.assign(new Error(failure.message), { code: status, details: failure.message });
}
