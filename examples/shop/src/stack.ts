/**
 * Starts the shop's services as separate Node processes (as they would run in
 * production), waits until each says it is ready, and stops them again. Used
 * by `npm run demo` and the e2e tests.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface ServiceSpec {
  /** `gateway`, `orders`, `inventory`, `notifier`: the file under dist/. */
  readonly service: string;
  /** The lane the instance serves (`DYE_TENANT`). */
  readonly lane: string;
  readonly env?: Readonly<Record<string, string>>;
}

/** The shop as DESIGN.md draws it: inventory twice (baseline and red), the rest baseline. */
export const SHOP_SERVICES: readonly ServiceSpec[] = [
  { service: 'inventory', lane: 'baseline' },
  { service: 'inventory', lane: 'red' },
  { service: 'orders', lane: 'baseline' },
  { service: 'notifier', lane: 'baseline' },
  { service: 'gateway', lane: 'baseline' },
];

export interface RunningService extends ServiceSpec {
  readonly pid: number;
  /** The port it listens on (from its `ready` line); notifier has none. */
  readonly port: number | undefined;
  /** Every line it printed so far. */
  readonly output: readonly string[];
}

export interface RunningShop {
  readonly gatewayUrl: string;
  readonly services: readonly RunningService[];
  /** SIGTERM to every service, SIGKILL after `graceMs`; resolves when all exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartShopOptions {
  /** Environment for every service (MYSQL_URL, REDIS_URL, KAFKA_BROKERS, DYE_SECRET, …), over process.env. */
  env: Readonly<Record<string, string>>;
  /** Each line a service prints, as it prints it. */
  onLine?: (service: ServiceSpec, line: string) => void;
  /** The services to start. Default {@link SHOP_SERVICES}. */
  services?: readonly ServiceSpec[];
  /** How long a service may take to say it is ready. Default 60 s (a Kafka group join takes a few). */
  readyTimeoutMs?: number;
  /** Where the built services are. Default: next to this file (examples/shop/dist). */
  distDir?: string;
}

const OWN_DIR = fileURLToPath(new URL('.', import.meta.url));

interface Child {
  spec: ServiceSpec;
  process: ChildProcess;
  output: string[];
  port: number | undefined;
  exited: Promise<number | null>;
  /** Called on the service's `ready` line. */
  ready: (() => void) | undefined;
}

/** Starts every service and resolves once all are ready; if one fails, stops the others and rejects with its output. */
export async function startShop(options: StartShopOptions): Promise<RunningShop> {
  const children: Child[] = [];
  const stop = async (graceMs = 10_000) => {
    await Promise.all(children.map((child) => stopChild(child, graceMs)));
  };
  try {
    const specs = options.services ?? SHOP_SERVICES;
    await Promise.all(
      specs.map(async (spec) => {
        const child = launch(spec, options);
        children.push(child);
        await waitReady(child, options.readyTimeoutMs ?? 60_000);
      }),
    );
  } catch (error) {
    await stop(2_000);
    throw error;
  }
  const gateway = children.find((child) => child.spec.service === 'gateway');
  return {
    gatewayUrl: gateway?.port === undefined ? '' : `http://127.0.0.1:${gateway.port}`,
    services: children.map((child) => ({
      ...child.spec,
      pid: child.process.pid as number,
      port: child.port,
      output: child.output,
    })),
    stop,
  };
}

function launch(spec: ServiceSpec, options: StartShopOptions): Child {
  const dist = options.distDir ?? OWN_DIR;
  const child = spawn(process.execPath, ['--import', join(dist, 'telemetry.js'), join(dist, `${spec.service}.js`)], {
    env: {
      ...process.env,
      ...options.env,
      // A port belongs to one instance: only the spec names it (empty = the service's default).
      PORT: '',
      ...spec.env,
      DYE_TENANT: spec.lane,
      DYE_APP: `shop.${spec.service}`,
      OTEL_SERVICE_NAME: `shop.${spec.service}`,
    },
    // The IPC channel is how a service notices that its supervisor died (runtime.ts).
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const launched: Child = {
    spec,
    process: child,
    output: [],
    port: undefined,
    exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
    ready: undefined,
  };
  for (const stream of [child.stdout, child.stderr] as NodeJS.ReadableStream[]) {
    createInterface({ input: stream }).on('line', (line) => {
      launched.output.push(line);
      options.onLine?.(spec, line);
      const entry = parseLine(line);
      if (entry?.msg === 'ready' && launched.ready) {
        launched.port = typeof entry.port === 'number' ? entry.port : undefined;
        launched.ready();
      }
    });
  }
  return launched;
}

function waitReady(child: Child, timeoutMs: number): Promise<void> {
  const name = `${child.spec.service} (${child.spec.lane})`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(`did not say ready within ${timeoutMs} ms`), timeoutMs);
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new Error(`${name} ${why}; its last lines:\n${child.output.slice(-15).join('\n')}`));
    };
    child.ready = () => {
      clearTimeout(timer);
      resolve();
    };
    void child.exited.then((code) => fail(`exited with code ${code} before it was ready`));
  });
}

async function stopChild(child: Child, graceMs: number): Promise<void> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return;
  child.process.kill('SIGTERM');
  const timer = setTimeout(() => child.process.kill('SIGKILL'), graceMs);
  await child.exited;
  clearTimeout(timer);
}

/** A service's JSON log line, or undefined for anything else it printed. */
export function parseLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
