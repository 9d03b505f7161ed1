import type { TenantPolicy } from '@dye/core';
import type { Registry } from '@dye/discovery';

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
}
