import type { EnforcementMode, TenantPolicy } from '@dye/core';
import type { Registry } from '@dye/discovery';
import type { Kafka } from 'kafkajs';

export interface TenantKafkaOptions {
  /** Which tenants isolate Kafka (isolated tenants always; colors with `isolate: ['kafka']`). Default: the default policy. */
  policy?: TenantPolicy;
  /**
   * Next to every consumer of group `g` on topics `t…`, also consume `t_<tenant>`
   * with group `g_<tenant>` (when those topics exist), handlers in that tenant.
   * Default true.
   */
  isolatedConsumers?: boolean;
  /** The isolated tenants whose topics consumers also read. Default `['shadow']`. */
  isolatedTenants?: readonly string[];
  /**
   * Enables lane-aware consumption of colors on shared topics: lane consumers
   * register here, and baseline consumers leave a color's messages to its lane
   * while one lives.
   */
  registry?: Registry;
  /** The lane of this service instance. Default `process.env.DYE_TENANT`, else baseline. */
  lane?: string;
  /**
   * A kafkajs client that authenticates as the isolated tenants' own principal
   * (SASL), granted only the isolated topics and groups (grantShadowAccess,
   * `dye shadow grant --kafka`). Isolated producers, consumers and admin calls
   * go through it, so the broker itself refuses them production. Default: none
   * (isolated tenants use the production client; Dye's renaming alone keeps
   * them apart).
   */
  isolatedClient?: Kafka;
  /**
   * With an isolated client: `account` (default) checks at first isolated use
   * of each production topic that the broker refuses the isolated principal
   * writes to it and to a topic nobody uses (refusing isolated use otherwise);
   * `guard-only` skips that check, logged. Without one: `guard-only`.
   */
  enforcement?: EnforcementMode;
}
