/**
 * What Dye does with each method of kafkajs's Consumer, Producer, Transaction
 * and Admin when it is called in an isolated tenant (a shadow handler, a load
 * test's request). One table per object, checked against the methods kafkajs
 * really has by a test, so a method kafkajs adds is refused in isolated
 * tenants until it is classified here (DESIGN.md invariant 8).
 *
 * - `isolated`: acts on the isolated twin instead (the `_shadow` consumer group
 *   and topics); names passed in are production names and are renamed.
 * - `setup`: configures production consumption (connect, subscribe, run); the
 *   caller's tenant does not matter, and handlers run in their message's
 *   tenant whatever context set them up.
 * - `neutral`: touches no topic, group or message (events, logger, cluster
 *   description, listing names).
 * - `refused`: changes topology or access (topics, partitions, configs, ACLs);
 *   refused with IsolationError in an isolated tenant. Shadow topology is made
 *   by syncShadowTopics and `dye shadow sync`, outside any tenant.
 *
 * In baseline and in colors that do not isolate Kafka, every method is
 * kafkajs's own, unchanged (messages still get their tenant headers).
 */
export type OperationKind = 'isolated' | 'setup' | 'neutral' | 'refused';

export const CONSUMER_OPERATIONS: Readonly<Record<string, OperationKind>> = Object.freeze({
  connect: 'setup',
  subscribe: 'setup',
  run: 'setup',
  stop: 'isolated',
  disconnect: 'isolated',
  commitOffsets: 'isolated',
  seek: 'isolated',
  describeGroup: 'isolated',
  pause: 'isolated',
  paused: 'isolated',
  resume: 'isolated',
  on: 'neutral',
  logger: 'neutral',
  events: 'neutral',
});

/** `send`/`sendBatch` write `<topic>_shadow`; a transaction belongs to the tenant that opened it. */
export const PRODUCER_OPERATIONS: Readonly<Record<string, OperationKind>> = Object.freeze({
  send: 'isolated',
  sendBatch: 'isolated',
  transaction: 'isolated',
  connect: 'neutral',
  disconnect: 'neutral',
  isIdempotent: 'neutral',
  on: 'neutral',
  logger: 'neutral',
  events: 'neutral',
});

/** `sendOffsets` commits to `<group>_shadow` for `<topic>_shadow`. */
export const TRANSACTION_OPERATIONS: Readonly<Record<string, OperationKind>> = Object.freeze({
  send: 'isolated',
  sendBatch: 'isolated',
  sendOffsets: 'isolated',
  // Ends the transaction as the tenant that opened it: refused to another, isolated, tenant.
  commit: 'isolated',
  abort: 'isolated',
  isActive: 'neutral',
});

export const ADMIN_OPERATIONS: Readonly<Record<string, OperationKind>> = Object.freeze({
  connect: 'neutral',
  disconnect: 'neutral',
  listTopics: 'neutral',
  describeCluster: 'neutral',
  listGroups: 'neutral',
  describeAcls: 'neutral',
  describeConfigs: 'neutral',
  listPartitionReassignments: 'neutral',
  logger: 'neutral',
  on: 'neutral',
  events: 'neutral',
  fetchTopicMetadata: 'isolated',
  fetchOffsets: 'isolated',
  fetchTopicOffsets: 'isolated',
  fetchTopicOffsetsByTimestamp: 'isolated',
  setOffsets: 'isolated',
  resetOffsets: 'isolated',
  describeGroups: 'isolated',
  deleteGroups: 'isolated',
  deleteTopicRecords: 'isolated',
  createTopics: 'refused',
  deleteTopics: 'refused',
  createPartitions: 'refused',
  alterConfigs: 'refused',
  createAcls: 'refused',
  deleteAcls: 'refused',
  alterPartitionReassignments: 'refused',
});
