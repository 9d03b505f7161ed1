import { checkTenantName, getDefaultPolicy, isolatedName, isolatedSuffix, type TenantPolicy } from '@dye/core';
import type { Channel, ChannelModel } from 'amqplib';
import {
  type ManagedBinding,
  type ManagedExchange,
  type ManagedQueue,
  ManagementApi,
  type RabbitManagement,
  segment,
} from './management-api.js';
import { DEAD_LETTER_SUFFIX, isReservedName } from './tenants.js';

export interface SyncShadowTopologyOptions {
  /** An AMQP connection to the vhost, as a user that may declare `_shadow` exchanges, queues and bindings. Needed with `apply`. */
  connection?: ChannelModel;
  /** The management HTTP API that lists exchanges, queues and bindings. */
  management: RabbitManagement;
  /** Default `/`. */
  vhost?: string;
  /** Isolated tenants whose twins to make (default `['shadow']` → `<name>_shadow`). */
  tenants?: readonly string[];
  /** Production exchanges to twin. Default: every one but the default exchange, `amq.*`, twins and dead letters. */
  exchanges?: readonly string[];
  /** Production queues to twin. Default: every one but `amq.*`, exclusive queues, twins and dead letters. */
  queues?: readonly string[];
  /** Which tenants isolate RabbitMQ. Default: the default policy. */
  policy?: TenantPolicy;
  /** Declare what is missing. Without it, a dry run: `missing` is the plan. */
  apply?: boolean;
}

/** One thing an isolated tenant's topology needs, as it is (or would be) declared. */
export type ShadowDeclaration =
  | {
      readonly kind: 'exchange';
      readonly name: string;
      readonly production: string;
      readonly type: string;
      readonly options: { durable: boolean; autoDelete: boolean; internal: boolean; arguments: Record<string, unknown> };
    }
  | {
      readonly kind: 'queue';
      readonly name: string;
      readonly production: string;
      readonly options: { durable: boolean; autoDelete: boolean; arguments: Record<string, unknown> };
    }
  | {
      readonly kind: 'binding';
      readonly source: string;
      readonly destination: string;
      readonly destinationType: 'queue' | 'exchange';
      readonly routingKey: string;
      readonly arguments: Record<string, unknown>;
    };

/** A twin that differs from what its production resource says it should be. */
export interface TopologyDrift {
  readonly resource: 'exchange' | 'queue' | 'binding';
  /** The production resource (`orders`); for a binding, the binding. */
  readonly name: string;
  /** The twin concerned. */
  readonly shadowName: string;
  /**
   * `type`, `durable`, `auto_delete`, `internal`, `argument` (see `setting`);
   * `binding`: a twin bound where production is not (between a twin and a
   * production resource, a leak); `policy`: a policy sends the twin's dead
   * letters to a production exchange (a leak).
   */
  readonly kind: 'type' | 'durable' | 'auto_delete' | 'internal' | 'argument' | 'binding' | 'policy';
  readonly setting?: string;
  readonly production: unknown;
  readonly shadow: unknown;
}

/** A production resource that gets no twin, and why. */
export interface SkippedResource {
  readonly kind: 'exchange' | 'queue' | 'binding';
  readonly name: string;
  readonly reason: string;
}

export interface SyncShadowTopologyResult {
  /** Declared by this run (with `apply`). */
  readonly created: readonly ShadowDeclaration[];
  /** Missing and not declared (a dry run): the plan. */
  readonly missing: readonly ShadowDeclaration[];
  readonly drift: readonly TopologyDrift[];
  readonly skipped: readonly SkippedResource[];
  /** Exchanges and queues named in the options that production does not have: a mistake, never in sync. */
  readonly absent: ReadonlyArray<{ readonly kind: 'exchange' | 'queue'; readonly name: string }>;
  /** Nothing missing, no drift, and every exchange and queue named exists in production. */
  readonly inSync: boolean;
}

/** Arguments naming exchanges, which a twin must name the twins of. */
const EXCHANGE_ARGUMENTS = new Set(['alternate-exchange', 'x-dead-letter-exchange']);

interface Listing {
  exchanges: ManagedExchange[];
  queues: ManagedQueue[];
  bindings: ManagedBinding[];
  policies: ManagedPolicy[];
}

