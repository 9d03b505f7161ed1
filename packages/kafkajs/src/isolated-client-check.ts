import { randomBytes } from 'node:crypto';
import { FirstUseCheck, isolationRefusal, type Tenant } from '@dye/core';
import type { Kafka } from 'kafkajs';

/**
 * The partition index no topic has (Kafka caps partitions far below it). A
 * Produce request for it is judged by the broker in two steps, in this order:
 * is the principal allowed to WRITE the topic (TOPIC_AUTHORIZATION_FAILED when
 * not), and does the partition exist (UNKNOWN_TOPIC_OR_PARTITION). So the answer
 * says whether the principal could write the topic, and nothing is ever
 * written: the partition does not exist.
 */
const NO_SUCH_PARTITION = 2_147_483_647;

/** What the broker says a principal may do with one topic. */
export type WriteVerdict = 'refused' | 'allowed';

interface ProbeBroker {
  produce(request: {
    acks: number;
    timeout: number;
    topicData: { topic: string; partitions: { partition: number; messages: { key: null; value: Buffer }[] }[] }[];
  }): Promise<unknown>;
}

interface ProbeCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  brokerPool: { seedBroker: ProbeBroker };
}

/**
 * kafkajs offers no way to send a Produce request for a partition that does
 * not exist (its producer drops such messages before the broker sees them),
 * so the probe asks the client for a cluster connection of its own, made with
 * the client's brokers, TLS and SASL settings, through the one private hook
 * kafkajs's producer, consumer and admin use themselves. When a kafkajs
 * release renames it, the check fails, and isolated use is refused, until
 * Dye follows: never a silent pass.
 */
function probeCluster(client: Kafka): ProbeCluster {
  const hook = Object.getOwnPropertySymbols(client).find((symbol) => symbol.description === 'private:Kafka:createCluster');
  const create = hook === undefined ? undefined : (client as unknown as Record<symbol, unknown>)[hook];
  if (typeof create !== 'function') {
    throw new Error('this kafkajs release gives no cluster connection to probe the isolated client with (kafkajs ^2.2 expected)');
  }
  return create({ allowAutoTopicCreation: false }) as ProbeCluster;
}

/** Asks the broker, as the client's principal, whether it may write each topic; writes nothing. */
export async function probeWriteAccess(client: Kafka, topics: readonly string[]): Promise<Map<string, WriteVerdict>> {
  const cluster = probeCluster(client);
  await cluster.connect();
  try {
    const broker = cluster.brokerPool.seedBroker;
    const verdicts = new Map<string, WriteVerdict>();
    // One topic per request: kafkajs reports only the first partition error of a response.
    for (const topic of topics) {
      try {
        await broker.produce({
          acks: 1,
          timeout: 5_000,
          topicData: [{ topic, partitions: [{ partition: NO_SUCH_PARTITION, messages: [{ key: null, value: Buffer.alloc(0) }] }] }],
        });
        throw new Error(`the broker accepted a write to partition ${NO_SUCH_PARTITION} of ${topic}, which cannot exist`);
      } catch (error) {
        const type = (error as { type?: unknown }).type;
        if (type === 'TOPIC_AUTHORIZATION_FAILED') verdicts.set(topic, 'refused');
        else if (type === 'UNKNOWN_TOPIC_OR_PARTITION') verdicts.set(topic, 'allowed');
        else throw error;
      }
    }
    return verdicts;
  } finally {
    await cluster.disconnect().catch(() => {});
  }
}

/**
 * Checks, before the first isolated use of a production topic through the
 * isolated client, that the broker refuses that client's writes to it and to
 * a topic name nobody uses (which catches wildcard and prefix grants, super
 * users and `allow.everyone.if.no.acl.found=true`). Each production topic is
 * checked once and again every `recheckEveryMs`; a failure is kept for a few
 * seconds so a broken setup is not asked again on every send.
 */
export class IsolatedClientCheck {
  readonly #checks = new Map<string, FirstUseCheck>();

  constructor(
    private readonly client: Kafka,
    private readonly recheckEveryMs = 60_000,
  ) {}

  /**
   * Resolves when the broker refuses the isolated client's writes to
   * `productionTopic` (when given) and to a made-up topic; rejects with
   * IsolationError otherwise.
   */
  ensure(productionTopic: string | undefined, tenant: Tenant): Promise<void> {
    const key = productionTopic ?? '';
    let check = this.#checks.get(key);
    if (check === undefined) {
      check = new FirstUseCheck(() => this.#check(productionTopic, tenant), 5_000, this.recheckEveryMs);
      this.#checks.set(key, check);
    }
    return check.ensure();
  }

  async #check(productionTopic: string | undefined, tenant: Tenant): Promise<void> {
    const unused = `dye-probe-${randomBytes(6).toString('hex')}`;
    let verdicts: Map<string, WriteVerdict>;
    try {
      verdicts = await probeWriteAccess(this.client, productionTopic === undefined ? [unused] : [productionTopic, unused]);
    } catch (error) {
      throw isolationRefusal('kafka', {
        tenant: tenant.name,
        refused: `using the isolated client${productionTopic === undefined ? '' : ` for ${productionTopic}`}`,
        reason: `Dye could not ask the broker whether the isolated client may write production topics: ${String((error as Error).message ?? error)}`,
      });
    }
    const writable = [...verdicts].filter(([, verdict]) => verdict === 'allowed').map(([topic]) => topic);
    if (writable.length > 0) {
      throw isolationRefusal('kafka', {
        tenant: tenant.name,
        refused: `using the isolated client${productionTopic === undefined ? '' : ` for ${productionTopic}`}`,
        reason:
          `the broker lets the isolated client's principal write ${writable.join(' and ')}, so it could write production; ` +
          "grant it only the isolated topics (grantShadowAccess, dye shadow grant --kafka), or pass enforcement: 'guard-only'",
      });
    }
  }
}
