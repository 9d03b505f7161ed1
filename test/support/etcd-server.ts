import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { etcdAnswers, etcdArgs, etcdBinary } from '../../scripts/infra.mjs';
import { freePort } from './redis-server.js';

/**
 * An etcd of the test's own on free ports, for tests that stop and restart
 * it (outages) without touching the shared one. Its data survives a restart
 * (etcd is durable), unless `wipe()` removes it, as a lost disk would.
 */
export class OwnEtcdServer {
  #process: ChildProcess | undefined;
  readonly #dataDir = mkdtempSync(join(tmpdir(), 'dye-etcd-'));
  private constructor(
    readonly port: number,
    readonly peerPort: number,
  ) {}

  static async create(): Promise<OwnEtcdServer> {
    return new OwnEtcdServer(await freePort(), await freePort());
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.#process = spawn(etcdBinary(), etcdArgs(join(this.#dataDir, 'data'), this.port, this.peerPort), { stdio: 'ignore' });
    const deadline = Date.now() + 20_000;
    while (!(await etcdAnswers(this.port))) {
      if (Date.now() > deadline) throw new Error(`etcd on port ${this.port} did not start`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async stop(): Promise<void> {
    const child = this.#process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
    this.#process = undefined;
  }

  /** Removes its data (stopped first): the next start is an empty etcd. */
  async wipe(): Promise<void> {
    await this.stop();
    rmSync(join(this.#dataDir, 'data'), { recursive: true, force: true });
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.#dataDir, { recursive: true, force: true });
  }
}