async function list(api: ManagementApi, vhost: string): Promise<Listing> {
  const at = segment(vhost);
  const [exchanges, queues, bindings, policies, operatorPolicies] = await Promise.all([
    api.get<ManagedExchange[]>(`/exchanges/${at}?columns=name,type,durable,auto_delete,internal,arguments`),
    api.get<ManagedQueue[]>(`/queues/${at}?columns=name,durable,auto_delete,exclusive,arguments,effective_policy_definition`),
    api.get<ManagedBinding[]>(`/bindings/${at}`),
    api.get<ManagedPolicy[]>(`/policies/${at}`),
    // Operator policies are an administrator's to read; without them the user policies still count.
    api.get<ManagedPolicy[]>(`/operator-policies/${at}`).catch(() => []),
  ]);
  if (exchanges === undefined || queues === undefined || bindings === undefined)
    throw new Error(`RabbitMQ has no vhost ${JSON.stringify(vhost)}`);
  return { exchanges, queues, bindings, policies: [...(policies ?? []), ...(operatorPolicies ?? [])] };
}

/**
 * Reads a vhost's exchanges, queues and bindings through the management API
 * and declares their isolated twins over AMQP: `<exchange>_shadow` and
 * `<queue>_shadow` with the production type, durability and arguments, and
 * the production bindings between the twins. Arguments naming an exchange
 * (a dead-letter or alternate exchange) name its twin, so a twin's dead
 * letters never reach production; a queue whose dead letters cannot be kept
 * apart (through `amq.*`, or through the default exchange by each message's
 * own routing key) is skipped and reported. Existing twins are only compared
 * (drift), never redeclared; production is only read. Without `apply`, a dry
 * run: `missing` lists what would be declared.
 */
