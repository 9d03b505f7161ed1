/** Bad usage: a missing or malformed argument or setting. The CLI prints its message on one line and exits 2. */
export class UsageError extends Error {
  readonly exitCode = 2;

  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Exit codes of the `dye` command. */
export const EXIT = {
  ok: 0,
  /** The command ran and found a problem: drift, an invalid token, an unreachable target. */
  failed: 1,
  usage: 2,
  /** `dye load` stopped by its production guard. */
  aborted: 3,
  /** `dye load` answered in another tenant than the one asked for (a wrong secret, an edge that ignores the token). */
  wrongTenant: 4,
  /**
   * Nothing wrong was found, but the proof is incomplete: `dye verify` could not
   * read every production place in full (a bound, a lock, a privilege), or
   * `dye load` sent requests whose tenant no response confirmed.
   */
  unproven: 5,
} as const;
