import type { Command } from 'commander';
import { type Admin, Kafka, logLevel, type SASLOptions } from 'kafkajs';
import { UsageError } from './usage-error.js';

/** How the CLI reaches a Kafka cluster as an admin: brokers, and SASL/TLS when the cluster authenticates. */
export interface KafkaAdminOptions {
  kafka?: string;
  kafkaUser?: string;
  kafkaPasswordEnv: string;
  kafkaMechanism: string;
  kafkaSsl?: boolean;
}

const MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;

export function addKafkaAdminOptions(command: Command): Command {
  return command
    .option('--kafka-user <name>', 'SASL user the admin connection authenticates as (a cluster that enforces ACLs)')
    .option('--kafka-password-env <name>', "the environment variable holding that user's password", 'DYE_KAFKA_PASSWORD')
    .option('--kafka-mechanism <name>', `SASL mechanism: ${MECHANISMS.join(', ')}`, 'plain')
    .option('--kafka-ssl', 'connect with TLS');
}

/** An admin client for `--kafka <brokers>`; the caller connects and disconnects it. */
export function kafkaAdmin(options: KafkaAdminOptions): Admin {
  return kafkaClient(options).admin();
}

/** The client for `--kafka <brokers>` (SASL/TLS as asked), for admin clients and consumers. */
export function kafkaClient(options: KafkaAdminOptions): Kafka {
  const brokers = (options.kafka ?? '')
    .split(',')
    .map((broker) => broker.trim())
    .filter((broker) => broker.length > 0);
  if (brokers.length === 0) throw new UsageError('--kafka needs at least one broker, as 127.0.0.1:9092');
  let sasl: SASLOptions | undefined;
  if (options.kafkaUser !== undefined) {
    const mechanism = options.kafkaMechanism.toLowerCase();
    if (!(MECHANISMS as readonly string[]).includes(mechanism)) {
      throw new UsageError(`--kafka-mechanism ${options.kafkaMechanism}: use one of ${MECHANISMS.join(', ')}`);
    }
    const password = process.env[options.kafkaPasswordEnv];
    if (!password) throw new UsageError(`--kafka-user ${options.kafkaUser}: set ${options.kafkaPasswordEnv} to its password`);
    sasl = { mechanism: mechanism as (typeof MECHANISMS)[number], username: options.kafkaUser, password } as SASLOptions;
  }
  return new Kafka({
    clientId: 'dye-cli',
    brokers,
    logLevel: logLevel.NOTHING,
    ...(sasl ? { sasl } : {}),
    ...(options.kafkaSsl ? { ssl: true } : {}),
  });
}