export async function syncShadowTopology(options: SyncShadowTopologyOptions): Promise<SyncShadowTopologyResult> {
  if (options.apply && options.connection === undefined)
    throw new TypeError('syncShadowTopology: apply needs an AMQP connection to the vhost');
  const policy = options.policy ?? getDefaultPolicy();
  const tenants = options.tenants && options.tenants.length > 0 ? options.tenants : ['shadow'];
  for (const tenant of tenants) {
    const checked = checkTenantName(tenant);
    const resolved = policy.resolve(tenant);
    if (!checked.ok || !resolved.ok || !policy.isolates(resolved.tenant, 'amqp'))
      throw new TypeError(`syncShadowTopology: ${JSON.stringify(tenant)} is not a tenant whose RabbitMQ data is isolated`);
  }
  const listing = await list(new ManagementApi(options.management), options.vhost ?? '/');
  const missing: ShadowDeclaration[] = [];
  const drift: TopologyDrift[] = [];
  const skipped: SkippedResource[] = [];
  const skip = (kind: SkippedResource['kind'], name: string, reason: string) => {
    if (!skipped.some((entry) => entry.kind === kind && entry.name === name && entry.reason === reason))
      skipped.push({ kind, name, reason });
  };

  const wantedExchange = (name: string) =>
    name !== '' && !name.startsWith('amq.') && !isReservedName(name, tenants) && (options.exchanges?.includes(name) ?? true);
  const wantedQueue = (queue: ManagedQueue) =>
    !queue.name.startsWith('amq.') && !isReservedName(queue.name, tenants) && (options.queues?.includes(queue.name) ?? true);
  for (const name of [...(options.exchanges ?? []), ...(options.queues ?? [])]) {
    if (isReservedName(name, tenants))
      throw new TypeError(`syncShadowTopology: ${name} is an isolated or dead-letter resource, not a production one`);
  }
  // A name asked for that production does not have is a mistake to report, not a twin to skip quietly.
  const absent: Array<{ kind: 'exchange' | 'queue'; name: string }> = [
    ...(options.exchanges ?? [])
      .filter((name) => !listing.exchanges.some((exchange) => exchange.name === name))
      .map((name) => ({ kind: 'exchange' as const, name })),
    ...(options.queues ?? [])
      .filter((name) => !listing.queues.some((queue) => queue.name === name))
      .map((name) => ({ kind: 'queue' as const, name })),
  ];

  for (const tenant of tenants) {
    const exchangeTwin = (name: string) => isolatedName('amqp-exchange', name, tenant);
    const queueTwin = (name: string) => isolatedName('amqp-queue', name, tenant);
    const existingExchanges = new Map(listing.exchanges.map((exchange) => [exchange.name, exchange]));
    const existingQueues = new Map(listing.queues.map((queue) => [queue.name, queue]));
    const twinned = { exchange: new Set<string>(), queue: new Set<string>() };

    /** A twin's arguments: exchange names rewritten to their twins; undefined when its dead letters cannot be kept apart. */
    const twinArguments = (
      kind: 'exchange' | 'queue',
      name: string,
      given: Record<string, unknown>,
    ): Record<string, unknown> | undefined => {
      const result: Record<string, unknown> = { ...given };
      for (const key of Object.keys(given)) {
        const value = given[key];
        if (!EXCHANGE_ARGUMENTS.has(key) || typeof value !== 'string') continue;
        if (value === '') {
          // Dead letters through the default exchange go to the queue their routing key names.
          const routingKey = given['x-dead-letter-routing-key'];
          if (typeof routingKey !== 'string' || routingKey === '') {
            skip(
              kind,
              name,
              "its dead letters go through the default exchange by each message's own routing key, which names production queues",
            );
            return undefined;
          }
          result['x-dead-letter-routing-key'] = queueTwin(routingKey);
          continue;
        }
        if (value.startsWith('amq.')) {
          skip(kind, name, `its ${key} is ${value}, which has no twin: its messages would reach production queues`);
          return undefined;
        }
        result[key] = exchangeTwin(value);
      }
      return result;
    };

    for (const exchange of listing.exchanges) {
      if (!wantedExchange(exchange.name)) continue;
      const twinArgs = twinArguments('exchange', exchange.name, exchange.arguments ?? {});
      if (twinArgs === undefined) continue;
      const name = exchangeTwin(exchange.name);
      twinned.exchange.add(exchange.name);
      const existing = existingExchanges.get(name);
      if (existing === undefined) {
        missing.push({
          kind: 'exchange',
          name,
          production: exchange.name,
          type: exchange.type,
          options: { durable: exchange.durable, autoDelete: exchange.auto_delete, internal: exchange.internal, arguments: twinArgs },
        });
        continue;
      }
      const differs = (kind: TopologyDrift['kind'], production: unknown, shadow: unknown, setting?: string) => {
        if (!same(production, shadow))
          drift.push({
            resource: 'exchange',
            name: exchange.name,
            shadowName: name,
            kind,
            ...(setting ? { setting } : {}),
            production,
            shadow,
          });
      };
      differs('type', exchange.type, existing.type);
      differs('durable', exchange.durable, existing.durable);
      differs('auto_delete', exchange.auto_delete, existing.auto_delete);
      differs('internal', exchange.internal, existing.internal);
      for (const key of new Set([...Object.keys(twinArgs), ...Object.keys(existing.arguments ?? {})]))
        differs('argument', twinArgs[key] ?? null, existing.arguments?.[key] ?? null, key);
    }

    for (const queue of listing.queues) {
      if (!wantedQueue(queue)) continue;
      if (queue.exclusive) {
        skip('queue', queue.name, 'it is exclusive to one connection');
        continue;
      }
      const twinArgs = twinArguments('queue', queue.name, queue.arguments ?? {});
      if (twinArgs === undefined) continue;
      const name = queueTwin(queue.name);
      twinned.queue.add(queue.name);
      const existing = existingQueues.get(name);
      if (existing === undefined) {
        missing.push({
          kind: 'queue',
          name,
          production: queue.name,
          options: { durable: queue.durable, autoDelete: queue.auto_delete, arguments: twinArgs },
        });
        continue;
      }
      const differs = (kind: TopologyDrift['kind'], production: unknown, shadow: unknown, setting?: string) => {
        if (!same(production, shadow))
          drift.push({ resource: 'queue', name: queue.name, shadowName: name, kind, ...(setting ? { setting } : {}), production, shadow });
      };
      differs('durable', queue.durable, existing.durable);
      differs('auto_delete', queue.auto_delete, existing.auto_delete);
      for (const key of new Set([...Object.keys(twinArgs), ...Object.keys(existing.arguments ?? {})]))
        differs('argument', twinArgs[key] ?? null, existing.arguments?.[key] ?? null, key);
    }

    // Policies whose pattern also matches a twin's name apply to the twin: one
    // that routes its messages elsewhere (an alternate or dead-letter exchange,
    // a federation or shovel) routes shadow messages to production, and
    // RabbitMQ checks no permission on that step.
    for (const production of twinned.exchange) {
      const given = existingExchanges.get(production)?.arguments ?? {};
      drift.push(...policyLeaks(listing.policies, 'exchange', production, exchangeTwin(production), given, tenants));
    }
    for (const production of twinned.queue) {
      const given = existingQueues.get(production)?.arguments ?? {};
      drift.push(...policyLeaks(listing.policies, 'queue', production, queueTwin(production), given, tenants));
    }

    const wantedBindings: Array<Extract<ShadowDeclaration, { kind: 'binding' }>> = [];
    for (const binding of listing.bindings) {
      if (binding.source === '') continue;
      const destinationTwinned = binding.destination_type === 'queue' ? twinned.queue : twinned.exchange;
      if (!twinned.exchange.has(binding.source) || !destinationTwinned.has(binding.destination)) {
        const production = !isReservedName(binding.source, tenants) && !isReservedName(binding.destination, tenants);
        if (production && binding.source.startsWith('amq.') && wantedBinding(binding, options)) {
          skip('binding', `${binding.source} → ${binding.destination}`, `${binding.source} has no twin (the amq. prefix is reserved)`);
        }
        continue;
      }
      wantedBindings.push({
        kind: 'binding',
        source: exchangeTwin(binding.source),
        destination: binding.destination_type === 'queue' ? queueTwin(binding.destination) : exchangeTwin(binding.destination),
        destinationType: binding.destination_type,
        routingKey: binding.routing_key,
        arguments: binding.arguments ?? {},
      });
    }
    const bindingKey = (source: string, destination: string, type: string, key: string, args: unknown) =>
      JSON.stringify([source, destination, type, key, canonical(args)]);
    const existingBindings = new Set(
      listing.bindings.map((binding) =>
        bindingKey(binding.source, binding.destination, binding.destination_type, binding.routing_key, binding.arguments ?? {}),
      ),
    );
    for (const binding of wantedBindings) {
      if (
        !existingBindings.has(
          bindingKey(binding.source, binding.destination, binding.destinationType, binding.routingKey, binding.arguments),
        )
      ) {
        missing.push(binding);
      }
    }
    // Bindings of twins that production does not have. One between a twin and a
    // production resource is a leak: shadow messages reach production, or
    // production messages are consumed as shadow.
    const wantedKeys = new Set(
      wantedBindings.map((b) => bindingKey(b.source, b.destination, b.destinationType, b.routingKey, b.arguments)),
    );
    const suffix = isolatedSuffix(tenant);
    for (const binding of listing.bindings) {
      const fromTwin = binding.source.endsWith(suffix);
      const toTwin = binding.destination.endsWith(suffix);
      if (binding.source === '' || (!fromTwin && !toTwin)) continue;
      if (
        wantedKeys.has(
          bindingKey(binding.source, binding.destination, binding.destination_type, binding.routing_key, binding.arguments ?? {}),
        )
      )
        continue;
      const described = `${binding.source} → ${binding.destination_type} ${binding.destination} (${binding.routing_key})`;
      drift.push({
        resource: 'binding',
        name: described,
        shadowName: fromTwin ? binding.source : binding.destination,
        kind: 'binding',
        production: null,
        shadow: fromTwin && toTwin ? described : `${described}: between a twin and a production resource`,
      });
    }
  }

  const created: ShadowDeclaration[] = [];
  if (options.apply && missing.length > 0) {
    const channel = await (options.connection as ChannelModel).createChannel();
    try {
      // Exchanges, then queues, then the bindings between them.
      const order = { exchange: 0, queue: 1, binding: 2 } as const;
      for (const declaration of [...missing].sort((a, b) => order[a.kind] - order[b.kind])) {
        await declare(channel, declaration);
        created.push(declaration);
      }
    } finally {
      await channel.close().catch(() => {});
    }
  }
  return {
    created,
    missing: options.apply ? [] : missing,
    drift,
    skipped,
    absent,
    inSync: (options.apply ? missing.length === created.length : missing.length === 0) && drift.length === 0 && absent.length === 0,
  };
}

