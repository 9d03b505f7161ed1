export type { MessageTenant } from './message-headers.js';
export { kafkaHeaders, messageTenant } from './message-headers.js';
export type { SyncShadowTopicsOptions, SyncShadowTopicsResult, TopicDrift } from './shadow-topics.js';
export { syncShadowTopics } from './shadow-topics.js';
export type { TenantConsumer, TenantKafka, TenantKafkaOptions } from './tenant-kafka.js';
export { DEAD_LETTER_SUFFIX, laneApp, tenantKafka, withMessageTenant } from './tenant-kafka.js';
