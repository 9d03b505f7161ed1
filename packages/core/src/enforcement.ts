import { logWarning } from './log.js';

/**
 * Who keeps an isolated tenant inside its own resources:
 * - `account` (the default): the store itself. The tenant talks to the store
 *   as its own account, allowed only its own resources (a MySQL user granted
 *   only `<db>_shadow`, a Redis ACL user allowed only `shadow:*`); Dye checks
 *   at first use that the account really is confined, and refuses otherwise.
 * - `guard-only`: Dye's own checks alone, on the production account. A parser
 *   that misses one form is a leak; meant for development, logged at start-up.
 */
export type EnforcementMode = 'account' | 'guard-only';

/** Logs, once per call, that isolated tenants of `store` run without the store's own enforcement. */
export function warnGuardOnly(store: string, detail: string): void {
  logWarning(
    `dye.${store}.guard-only`,
    `isolated tenants of ${store} are kept from production by Dye's checks only (enforcement: 'guard-only'); ${detail}`,
  );
}

/**
 * A check an adapter runs before the first isolated use of a store (that the
 * isolated account really is confined), shared by every caller: one run at a
 * time; a failure is kept for `retryAfterMs`, so a setup fixed while the
 * service runs is picked up without a restart and a broken one is not asked
 * again on every query; a success holds for `recheckEveryMs`, after which the
 * next isolated use waits for a fresh check, so a grant added later is noticed
 * and from then on every isolated use is refused until it is fixed. A check
 * that does not finish within `timeoutMs` has failed.
 */
export class FirstUseCheck {
  #passed = false;
  #passedAt = 0;
  #running: Promise<void> | undefined;
  #failure: { readonly error: unknown; readonly at: number } | undefined;

  constructor(
    private readonly check: () => Promise<void>,
    private readonly retryAfterMs = 5_000,
    private readonly recheckEveryMs = 60_000,
    // A check that does not finish is a failed check: isolated work could
    // otherwise stall it (holding a lock it waits for) and keep a stale pass.
    private readonly timeoutMs = 30_000,
  ) {}

  /** True while the last check passed and is fresh: the hot path tests this before anything else. */
  get passed(): boolean {
    return this.#passed && Date.now() - this.#passedAt < this.recheckEveryMs;
  }

  /** The last check's failure while it is remembered, for callers that cannot wait for a check. */
  get failure(): unknown {
    const failure = this.#failure;
    return failure && Date.now() - failure.at < this.retryAfterMs ? failure.error : undefined;
  }

  /** For a caller that cannot wait: starts a check when the last pass is stale (or none ran). */
  refresh(): void {
    if (!this.passed && this.failure === undefined) void this.#run().catch(() => {});
  }

  ensure(): Promise<void> {
    if (this.passed) return Promise.resolve();
    const failure = this.#failure;
    if (failure && Date.now() - failure.at < this.retryAfterMs) return Promise.reject(failure.error);
    return this.#run();
  }

  #run(): Promise<void> {
    this.#running ??= this.#bounded()
      .then(
        () => {
          this.#passed = true;
          this.#passedAt = Date.now();
          this.#failure = undefined;
        },
        (error: unknown) => {
          this.#passed = false;
          this.#failure = { error, at: Date.now() };
          throw error;
        },
      )
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  #bounded(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the isolation check did not finish within ${this.timeoutMs} ms`)), this.timeoutMs);
      timer.unref?.();
    });
    return Promise.race([this.check(), timeout]).finally(() => clearTimeout(timer));
  }
}