/** A policy as the management API lists it. */
interface ManagedPolicy {
  name: string;
  pattern: string;
  'apply-to': string;
  priority: number;
  definition: Record<string, unknown>;
}

// The declared argument that overrides a policy key, where there is one.
const ARGUMENT_OF_POLICY_KEY: Record<string, string> = {
  'alternate-exchange': 'alternate-exchange',
  'dead-letter-exchange': 'x-dead-letter-exchange',
};

// Policy keys that send a resource's messages somewhere else than where they were published.
const ROUTING_POLICY_KEYS = ['alternate-exchange', 'dead-letter-exchange', 'federation-upstream', 'federation-upstream-set', 'shovel'];

/**
 * The policies that may apply to `twin` (each whose pattern matches it and
 * that applies to its kind, user and operator policies alike: which one wins
 * depends on priorities the broker may change), as drift where one routes the
 * twin's messages to a resource that is not isolated and the twin's own
 * arguments do not override it. A pattern JavaScript cannot read counts as matching:
 * reported, never assumed harmless.
 */
function policyLeaks(
  policies: readonly ManagedPolicy[],
  kind: 'exchange' | 'queue',
  production: string,
  twin: string,
  given: Record<string, unknown>,
  tenants: readonly string[],
): TopologyDrift[] {
  const appliesTo = (target: string) => target === 'all' || (kind === 'exchange' ? target === 'exchanges' : target !== 'exchanges');
  const matching = policies.filter((policy) => {
    if (!appliesTo(policy['apply-to'] ?? 'all')) return false;
    try {
      return new RegExp(policy.pattern).test(twin);
    } catch {
      return true;
    }
  });
  // A twin, not a dead-letter queue (production's own, though its name is reserved).
  const isTwin = (name: string) => isReservedName(name, tenants) && !name.endsWith(DEAD_LETTER_SUFFIX);
  const leaks: TopologyDrift[] = [];
  for (const policy of matching) {
    for (const key of ROUTING_POLICY_KEYS) {
      const value = policy.definition?.[key];
      if (value === undefined) continue;
      // The twin's own argument (copied from production, pointed at a twin) wins over a policy.
      if (ARGUMENT_OF_POLICY_KEY[key] !== undefined && given[ARGUMENT_OF_POLICY_KEY[key]] !== undefined) continue;
      if (key === 'dead-letter-exchange' && value === '') {
        // Through the default exchange, to the queue the routing key (or each message's own key) names.
        const routingKey = policy.definition['dead-letter-routing-key'];
        if (typeof routingKey === 'string' && routingKey !== '' && isTwin(routingKey)) continue;
      } else if ((key === 'alternate-exchange' || key === 'dead-letter-exchange') && typeof value === 'string' && isTwin(value)) continue;
      leaks.push({
        resource: kind,
        name: production,
        shadowName: twin,
        kind: 'policy',
        setting: `${policy.name}: ${key}`,
        production: null,
        shadow: value,
      });
    }
  }
  return leaks;
}

