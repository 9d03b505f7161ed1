import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isPortOpen } from '../../scripts/infra.mjs';

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * A redis-server of the test's own on another port, for tests that stop and
 * restart Redis (outages) without touching the shared one.
 */
export class OwnRedisServer {
  #process: ChildProcess | undefined;
  constructor(
    readonly port: number,
    readonly extraArgs: readonly string[] = [],
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.#process = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...this.extraArgs],
      {
        stdio: 'ignore',
      },
    );
    const deadline = Date.now() + 10_000;
    while (!(await isPortOpen(this.port, 200))) {
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not start`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async stop(): Promise<void> {
    const child = this.#process;
    if (!child || child.exitCode !== null) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
    this.#process = undefined;
  }
}

/**
 * A three-master Redis Cluster of the test's own: three `redis-server
 * --cluster-enabled yes` joined by `redis-cli --cluster create`.
 */
export class OwnRedisCluster {
  readonly #nodes: OwnRedisServer[] = [];
  readonly #dir = mkdtempSync(join(tmpdir(), 'dye-cluster-'));

  get ports(): number[] {
    return this.#nodes.map((node) => node.port);
  }

  async start(): Promise<void> {
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const node = new OwnRedisServer(port, [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(this.#dir, `nodes-${port}.conf`),
        '--dir',
        this.#dir,
      ]);
      await node.start();
      this.#nodes.push(node);
    }
    const create = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...this.ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'],
      {
        encoding: 'utf8',
      },
    );
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    const deadline = Date.now() + 15_000;
    for (const port of this.ports) {
      for (;;) {
        const info = spawnSync('redis-cli', ['-p', String(port), 'cluster', 'info'], { encoding: 'utf8' }).stdout;
        if (info.includes('cluster_state:ok')) break;
        if (Date.now() > deadline) throw new Error(`cluster node ${port} not ok: ${info}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.#nodes.map((node) => node.stop()));
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
