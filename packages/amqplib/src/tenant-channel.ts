import {
  BASELINE,
  callInTenant,
  currentTenant,
  isolatedName,
  isolationRefusal,
  logWarning,
  type Tenant,
  type TenantPolicy,
  withTenant,
} from '@dye/core';
import {
  type Channel,
  type ChannelModel,
  type ChannelOptions,
  type ConfirmChannel,
  type ConsumeMessage,
  type GetMessage,
  IllegalOperationError,
  type Message,
  type Options,
  type Replies,
} from 'amqplib';
import type { IsolatedAccountCheck } from './account-check.js';
import { deadLetter } from './dead-letter.js';
import { deliveringChannel, rememberDelivery } from './deliveries.js';
import { type AmqpHeaders, hasTenantHeaders, messageTenant, stampedOptions } from './message-headers.js';
import { operationKind } from './operations.js';
import { AccountConfined, type Requirement, TwinExists } from './requirements.js';
import { isNotFound, MissingResourceError, type ResourceCatalog } from './resource-catalog.js';
import { type ConfirmCallback, type LaneTarget, ShadowLane } from './shadow-lane.js';
import { isolatedOnProduction, isolatedReader, isolates, isReservedName } from './tenants.js';

/** What every channel of one tenantAmqp shares. */
export interface AmqpContext {
  readonly policy: () => TenantPolicy;
  /** Which queues exist on the wrapped connection: dead-letter queues. */
  readonly production: ResourceCatalog;
  /** The connection isolated channels open on, and what they check first. */
  readonly isolated: {
    readonly connection: ChannelModel;
    readonly catalog: ResourceCatalog;
    /** Set with enforcement 'account'. */
    readonly account: IsolatedAccountCheck | undefined;
    /** Whether it is an isolated account's connection (which RabbitMQ refuses the default exchange). */
    readonly ownAccount: boolean;
  };
  readonly isolatedTenants: readonly string[];
  readonly isolatedConsumers: boolean;
  /** How to close the isolated channels of every live wrapped channel (tenantAmqp's close()). */
  readonly openChannels: Set<() => Promise<void>>;
}

// Per channel and tenant, the exchanges a service publishes to are few; bounded all the same.
const MAX_TARGETS = 1_000;

// Methods whose amqplib versions return promises: refused with a rejection, others with a throw.
const ASYNC_METHODS = new Set([
  'deleteQueue',
  'deleteExchange',
  'bindQueue',
  'unbindQueue',
  'bindExchange',
  'unbindExchange',
  'rpc',
  'open',
]);

type Handler = (message: ConsumeMessage | null) => void;

/**
 * Wraps one amqplib channel (see operations.ts for what each method does in
 * an isolated tenant). Baseline and non-isolating colors use the caller's
 * channel as it is, with tenant headers on what they publish; isolated
 * tenants use a channel Dye owns per tenant (ShadowLane), on renamed
 * resources.
 */
