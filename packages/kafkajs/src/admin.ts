import { isolatedName, isolationRefusal, type Tenant, type TenantPolicy } from '@dye/core';
import type { Admin } from 'kafkajs';
import type { IsolatedKafkaClient } from './isolated-client.js';
import { ADMIN_OPERATIONS } from './operations.js';
import { isolatedTenantNow } from './tenants.js';

type Rename = (tenant: Tenant, args: unknown[]) => unknown[];

const topic = (tenant: Tenant, name: string) => isolatedName('kafka-topic', name, tenant);
const group = (tenant: Tenant, name: string) => isolatedName('kafka-group', name, tenant);

// The `isolated` admin methods, with how each one's arguments are renamed:
// every topic and group a caller names is read as a production name.
const RENAMES: Record<string, Rename> = {
  fetchTopicMetadata: (tenant, [options]) => {
    const given = options as { topics?: string[] } | undefined;
    return given?.topics ? [{ ...given, topics: given.topics.map((name) => topic(tenant, name)) }] : [options];
  },
  fetchOffsets: (tenant, [options]) => {
    const given = options as { groupId: string; topics?: string[] };
    return [
      {
        ...given,
        groupId: group(tenant, given.groupId),
        ...(given.topics ? { topics: given.topics.map((name) => topic(tenant, name)) } : {}),
      },
    ];
  },
  fetchTopicOffsets: (tenant, [name, ...rest]) => [topic(tenant, name as string), ...rest],
  fetchTopicOffsetsByTimestamp: (tenant, [name, ...rest]) => [topic(tenant, name as string), ...rest],
  setOffsets: (tenant, [options]) => {
    const given = options as { groupId: string; topic: string };
    return [{ ...given, groupId: group(tenant, given.groupId), topic: topic(tenant, given.topic) }];
  },
  resetOffsets: (tenant, [options]) => {
    const given = options as { groupId: string; topic: string };
    return [{ ...given, groupId: group(tenant, given.groupId), topic: topic(tenant, given.topic) }];
  },
  describeGroups: (tenant, [groupIds]) => [(groupIds as string[]).map((name) => group(tenant, name))],
  deleteGroups: (tenant, [groupIds]) => [(groupIds as string[]).map((name) => group(tenant, name))],
  deleteTopicRecords: (tenant, [options]) => {
    const given = options as { topic: string };
    return [{ ...given, topic: topic(tenant, given.topic) }];
  },
};

/**
 * An admin client that, in an isolated tenant, reads and moves only isolated
 * groups and topics (names given are production names, renamed) and refuses
 * topology and access changes; in baseline and non-isolating colors it is
 * kafkajs's own. Results name the isolated resources they read.
 */
export function tenantAdmin(admin: Admin, policy: () => TenantPolicy, isolatedClient?: IsolatedKafkaClient): Admin {
  /** Where an isolated tenant's admin call goes: the isolated client's admin when there is one, confirmed first. */
  async function isolatedTarget(tenant: Tenant): Promise<Admin> {
    if (isolatedClient === undefined) return admin;
    await isolatedClient.confirm([], tenant);
    return isolatedClient.admin();
  }

  return new Proxy(admin, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof property !== 'string' || typeof value !== 'function') return value;
      const kind = Object.hasOwn(ADMIN_OPERATIONS, property) ? ADMIN_OPERATIONS[property] : undefined;
      if (kind === 'neutral') return value.bind(target);
      return (...args: unknown[]) => {
        const tenant = isolatedTenantNow(policy());
        if (tenant === undefined) return Reflect.apply(value, target, args);
        const rename = kind === 'isolated' ? RENAMES[property] : undefined;
        if (rename === undefined) {
          return Promise.reject(
            isolationRefusal('kafka', {
              tenant: tenant.name,
              refused: `admin.${property}()`,
              reason:
                kind === 'refused'
                  ? 'an isolated tenant does not change topics, partitions, configs or ACLs; shadow topology is made by syncShadowTopics (dye shadow sync)'
                  : 'Dye does not know what this kafkajs method touches, so an isolated tenant may not call it',
            }),
          );
        }
        try {
          const renamed = rename(tenant, args);
          if (isolatedClient === undefined) return Reflect.apply(value, target, renamed);
          return isolatedTarget(tenant).then((isolated) => Reflect.apply(Reflect.get(isolated, property), isolated, renamed));
        } catch (error) {
          return Promise.reject(error);
        }
      };
    },
  });
}