/** The drift report: syncShadowTopology without declaring anything. */
export function checkShadowTopology(options: Omit<SyncShadowTopologyOptions, 'apply' | 'connection'>): Promise<SyncShadowTopologyResult> {
  return syncShadowTopology({ ...options, apply: false });
}

async function declare(channel: Channel, declaration: ShadowDeclaration): Promise<void> {
  try {
    switch (declaration.kind) {
      case 'exchange':
        await channel.assertExchange(declaration.name, declaration.type, declaration.options);
        return;
      case 'queue':
        await channel.assertQueue(declaration.name, declaration.options);
        return;
      case 'binding':
        if (declaration.destinationType === 'queue')
          await channel.bindQueue(declaration.destination, declaration.source, declaration.routingKey, declaration.arguments);
        else await channel.bindExchange(declaration.destination, declaration.source, declaration.routingKey, declaration.arguments);
        return;
    }
  } catch (error) {
    const what =
      declaration.kind === 'binding'
        ? `binding ${declaration.source} → ${declaration.destination}`
        : `${declaration.kind} ${declaration.name}`;
    throw new Error(`syncShadowTopology: declaring ${what} failed: ${(error as Error).message}`, { cause: error });
  }
}

function wantedBinding(binding: ManagedBinding, options: SyncShadowTopologyOptions): boolean {
  const list = binding.destination_type === 'queue' ? options.queues : options.exchanges;
  return list?.includes(binding.destination) ?? true;
}

/** JSON with sorted keys: argument tables compare by content, whatever order the API lists them in. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, canonical((value as Record<string, unknown>)[key])]),
    );
  return value;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}
