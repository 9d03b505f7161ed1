import mysql, { type ConnectionOptions, type PoolOptions, type RowDataPacket } from 'mysql2/promise';

/** Options of a pool that a single connection does not take (mysql2 warns about them). */
const POOL_ONLY_OPTIONS = ['connectionLimit', 'maxIdle', 'idleTimeout', 'queueLimit', 'waitForConnections'] as const;

/** The options of `config` a plain connection takes. */
export function connectionOptions(config: PoolOptions): ConnectionOptions {
  const options: Record<string, unknown> = { ...config };
  for (const option of POOL_ONLY_OPTIONS) delete options[option];
  return options as ConnectionOptions;
}

/**
 * The names of the server's databases, for the guard to recognise another
 * database in SQL. Read as the production account (the shadow account sees
 * only its own databases) over a connection of its own, never a slot of a
 * pool: a full shadow pool cannot stall it, and it cannot stall the pool.
 * After the first read, a stale list is served while a fresh one is read.
 */
export class DatabaseList {
  #names: readonly string[] | undefined;
  #readAt = 0;
  #reading: Promise<readonly string[]> | undefined;
  #generation = 0;

  constructor(
    private readonly config: ConnectionOptions,
    private readonly ttlMs: number,
  ) {}

  /** Bumped whenever the list changes: verdicts cached before are stale. */
  get generation(): number {
    return this.#generation;
  }

  /** The list now, or undefined before the first read; starts a refresh when stale. */
  current(): readonly string[] | undefined {
    if (this.#names !== undefined && Date.now() - this.#readAt >= this.ttlMs) void this.refresh().catch(() => {});
    return this.#names;
  }

  /** The list, waiting for the first read only. */
  async ready(): Promise<readonly string[]> {
    return this.current() ?? (await this.refresh());
  }

  /** Whether `database` exists now (a fresh read). */
  async exists(database: string): Promise<boolean> {
    const names = await this.refresh();
    return names.some((name) => name.toLowerCase() === database.toLowerCase());
  }

  refresh(): Promise<readonly string[]> {
    this.#reading ??= this.read().finally(() => {
      this.#reading = undefined;
    });
    return this.#reading;
  }

  private async read(): Promise<readonly string[]> {
    const connection = await mysql.createConnection({ ...this.config, database: undefined, connectTimeout: 10_000 });
    try {
      const [rows] = await connection.query<RowDataPacket[]>('SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA');
      const names = rows.map((row) => String(row.name)).sort();
      if (this.#names === undefined || names.join('\u0000') !== this.#names.join('\u0000')) this.#generation++;
      this.#names = names;
      this.#readAt = Date.now();
      return names;
    } finally {
      connection.destroy();
    }
  }
}
