import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isPortOpen } from '../../scripts/infra.mjs';

/**
 * A mariadbd of the test's own, on its own port and data directory, for tests
 * that stop and restart the server. Root has an empty password, as on the
 * shared server.
 */
export class OwnMariaDb {
  readonly #dir = mkdtempSync(join(tmpdir(), 'dye-mariadb-'));
  #process: ChildProcess | undefined;
  #installed = false;

  /** `options`: extra server options, such as `--sql-mode=ANSI_QUOTES`. */
  constructor(
    readonly port: number,
    readonly options: readonly string[] = [],
  ) {}

  async start(): Promise<void> {
    const asRoot = process.getuid?.() === 0;
    // A temporary directory of its own: mariadbd removes every `#sql*` file in
    // its tmpdir when it starts, the temporary tables of a server sharing /tmp included.
    mkdirSync(join(this.#dir, 'tmp'), { recursive: true });
    if (!this.#installed) {
      const install = spawnSync(
        'mariadb-install-db',
        [
          '--no-defaults',
          `--datadir=${join(this.#dir, 'data')}`,
          `--tmpdir=${join(this.#dir, 'tmp')}`,
          '--auth-root-authentication-method=normal',
          '--skip-test-db',
          ...(asRoot ? ['--user=root'] : []),
        ],
        { encoding: 'utf8' },
      );
      if (install.status !== 0) throw new Error(`mariadb-install-db failed: ${install.stdout}${install.stderr}`);
      this.#installed = true;
    }
    this.#process = spawn(
      'mariadbd',
      [
        '--no-defaults',
        `--datadir=${join(this.#dir, 'data')}`,
        `--tmpdir=${join(this.#dir, 'tmp')}`,
        `--port=${this.port}`,
        '--bind-address=127.0.0.1',
        `--socket=${join(this.#dir, 'mysqld.sock')}`,
        `--pid-file=${join(this.#dir, 'mysqld.pid')}`,
        '--skip-log-bin',
        '--innodb-buffer-pool-size=16M',
        ...this.options,
        ...(asRoot ? ['--user=root'] : []),
      ],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 30_000;
    while (!(await isPortOpen(this.port, 200))) {
      if (this.#process.exitCode !== null) throw new Error(`mariadbd on port ${this.port} exited with ${this.#process.exitCode}`);
      if (Date.now() > deadline) throw new Error(`mariadbd on port ${this.port} did not start`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Kills the server, as a crash would. */
  async kill(): Promise<void> {
    const child = this.#process;
    if (!child || child.exitCode !== null) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
    this.#process = undefined;
  }

  async destroy(): Promise<void> {
    await this.kill();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
