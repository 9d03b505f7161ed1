import { type EnforcementMode, isolatedSuffix, type Tenant, warnGuardOnly } from '@dye/core';
import type { Admin, Kafka, Producer, ProducerConfig } from 'kafkajs';
import { IsolatedClientCheck } from './isolated-client-check.js';

/**
 * The kafkajs client isolated tenants use when they have a principal of their
 * own (`isolatedClient`): its producers, consumers and admin connection, and
 * the first-use check that the broker really confines that principal.
 */
export class IsolatedKafkaClient {
  readonly #check: IsolatedClientCheck | undefined;
  #admin: Promise<Admin> | undefined;

  constructor(
    readonly client: Kafka,
    enforcement: EnforcementMode,
  ) {
    if (enforcement === 'guard-only') {
      warnGuardOnly('kafka', 'the isolated client is used unchecked: Dye does not ask the broker whether it may write production topics');
    } else {
      this.#check = new IsolatedClientCheck(client);
    }
  }

  /**
   * Resolves when the broker refuses this client's writes to each production
   * topic named (and to a made-up one); rejects with IsolationError otherwise.
   */
  async confirm(productionTopics: Iterable<string>, tenant: Tenant): Promise<void> {
    const check = this.#check;
    if (check === undefined) return;
    const topics = [...new Set(productionTopics)];
    if (topics.length === 0) await check.ensure(undefined, tenant);
    else await Promise.all(topics.map((topic) => check.ensure(topic, tenant)));
  }

  /**
   * A producer for one isolated tenant. A transactional id is the tenant's
   * own (`<id>_shadow`): the production id would fence the production
   * producer's transactions.
   */
  producer(config: ProducerConfig | undefined, tenant: Tenant): Producer {
    const transactionalId = config?.transactionalId;
    return this.client.producer({
      ...config,
      ...(transactionalId === undefined ? {} : { transactionalId: `${transactionalId}${isolatedSuffix(tenant.name)}` }),
    });
  }

  /** One admin connection, made at first use, for isolated tenants' admin calls. */
  admin(): Promise<Admin> {
    this.#admin ??= (async () => {
      const admin = this.client.admin();
      await admin.connect();
      return admin;
    })().catch((error: unknown) => {
      this.#admin = undefined;
      throw error;
    });
    return this.#admin;
  }

  async close(): Promise<void> {
    const admin = this.#admin;
    this.#admin = undefined;
    if (admin) await (await admin.catch(() => undefined))?.disconnect();
  }
}