export function tenantChannel<C extends Channel>(
  raw: C,
  confirm: boolean,
  context: AmqpContext,
  channelOptions: ChannelOptions | undefined,
): C {
  const { policy, isolated } = context;
  const lanes = new Map<string, ShadowLane>();
  const targets = new Map<string, Map<string, LaneTarget>>();
  let closed = false;
  let prefetchSet: { count: number; global: boolean } | undefined;

  const closeLanes = async () => {
    const all = [...lanes.values()];
    lanes.clear();
    await Promise.all(all.map((lane) => lane.close()));
  };
  context.openChannels.add(closeLanes);
  runReturnsInTheirTenant(raw, policy);
  // When the caller's channel is gone (closed, or by a channel error), its shadow consumers go with it.
  raw.on('close', () => {
    closed = true;
    context.openChannels.delete(closeLanes);
    void closeLanes();
  });

  function laneOf(tenant: Tenant): ShadowLane {
    let lane = lanes.get(tenant.name);
    if (lane === undefined) {
      if (closed) throw new IllegalOperationError('Channel closed', undefined);
      lane = new ShadowLane({
        tenant,
        connection: isolated.connection,
        confirm,
        channelOptions,
        owner: raw,
        prefetch: () => prefetchSet,
        onNotFound: () => isolated.catalog.forget(),
      });
      lanes.set(tenant.name, lane);
    }
    return lane;
  }

  const bound = (callback: ConfirmCallback | undefined, tenant: Tenant): ConfirmCallback | undefined =>
    // amqplib calls confirm callbacks from the connection's socket: they run in the publisher's tenant.
    callback === undefined ? undefined : (error, ok) => callInTenant(tenant, callback, undefined, [error, ok]);

  function refusal(tenant: Tenant, refused: string, reason: string): Error {
    return isolationRefusal('amqp', { tenant: tenant.name, refused, reason });
  }

  function twinExists(tenant: Tenant, kind: 'exchange' | 'queue', production: string, refused: string): TwinExists {
    const name = isolatedName(kind === 'exchange' ? 'amqp-exchange' : 'amqp-queue', production, tenant);
    return new TwinExists(isolated.catalog, { kind, name }, production, tenant, refused);
  }

  function accountConfined(tenant: Tenant, mode: 'write' | 'read', name: string): Requirement[] {
    return isolated.account === undefined ? [] : [new AccountConfined(isolated.account, { mode, name }, tenant)];
  }

  /** Where a tenant's message for (exchange, routing key) goes; made once per exchange (per queue for the default exchange). */
  function targetOf(tenant: Tenant, exchange: string, routingKey: string): LaneTarget {
    let byName = targets.get(tenant.name);
    if (byName === undefined) {
      byName = new Map();
      targets.set(tenant.name, byName);
    }
    // The default exchange routes by queue name: the routing key is part of the target there.
    const key = exchange === '' ? `\u0000${routingKey}` : exchange;
    let target = byName.get(key);
    if (target !== undefined) return target;
    target =
      exchange === ''
        ? {
            exchange: '',
            routingKey: isolatedName('amqp-queue', routingKey, tenant),
            requirements: [twinExists(tenant, 'queue', routingKey, `sending to queue ${routingKey}`)],
          }
        : {
            exchange: isolatedName('amqp-exchange', exchange, tenant),
            requirements: [
              ...accountConfined(tenant, 'write', exchange),
              twinExists(tenant, 'exchange', exchange, `publishing to exchange ${exchange}`),
            ],
          };
    if (byName.size >= MAX_TARGETS) byName.delete(byName.keys().next().value as string);
    byName.set(key, target);
    return target;
  }

  function publishIsolated(
    tenant: Tenant,
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: Options.Publish | undefined,
    callback: ConfirmCallback | undefined,
  ): boolean {
    const refused = exchange === '' ? `sending to queue ${routingKey}` : `publishing to exchange ${exchange}`;
    // Judged on Dye's own copy, which is what is sent: the caller's objects are read once, here.
    const stamped = stampedOptions(options, tenant);
    if (exchange === '') {
      if (routingKey === '') throw refusal(tenant, refused, 'the default exchange with an empty routing key names no queue');
      if (isolated.ownAccount) {
        throw refusal(
          tenant,
          refused,
          `the isolated account may not write the default exchange (amq.default): through it, any queue could be written. Publish to an exchange instead, whose twin routes to ${isolatedName('amqp-queue', routingKey, tenant)}`,
        );
      }
      // Sender-selected distribution: through the default exchange each CC/BCC entry names a queue, a production one.
      if (stamped.CC !== undefined || stamped.BCC !== undefined || hasHeader(stamped.headers, /^b?cc$/i)) {
        throw refusal(tenant, refused, 'CC and BCC through the default exchange name production queues; publish to an exchange instead');
      }
    }
    const target = targetOf(tenant, exchange, routingKey);
    return laneOf(tenant).publish(target, routingKey, content, stamped, bound(callback, tenant), refused);
  }

  function publish(exchange: string, routingKey: string, content: Buffer, options?: Options.Publish, callback?: ConfirmCallback): boolean {
    const tenant = currentTenant();
    if (tenant.kind === 'baseline') {
      // The baseline path: amqplib as it is, unless the caller's headers name a tenant (removed) or a confirm callback needs binding.
      if (callback === undefined) {
        return hasTenantHeaders(options)
          ? raw.publish(exchange, routingKey, content, stampedOptions(options, tenant))
          : raw.publish(exchange, routingKey, content, options);
      }
      return (raw as unknown as ConfirmChannel).publish(
        exchange,
        routingKey,
        content,
        hasTenantHeaders(options) ? stampedOptions(options, tenant) : options,
        bound(callback, tenant),
      );
    }
    if (!isolates(policy(), tenant)) {
      return (raw as unknown as ConfirmChannel).publish(
        exchange,
        routingKey,
        content,
        stampedOptions(options, tenant),
        bound(callback, tenant),
      );
    }
    return publishIsolated(tenant, exchange, routingKey, content, options, callback);
  }

  function sendToQueue(queue: string, content: Buffer, options?: Options.Publish, callback?: ConfirmCallback): boolean {
    return publish('', queue, content, options, callback);
  }

  /** The production consumer's delivery: each message in its own tenant; one naming two tenants goes aside. */
  function productionHandler(queue: string, onMessage: Handler, noAck: boolean): Handler {
    return (message) => {
      if (message === null) return callInTenant(BASELINE, onMessage, undefined, [null]);
      rememberDelivery(message, raw);
      const decided = messageTenant(message.properties.headers as AmqpHeaders | undefined, policy());
      if (!decided.ok) {
        void deadLetter(raw, context.production, queue, message, decided.reason, noAck);
        return;
      }
      // Dye publishes an isolated tenant's messages to its twins only: one in
      // a production queue came from outside Dye, and is processed neither in
      // that tenant nor as baseline.
      if (isolates(policy(), decided.tenant)) {
        void deadLetter(raw, context.production, queue, message, isolatedOnProduction(decided.tenant, queue), noAck);
        return;
      }
      return callInTenant(decided.tenant, onMessage, undefined, [message]);
    };
  }

  async function consumeTwins(queue: string, productionTag: string, onMessage: Handler, options: Options.Consume | undefined) {
    for (const name of context.isolatedTenants) {
      const tenant = policy().tenant(name);
      const twinQueue = isolatedName('amqp-queue', queue, tenant);
      const requirements = [...accountConfined(tenant, 'read', queue), twinExists(tenant, 'queue', queue, `consuming ${queue}`)];
      try {
        await laneOf(tenant).consume({ productionTag, twinQueue, onMessage, options, requirements });
      } catch (error) {
        // Shadow consumption never stops production consumption.
        const missing = (error as { cause?: unknown }).cause instanceof MissingResourceError;
        logWarning(
          missing ? 'dye.amqp.no-twin' : 'dye.amqp.isolated-failed',
          missing
            ? `${twinQueue} does not exist: ${tenant.name} messages of ${queue} are not consumed here`
            : `the consumer of ${twinQueue} did not start; production consumption goes on: ${(error as Error).message}`,
        );
      }
    }
  }

  function consume(queue: string, onMessage: Handler, options?: Options.Consume): Promise<Replies.Consume> {
    // Setting up production consumption is the same whoever asks; handlers run in their messages' tenants.
    return withTenant(BASELINE, async () => {
      if (isReservedName(queue, context.isolatedTenants)) {
        throw isolationRefusal('amqp', {
          tenant: BASELINE.name,
          refused: `consuming ${queue} as production`,
          reason:
            'it is an isolated or dead-letter queue; its messages would run as production. Isolated queues are consumed by the channel Dye runs beside this one',
        });
      }
      const reply = await raw.consume(queue, productionHandler(queue, onMessage, Boolean(options?.noAck)), options);
      if (context.isolatedConsumers) await consumeTwins(queue, reply.consumerTag, onMessage, options);
      return reply;
    });
  }

  async function cancel(consumerTag: string): Promise<Replies.Cancel> {
    const tenant = isolatedNow();
    if (tenant !== undefined) {
      if (!(await lanes.get(tenant.name)?.cancel(consumerTag))) {
        throw refusal(
          tenant,
          `cancel(${consumerTag})`,
          `no ${tenant.name} consumer runs beside it here, and the production consumer must not be touched`,
        );
      }
      return { consumerTag };
    }
    const reply = await raw.cancel(consumerTag);
    await Promise.all([...lanes.values()].map((lane) => lane.cancel(consumerTag).catch(() => false)));
    return reply;
  }

  const isolatedNow = (): Tenant | undefined => {
    const tenant = currentTenant();
    return isolates(policy(), tenant) ? tenant : undefined;
  };

  /** An acknowledgement goes to the channel that delivered the message, whatever the tenant. */
  function acknowledge(operation: 'ack' | 'nack' | 'reject', message: Message, ...args: unknown[]): void {
    const channel = deliveringChannel(message) ?? unknownDelivery(operation, message);
    Reflect.apply(channel[operation] as (...a: unknown[]) => void, channel, [message, ...args]);
  }

  function unknownDelivery(operation: string, message: Message): Channel {
    // A copy (structuredClone, JSON, another thread) of a message read from an
    // isolated queue: its tag is the isolated channel's, on this one it could
    // name a production message, whoever acknowledges it.
    const isolatedQueue = (message?.fields as { isolatedQueue?: unknown } | undefined)?.isolatedQueue;
    if (isolatedQueue !== undefined) {
      const tenant = isolatedNow() ?? currentTenant();
      throw refusal(
        tenant,
        `${operation}() of a copy of a message read from ${String(isolatedQueue)}`,
        'Dye knows which channel delivered the message object a handler was given, not a copy of it; acknowledge that object',
      );
    }
    const tenant = isolatedNow();
    if (tenant === undefined) return raw;
    // Delivery tags are per channel: a tag Dye cannot place could be a production message's.
    throw refusal(
      tenant,
      `${operation}() of a message Dye did not deliver`,
      'its delivery tag could name a production message on this channel',
    );
  }

  async function get(queue: string, options?: Options.Get): Promise<GetMessage | false> {
    const tenant = isolatedNow();
    if (tenant !== undefined) {
      const twinQueue = isolatedName('amqp-queue', queue, tenant);
      const requirements = [...accountConfined(tenant, 'read', queue), twinExists(tenant, 'queue', queue, `get() from ${queue}`)];
      return laneOf(tenant).get(twinQueue, options, requirements);
    }
    const message = await raw.get(queue, options);
    if (message !== false) rememberDelivery(message, raw);
    return message;
  }

  /** A passive check of a twin on Dye's probe channel; replies name the production resource. */
  async function checkTwin(tenant: Tenant, kind: 'exchange' | 'queue', production: string, operation: string) {
    if (production === '') throw refusal(tenant, `${operation}('')`, 'a server-named or default resource has no isolated twin');
    const requirement = twinExists(tenant, kind, production, `${operation}(${production})`);
    const name = isolatedName(kind === 'exchange' ? 'amqp-exchange' : 'amqp-queue', production, tenant);
    try {
      if (kind === 'queue') return { ...(await isolated.catalog.checkQueue(name)), queue: production };
      await isolated.catalog.run((channel) => channel.checkExchange(name));
      return {};
    } catch (error) {
      throw requirement.refusalFor(isNotFound(error) ? new MissingResourceError({ kind, name }) : error);
    }
  }

  const methods: Record<string, unknown> = {
    publish,
    sendToQueue,
    consume,
    cancel,
    get,
    ack: (message: Message, allUpTo?: boolean) => acknowledge('ack', message, allUpTo),
    nack: (message: Message, allUpTo?: boolean, requeue?: boolean) => acknowledge('nack', message, allUpTo, requeue),
    reject: (message: Message, requeue?: boolean) => acknowledge('reject', message, requeue),
    ackAll: () => {
      const tenant = isolatedNow();
      return tenant === undefined ? raw.ackAll() : lanes.get(tenant.name)?.ackAll();
    },
    nackAll: (requeue?: boolean) => {
      const tenant = isolatedNow();
      return tenant === undefined ? raw.nackAll(requeue) : lanes.get(tenant.name)?.nackAll(requeue);
    },
    recover: async () => {
      const tenant = isolatedNow();
      return tenant === undefined ? raw.recover() : ((await lanes.get(tenant.name)?.recover()) ?? {});
    },
    prefetch: (count: number, global?: boolean) => prefetch(count, global),
    qos: (count: number, global?: boolean) => prefetch(count, global),
    waitForConfirms: async () => {
      const tenant = isolatedNow();
      if (tenant === undefined) return (raw as unknown as ConfirmChannel).waitForConfirms();
      await lanes.get(tenant.name)?.waitForConfirms();
    },
    close: async () => {
      const tenant = isolatedNow();
      if (tenant !== undefined) {
        const lane = lanes.get(tenant.name);
        lanes.delete(tenant.name);
        await lane?.close();
        return;
      }
      await closeLanes();
      await raw.close();
    },
    checkQueue: async (queue: string) => {
      const tenant = isolatedNow();
      return tenant === undefined ? raw.checkQueue(queue) : checkTwin(tenant, 'queue', queue, 'checkQueue');
    },
    assertQueue: async (queue?: string, options?: Options.AssertQueue) => {
      const tenant = isolatedNow();
      // In an isolated tenant an assert only checks: twins come from syncShadowTopology, never from a declaration here.
      return tenant === undefined ? raw.assertQueue(queue, options) : checkTwin(tenant, 'queue', queue ?? '', 'assertQueue');
    },
    checkExchange: async (exchange: string) => {
      const tenant = isolatedNow();
      return tenant === undefined ? raw.checkExchange(exchange) : checkTwin(tenant, 'exchange', exchange, 'checkExchange');
    },
    assertExchange: async (exchange: string, type: string, options?: Options.AssertExchange) => {
      const tenant = isolatedNow();
      if (tenant === undefined) return raw.assertExchange(exchange, type, options);
      await checkTwin(tenant, 'exchange', exchange, 'assertExchange');
      return { exchange };
    },
    purgeQueue: async (queue: string) => {
      const tenant = isolatedNow();
      if (tenant === undefined) return raw.purgeQueue(queue);
      const requirement = twinExists(tenant, 'queue', queue, `purgeQueue(${queue})`);
      await requirement.ensure();
      return isolated.catalog.run((channel) => channel.purgeQueue(isolatedName('amqp-queue', queue, tenant)));
    },
  };

  async function prefetch(count: number, global?: boolean): Promise<Replies.Empty> {
    const tenant = isolatedNow();
    if (tenant !== undefined) return laneOf(tenant).prefetch(count, global);
    const reply = await raw.prefetch(count, global);
    // Shadow consumers get the flow control their production twins have.
    prefetchSet = { count, global: Boolean(global) };
    await Promise.all([...lanes.values()].map((lane) => lane.mirrorPrefetch(count, global).catch(() => {})));
    return reply;
  }

  const guarded = new Map<string, unknown>();
  /** A method not handled above: neutral ones pass, others are refused in isolated tenants. */
  function guard(name: string, receiver: unknown): unknown {
    let wrapper = guarded.get(name);
    if (wrapper !== undefined) return wrapper;
    const kind = operationKind(name);
    if (kind === 'neutral') {
      wrapper = (...args: unknown[]) => {
        const tenant = isolatedNow();
        if (tenant !== undefined) refuseListenerAccess(tenant, name, args[0]);
        const result = Reflect.apply(Reflect.get(raw, name) as (...a: unknown[]) => unknown, raw, args);
        // `channel.on(...)` returns the channel: the wrapper, so chained code keeps using it.
        return result === raw ? receiver : result;
      };
    } else {
      const reason =
        kind === 'refused'
          ? name.startsWith('bind') || name.startsWith('unbind') || name.startsWith('delete')
            ? 'an isolated tenant does not change exchanges, queues or bindings; shadow topology is made by syncShadowTopology (dye shadow sync --amqp)'
            : "it drives amqplib's frames on the caller's channel directly"
          : 'Dye does not know what this amqplib method touches, so an isolated tenant may not call it';
      wrapper = function (this: unknown, ...args: unknown[]) {
        const tenant = isolatedNow();
        if (tenant !== undefined) {
          const error = refusal(tenant, `channel.${name}()`, reason);
          if (ASYNC_METHODS.has(name)) return Promise.reject(error);
          throw error;
        }
        const method = Reflect.get(raw, name) as (...a: unknown[]) => unknown;
        return new.target === undefined ? Reflect.apply(method, raw, args) : Reflect.construct(method, args);
      };
    }
    guarded.set(name, wrapper);
    return wrapper;
  }

  /**
   * amqplib drives deliveries and confirms through the channel's own events
   * (`delivery`, `ack`, `nack`, …) and keeps its consumers, pending replies and
   * connection in plain properties: in an isolated tenant these would hand
   * over the production channel's messages and machinery. Only the events a
   * user listens to (`error`, `close`, `drain`, `return`) may be listened to there, and
   * listeners may not be listed or removed wholesale.
   */
  function refuseListenerAccess(tenant: Tenant, name: string, event: unknown): void {
    if (LISTENER_COUNTS.has(name)) return;
    if (LISTENER_ADDERS.has(name) && typeof event === 'string' && USER_EVENTS.has(event)) return;
    throw refusal(
      tenant,
      `channel.${name}(${typeof event === 'string' ? JSON.stringify(event) : ''})`,
      "amqplib's own events and listeners carry the production channel's deliveries and confirms; an isolated tenant may listen to 'error', 'close', 'drain' and 'return' only",
    );
  }

  return new Proxy(raw, {
    get(target, property, receiver) {
      if (typeof property !== 'string') {
        // Node's and amqplib's internals by symbol: nothing for isolated code.
        return isolatedNow() === undefined ? Reflect.get(target, property, target) : undefined;
      }
      if (Object.hasOwn(methods, property) && typeof Reflect.get(target, property, target) === 'function') return methods[property];
      const value = Reflect.get(target, property, target);
      if (typeof value !== 'function') {
        const tenant = isolatedNow();
        // A property the channel does not have (`then`, when a channel is awaited) reveals nothing.
        if (tenant === undefined || value === undefined) return value;
        // What amqplib's types promise of a channel's connection, and nothing that reaches its channels.
        if (property === 'connection')
          return Object.freeze({ serverProperties: (value as { serverProperties?: unknown })?.serverProperties });
        throw refusal(
          tenant,
          `reading channel.${property}`,
          "it is amqplib's internal state of the production channel (consumers, replies, frames)",
        );
      }
      return guard(property, receiver);
    },
  });
}

