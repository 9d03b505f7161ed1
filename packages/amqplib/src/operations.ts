/**
 * What Dye does with each method of amqplib's Channel and ConfirmChannel
 * (their whole prototype chain: the public API, amqplib's own machinery and
 * EventEmitter) when it is called in an isolated tenant: a shadow handler, a
 * load test's request. Checked against the methods a live channel really has
 * by a test, so a method amqplib adds is refused in isolated tenants until it
 * is classified here (DESIGN.md invariant 8).
 *
 * - `isolated`: acts on the isolated twin instead, on a channel Dye owns:
 *   exchange and queue names passed in are production names, renamed to
 *   `<name>_shadow`; acknowledgements go to the channel that delivered the
 *   message. A twin that does not exist is refused, never declared.
 * - `setup`: sets up production consumption; the caller's tenant does not
 *   matter, and handlers run in their message's tenant whatever context set
 *   them up.
 * - `neutral`: touches no exchange, queue or message (listeners).
 * - `refused`: changes topology (declares with side effects, deletes,
 *   bindings) or drives amqplib's frame machinery directly; refused with
 *   IsolationError in an isolated tenant. Shadow topology is made by
 *   syncShadowTopology and `dye shadow sync --amqp`, outside any tenant.
 *
 * In baseline and in colors that do not isolate RabbitMQ, every method is
 * amqplib's own on the caller's channel (published messages still get their
 * tenant headers, and a message is acknowledged on the channel that delivered it).
 */
export type OperationKind = 'isolated' | 'setup' | 'neutral' | 'refused';

const operations: Record<string, OperationKind> = {
  // Messages: renamed, on the tenant's own channel.
  publish: 'isolated',
  sendToQueue: 'isolated',
  get: 'isolated',
  ack: 'isolated',
  ackAll: 'isolated',
  nack: 'isolated',
  nackAll: 'isolated',
  reject: 'isolated',
  recover: 'isolated',
  prefetch: 'isolated',
  qos: 'isolated',
  cancel: 'isolated',
  waitForConfirms: 'isolated',
  close: 'isolated',
  // Reads of the twins; an assert is a check there (never a declaration).
  checkQueue: 'isolated',
  checkExchange: 'isolated',
  assertQueue: 'isolated',
  assertExchange: 'isolated',
  purgeQueue: 'isolated',
  consume: 'setup',
  // Topology.
  deleteQueue: 'refused',
  deleteExchange: 'refused',
  bindQueue: 'refused',
  unbindQueue: 'refused',
  bindExchange: 'refused',
  unbindExchange: 'refused',
  // amqplib's machinery: each writes frames to, or changes the state of, the caller's channel.
  // A computed key: TypeScript types a plain `constructor` key as Object's own property.
  ['constructor' as string]: 'refused',
  setOptions: 'refused',
  allocate: 'refused',
  open: 'refused',
  rpc: 'refused',
  _rpc: 'refused',
  sendImmediately: 'refused',
  sendOrEnqueue: 'refused',
  sendMessage: 'refused',
  toClosed: 'refused',
  toClosing: 'refused',
  _rejectPending: 'refused',
  closeBecause: 'refused',
  closeWithError: 'refused',
  acceptMessageFrame: 'refused',
  handleConfirm: 'refused',
  _waitForConfirms: 'refused',
  pushConfirmCallback: 'refused',
  onBufferDrain: 'refused',
  accept: 'refused',
  reply: 'refused',
  handleMessage: 'refused',
  registerConsumer: 'refused',
  unregisterConsumer: 'refused',
  dispatchMessage: 'refused',
  handleDelivery: 'refused',
  handleCancel: 'refused',
  // EventEmitter: emit would feed amqplib's own listeners (deliveries, confirms, close).
  emit: 'refused',
  on: 'neutral',
  once: 'neutral',
  off: 'neutral',
  addListener: 'neutral',
  prependListener: 'neutral',
  prependOnceListener: 'neutral',
  removeListener: 'neutral',
  removeAllListeners: 'neutral',
  setMaxListeners: 'neutral',
  getMaxListeners: 'neutral',
  listeners: 'neutral',
  rawListeners: 'neutral',
  listenerCount: 'neutral',
  eventNames: 'neutral',
};

export const CHANNEL_OPERATIONS: Readonly<Record<string, OperationKind>> = Object.freeze(operations);

/** The kind of a channel method; undefined for one Dye has not classified (refused in isolated tenants). */
export function operationKind(name: string): OperationKind | undefined {
  return Object.hasOwn(CHANNEL_OPERATIONS, name) ? CHANNEL_OPERATIONS[name] : undefined;
}
