import type { Tenant } from '@dye/core';
import type { KafkaMessage } from 'kafkajs';

// Messages an isolated consumer read, with the tenant their topic gives them,
// process-wide (any copy of this package sees what another marked). In an
// isolated topic the topic decides the tenant, not the headers: a message
// written there without them (or naming another tenant) is still that
// tenant's, wherever its tenant is asked for again (withMessageTenant in an
// eachBatch handler).
const READ_BY = Symbol.for('dye.kafka.isolatedMessages');
const holder = globalThis as { [READ_BY]?: WeakMap<object, Tenant> };
const readBy = (holder[READ_BY] ??= new WeakMap<object, Tenant>());

/** Marks a message an isolated consumer of `tenant` read. */
export function markIsolatedMessage(message: KafkaMessage, tenant: Tenant): void {
  readBy.set(message, tenant);
}

/** The isolated tenant whose consumer read `message`, if one did. */
export function isolatedReader(message: object): Tenant | undefined {
  return readBy.get(message);
}