const LISTENER_ADDERS = new Set(['on', 'once', 'addListener', 'prependListener', 'prependOnceListener', 'off', 'removeListener']);
const LISTENER_COUNTS = new Set(['setMaxListeners', 'getMaxListeners', 'listenerCount', 'eventNames']);
const USER_EVENTS = new Set(['error', 'close', 'drain', 'return']);

function hasHeader(headers: unknown, name: RegExp): boolean {
  if (typeof headers !== 'object' || headers === null) return false;
  for (const key in headers) if (name.test(key) && (headers as Record<string, unknown>)[key] !== undefined) return true;
  return false;
}

const RETURNS_HELD = Symbol.for('dye.amqp.returnsInTheirTenant');

/**
 * amqplib emits 'return' (a mandatory message no queue took) from the
 * connection's socket, in whatever context that has: listeners run in the
 * tenant that published the message instead, so one that publishes it again
 * publishes it as that tenant. A twin's returns are marked by its lane; the
 * production channel's carry the tenant Dye stamped on them.
 */
function runReturnsInTheirTenant(raw: Channel, policy: () => TenantPolicy): void {
  const channel = raw as Channel & { [RETURNS_HELD]?: true };
  if (channel[RETURNS_HELD]) return;
  Object.defineProperty(channel, RETURNS_HELD, { value: true });
  const emit = channel.emit;
  channel.emit = function emitInTenant(this: Channel, event: string | symbol, ...args: unknown[]): boolean {
    const message = args[0];
    if (event !== 'return' || typeof message !== 'object' || message === null) return Reflect.apply(emit, this, [event, ...args]);
    const reader = isolatedReader(message);
    const decided = reader ? undefined : messageTenant((message as Message).properties?.headers as AmqpHeaders | undefined, policy());
    const tenant = reader ?? (decided?.ok ? decided.tenant : BASELINE);
    return callInTenant(tenant, emit, this, [event, ...args]);
  };
}
