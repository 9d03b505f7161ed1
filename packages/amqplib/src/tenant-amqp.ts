import {
  BASELINE,
  currentTenant,
  getDefaultPolicy,
  isolatedName,
  isolationRefusal,
  TenantConflictError,
  type TenantPolicy,
  warnGuardOnly,
  withTenant,
} from '@dye/core';
import type { Channel, ChannelModel, ChannelOptions, ConfirmChannel, Message } from 'amqplib';
import { IsolatedAccountCheck } from './account-check.js';
import { type AmqpHeaders, messageTenant } from './message-headers.js';
import { AccountConfined, type Requirement, TwinExists } from './requirements.js';
import { ResourceCatalog } from './resource-catalog.js';
import { type AmqpContext, tenantChannel } from './tenant-channel.js';
import { isolatedOnProduction, isolatedReader, isolates } from './tenants.js';
import type { TenantAmqpOptions } from './types.js';

/** Production names whose `_shadow` twins isolated work will use. */
export interface ShadowResources {
  exchanges?: readonly string[];
  queues?: readonly string[];
  /** Isolated tenants to check them for. Default: the `isolatedTenants` option, else `['shadow']`. */
  tenants?: readonly string[];
}

export interface ShadowReadiness {
  /** Twins found (and, with enforcement 'account', names RabbitMQ refuses the isolated user). */
  readonly present: readonly string[];
  /** Twins missing or not usable, each with the refusal isolated work would get. */
  readonly missing: ReadonlyArray<{ readonly name: string; readonly reason: string }>;
  readonly ready: boolean;
}

export interface TenantAmqp {
  /** A channel with amqplib's own type: see CHANNEL_OPERATIONS for what each method does per tenant. */
  createChannel(options?: ChannelOptions): Promise<Channel>;
  createConfirmChannel(options?: ChannelOptions): Promise<ConfirmChannel>;
  /**
   * Checks now, for each isolated tenant, that the twins of these exchanges and
   * queues exist (and, with enforcement 'account', that RabbitMQ confines the
   * isolated user for them), and caches the answers: isolated publishing to
   * them is then decided synchronously from the first message. Never throws
   * for a missing twin: the result says which are.
   */
  ready(resources: ShadowResources): Promise<ShadowReadiness>;
  /**
   * Closes every channel Dye opened: the isolated channels of the wrapped
   * channels (their shadow consumers stop; the wrapped channels stay open) and
   * the ones it looks exchanges and queues up on. The connections stay open.
   */
  close(): Promise<void>;
}

/**
 * Wraps an amqplib connection (a ChannelModel from `connect()`): channels it
 * creates stamp `x-tenant` and baggage on copies of every message's headers,
 * publish isolated tenants' messages to `<exchange>_shadow` (or the queue
 * `<queue>_shadow` through the default exchange) on a channel Dye owns, and
 * refuse with IsolationError when that twin does not exist (never declared);
 * consumers run handlers in each message's tenant, dead-letter messages with
 * conflicting tenants, and consume the `_shadow` twins beside production; in
 * an isolated tenant every channel operation acts on twins only (see
 * operations.ts).
 */
