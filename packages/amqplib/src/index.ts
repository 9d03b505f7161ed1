export type { ProductionAccess } from './account-check.js';
export { DEAD_LETTER_HEADERS } from './dead-letter.js';
export type { RabbitManagement } from './management-api.js';
export type { AmqpHeaders, MessageTenant } from './message-headers.js';
export { amqpHeaders, messageTenant } from './message-headers.js';
export type { OperationKind } from './operations.js';
export { CHANNEL_OPERATIONS } from './operations.js';
export type { ExistenceTtl } from './resource-catalog.js';
export type { GrantAmqpShadowAccessOptions, GrantAmqpShadowAccessResult, RabbitPermissions } from './shadow-grants.js';
export { grantShadowAccess, shadowResourcePattern } from './shadow-grants.js';
export type { IsolatedMessageFields } from './shadow-lane.js';
export type {
  ShadowDeclaration,
  SkippedResource,
  SyncShadowTopologyOptions,
  SyncShadowTopologyResult,
  TopologyDrift,
} from './shadow-topology.js';
export { checkShadowTopology, syncShadowTopology } from './shadow-topology.js';
export type { ShadowReadiness, ShadowResources, TenantAmqp } from './tenant-amqp.js';
export { tenantAmqp, withMessageTenant } from './tenant-amqp.js';
export { DEAD_LETTER_SUFFIX } from './tenants.js';
export type { TenantAmqpOptions } from './types.js';
