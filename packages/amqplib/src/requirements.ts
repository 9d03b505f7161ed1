import { IsolationError, isolationRefusal, type Tenant } from '@dye/core';
import type { IsolatedAccountCheck, ProductionAccess } from './account-check.js';
import { MissingResourceError, type Resource, type ResourceCatalog } from './resource-catalog.js';

/** Where a requirement stands now, without asking the broker. */
export type RequirementState = 'met' | 'failed' | 'unknown';

/**
 * Something isolated work needs before it may go out (a twin that exists, an
 * account RabbitMQ confines), answered synchronously from a cache when it can
 * be, so that publishing stays synchronous, and asked of the broker otherwise.
 */
export interface Requirement {
  state(): RequirementState;
  /** Resolves when met; rejects with the IsolationError to report otherwise. */
  ensure(): Promise<void>;
  /** The refusal for a failed requirement (its cached cause). */
  refusal(): IsolationError;
}

/** A `_shadow` twin must exist: Dye never declares one. */
export class TwinExists implements Requirement {
  constructor(
    private readonly catalog: ResourceCatalog,
    private readonly twin: Resource,
    private readonly production: string,
    private readonly tenant: Tenant,
    private readonly refused: string,
  ) {}

  state(): RequirementState {
    const existence = this.catalog.state(this.twin);
    return existence === 'present' ? 'met' : existence === 'missing' ? 'failed' : 'unknown';
  }

  ensure(): Promise<void> {
    return this.catalog.ensure(this.twin).catch((error: unknown) => {
      throw this.refusalFor(error);
    });
  }

  refusal(): IsolationError {
    return this.refusalFor(this.catalog.failure(this.twin));
  }

  /** The refusal for a check that failed with `cause` (a MissingResourceError, or why it could not run). */
  refusalFor(cause: unknown): IsolationError {
    const { kind, name } = this.twin;
    let reason: string;
    if (this.production.startsWith('amq.')) {
      reason = `${this.production} is one of RabbitMQ's own exchanges, which have no isolated twin (the amq. prefix is reserved); publish to an exchange of your own`;
    } else if (cause instanceof MissingResourceError) {
      reason = `the isolated ${kind} ${name} does not exist (create it with syncShadowTopology or dye shadow sync --amqp; Dye never declares it)`;
    } else {
      reason = `whether the isolated ${kind} ${name} exists could not be checked: ${String((cause as Error | undefined)?.message ?? cause)}`;
    }
    return isolationRefusal('amqp', { tenant: this.tenant.name, refused: this.refused, reason }, { cause });
  }
}

/** RabbitMQ itself must refuse the isolated connection's user this production name (enforcement 'account'). */
export class AccountConfined implements Requirement {
  constructor(
    private readonly account: IsolatedAccountCheck,
    private readonly access: ProductionAccess,
    private readonly tenant: Tenant,
  ) {}

  state(): RequirementState {
    if (this.account.passed(this.access)) return 'met';
    return this.account.failure(this.access) === undefined ? 'unknown' : 'failed';
  }

  ensure(): Promise<void> {
    return this.account.ensure(this.access, this.tenant).catch((error: unknown) => {
      throw this.#refusal(error);
    });
  }

  refusal(): IsolationError {
    return this.#refusal(this.account.failure(this.access));
  }

  #refusal(cause: unknown): IsolationError {
    // The check fails with the IsolationError to report, or with its own timeout.
    if (cause instanceof IsolationError) return cause;
    return isolationRefusal(
      'amqp',
      {
        tenant: this.tenant.name,
        refused: `using the isolated connection for ${this.access.name}`,
        reason: `Dye could not confirm that RabbitMQ confines the isolated connection's user: ${String((cause as Error | undefined)?.message ?? cause)}`,
      },
      { cause },
    );
  }
}

/** The first requirement that has failed, or whether all are met ('met') or some are unknown ('unknown'). */
export function firstFailed(requirements: readonly Requirement[]): Requirement | 'met' | 'unknown' {
  let all: 'met' | 'unknown' = 'met';
  for (const requirement of requirements) {
    const state = requirement.state();
    if (state === 'failed') return requirement;
    if (state === 'unknown') all = 'unknown';
  }
  return all;
}