export function tenantAmqp(connection: ChannelModel, options: TenantAmqpOptions = {}): TenantAmqp {
  const enforcement = options.enforcement ?? (options.isolatedConnection ? 'account' : 'guard-only');
  if (enforcement !== 'account' && enforcement !== 'guard-only') throw new TypeError(`unknown enforcement ${JSON.stringify(enforcement)}`);
  if (enforcement === 'account' && options.isolatedConnection === undefined) {
    throw new TypeError(
      "tenantAmqp: enforcement 'account' needs isolatedConnection, a connection as the isolated tenants' RabbitMQ user (see grantShadowAccess)",
    );
  }
  if (options.isolatedConnection !== undefined && enforcement === 'guard-only') {
    warnGuardOnly('amqp', 'the isolated connection is used unchecked: Dye does not ask RabbitMQ whether its user may reach production');
  }
  const policy = () => options.policy ?? getDefaultPolicy();
  const isolatedTenants = options.isolatedTenants ?? ['shadow'];
  for (const name of isolatedTenants) {
    if (!policy().isolates(policy().tenant(name), 'amqp'))
      throw new TypeError(`tenantAmqp: ${JSON.stringify(name)} does not isolate RabbitMQ`);
  }
  const production = new ResourceCatalog(connection, options.existenceTtl);
  const isolatedConnection = options.isolatedConnection ?? connection;
  const isolatedCatalog = options.isolatedConnection ? new ResourceCatalog(isolatedConnection, options.existenceTtl) : production;
  const account = enforcement === 'account' ? new IsolatedAccountCheck(isolatedCatalog) : undefined;
  const context: AmqpContext = {
    policy,
    production,
    isolated: { connection: isolatedConnection, catalog: isolatedCatalog, account, ownAccount: options.isolatedConnection !== undefined },
    isolatedTenants,
    isolatedConsumers: options.isolatedConsumers ?? true,
    openChannels: new Set(),
  };

  async function ready(resources: ShadowResources): Promise<ShadowReadiness> {
    const present: string[] = [];
    const missing: Array<{ name: string; reason: string }> = [];
    for (const name of resources.tenants ?? isolatedTenants) {
      const tenant = policy().tenant(name);
      const checks: Array<[string, Requirement]> = [];
      for (const exchange of resources.exchanges ?? []) {
        const twin = isolatedName('amqp-exchange', exchange, tenant);
        if (account) checks.push([`write ${exchange} refused`, new AccountConfined(account, { mode: 'write', name: exchange }, tenant)]);
        checks.push([
          twin,
          new TwinExists(isolatedCatalog, { kind: 'exchange', name: twin }, exchange, tenant, `publishing to exchange ${exchange}`),
        ]);
      }
      for (const queue of resources.queues ?? []) {
        const twin = isolatedName('amqp-queue', queue, tenant);
        if (account) checks.push([`read ${queue} refused`, new AccountConfined(account, { mode: 'read', name: queue }, tenant)]);
        checks.push([twin, new TwinExists(isolatedCatalog, { kind: 'queue', name: twin }, queue, tenant, `consuming ${queue}`)]);
      }
      for (const [label, requirement] of checks) {
        try {
          await requirement.ensure();
          present.push(label);
        } catch (error) {
          missing.push({ name: label, reason: (error as { reason?: string }).reason ?? String(error) });
        }
      }
    }
    return { present, missing, ready: missing.length === 0 };
  }

  return {
    createChannel: async (channelOptions) =>
      tenantChannel(await withBaseline(() => connection.createChannel(channelOptions)), false, context, channelOptions),
    createConfirmChannel: async (channelOptions) =>
      tenantChannel(await withBaseline(() => connection.createConfirmChannel(channelOptions)), true, context, channelOptions),
    ready,
    close: async () => {
      await Promise.all([...context.openChannels].map((close) => close()));
      await Promise.all([production.close(), isolatedCatalog.close()]);
    },
  };
}

// Channel creation is production setup, whatever tenant asks for it.
const withBaseline = <T>(fn: () => Promise<T>) => withTenant(BASELINE, fn);

/**
 * Runs `fn` in the tenant of a message (one from `get()`, or a 'return'
 * event). A message an isolated tenant's channel received (from a twin queue,
 * or returned to a twin's publisher) is that tenant's whatever its headers
 * say, and code already in an isolated tenant never leaves it through a
 * message's headers. Otherwise the headers decide: TenantConflictError when
 * they name two tenants, IsolationError when they name an isolated tenant
 * (Dye never publishes its messages to production queues: this one came from
 * outside Dye; dead-letter it).
 */
export function withMessageTenant<R>(message: Pick<Message, 'properties'>, fn: () => R, policy: TenantPolicy = getDefaultPolicy()): R {
  const reader = isolatedReader(message);
  if (reader !== undefined) return withTenant(reader, fn);
  const now = currentTenant();
  if (isolates(policy, now)) return withTenant(now, fn);
  const decided = messageTenant(message.properties.headers as AmqpHeaders | undefined, policy);
  if (!decided.ok) throw new TenantConflictError(decided.names);
  if (isolates(policy, decided.tenant))
    throw isolationRefusal('amqp', {
      tenant: decided.tenant.name,
      refused: 'processing a message of a production queue in an isolated tenant',
      reason: isolatedOnProduction(decided.tenant, 'its queue'),
    });
  return withTenant(decided.tenant, fn);
}
