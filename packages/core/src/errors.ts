/**
 * Thrown when an adapter cannot keep an isolated tenant's work away from
 * production resources. Nothing has been sent to production when it is thrown:
 * adapters check before they act (DESIGN.md, invariant 3).
 */
export class IsolationError extends Error {
  readonly code = 'DYE_ISOLATION';
  /** The tenant whose work was refused. */
  readonly tenant: string;
  /** What was refused: a command, a statement, a topic. */
  readonly refused: string;
  /** Why isolation was impossible. */
  readonly reason: string;

  constructor(details: { tenant: string; refused: string; reason: string }, options?: ErrorOptions) {
    super(`Dye refused ${details.refused} for isolated tenant "${details.tenant}": ${details.reason}`, options);
    this.name = 'IsolationError';
    this.tenant = details.tenant;
    this.refused = details.refused;
    this.reason = details.reason;
  }
}

/**
 * Thrown when one carrier names two different tenants (the `x-tenant` header and
 * the `baggage` entry disagree, or a header is repeated with different values).
 * Dye never guesses between two tenants: callers answer 400 / INVALID_ARGUMENT.
 */
export class TenantConflictError extends Error {
  readonly code = 'DYE_TENANT_CONFLICT';
  /** The distinct tenant names found, in the order they were read. */
  readonly names: readonly string[];

  constructor(names: readonly string[]) {
    super(`conflicting tenants in one request: ${names.map((name) => JSON.stringify(name)).join(' vs ')}`);
    this.name = 'TenantConflictError';
    this.names = names;
  }
}
