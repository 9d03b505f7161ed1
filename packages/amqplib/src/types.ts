import type { EnforcementMode, TenantPolicy } from '@dye/core';
import type { ChannelModel } from 'amqplib';
import type { ExistenceTtl } from './resource-catalog.js';

export interface TenantAmqpOptions {
  /** Which tenants isolate RabbitMQ (isolated tenants always; colors with `isolate: ['amqp']`). Default: the default policy. */
  policy?: TenantPolicy;
  /**
   * Next to every consumer of queue `q`, also consume `q_<tenant>` (when it
   * exists) on a channel Dye owns, handlers in that tenant. Default true.
   */
  isolatedConsumers?: boolean;
  /** The isolated tenants whose queues consumers also read. Default `['shadow']`. */
  isolatedTenants?: readonly string[];
  /**
   * A connection authenticated as the isolated tenants' own RabbitMQ user,
   * allowed only the `_shadow` exchanges and queues (grantShadowAccess,
   * `dye shadow grant --amqp`). Dye's isolated channels open on it, so the
   * broker itself refuses them production. Default: none (isolated channels
   * open on the wrapped connection; Dye's renaming alone keeps them apart).
   */
  isolatedConnection?: ChannelModel;
  /**
   * With an isolated connection: `account` (default) checks at first isolated
   * use of each production exchange and queue that RabbitMQ refuses the
   * isolated user writing (and reading) it, the default exchange and a name
   * nobody uses, refusing isolated use otherwise; `guard-only` skips that
   * check, logged. Without one: `guard-only`.
   */
  enforcement?: EnforcementMode;
  /** How long answers about which `_shadow` exchanges and queues exist are kept. */
  existenceTtl?: ExistenceTtl;
}
