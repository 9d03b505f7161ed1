import { isolatedName, isolatedSuffix } from '@dye/core';
import kafkajs, { type AclEntry, type Admin, type DescribeAclResource } from 'kafkajs';

// kafkajs is CommonJS: its enums come from the default export under Node's ESM loader.
const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, ResourcePatternTypes } = kafkajs;

export interface GrantKafkaShadowAccessOptions {
  /** An admin client whose principal may describe, create and delete ACLs. */
  admin: Admin;
  /** The principal isolated clients authenticate as, as `User:shadow`. */
  principal: string;
  /** Production topics: the principal gets `<topic>_<tenant>`. */
  topics: string[];
  /** Production consumer groups: the principal gets `<group>_<tenant>`. */
  groups?: string[];
  /**
   * Transactional ids of production producers: the principal gets
   * `<id>_<tenant>`, the id an isolated client's transactional producer uses
   * (tenantKafka renames it so it never fences the production producer).
   */
  transactionalIds?: string[];
  /** Isolated tenants (default `shadow`). */
  tenants?: string[];
  /** Host the ACLs hold for (default `*`). */
  host?: string;
  /** Create what is missing and delete every other ALLOW of the principal; without it, a dry run. */
  apply?: boolean;
}

/** One ACL, as kafkajs describes and creates them. */
export interface KafkaAcl {
  resourceType: 'TOPIC' | 'GROUP' | 'CLUSTER' | 'TRANSACTIONAL_ID' | 'DELEGATION_TOKEN' | 'UNKNOWN';
  resourceName: string;
  patternType: 'LITERAL' | 'PREFIXED' | 'UNKNOWN';
  operation: string;
  permission: 'ALLOW' | 'DENY' | 'UNKNOWN';
  host: string;
}

export interface GrantKafkaShadowAccessResult {
  principal: string;
  /** What the principal should hold: ALLOWs on its twins, and DENYs overriding ALLOWs given to every principal. */
  wanted: KafkaAcl[];
  /** Wanted and missing. */
  create: KafkaAcl[];
  /** ALLOW entries of the principal beyond the wanted ones (a production topic, a prefix, the cluster). */
  remove: KafkaAcl[];
  /**
   * ALLOWs for every principal (`User:*`) that this grant cannot override
   * without denying an isolated name too (`*`, a prefix of a twin, the
   * cluster): while any is listed, the principal is not confined.
   */
  conflicts: KafkaAcl[];
  applied: boolean;
  /** True when nothing was to change and nothing conflicts: the principal is confined. */
  inSync: boolean;
}

// kafkajs's enums are plain objects at run time (name → number): read back by value.
const name = (types: object, value: number): string => Object.entries(types).find(([, number]) => number === value)?.[0] ?? 'UNKNOWN';

const key = (acl: KafkaAcl) =>
  [acl.resourceType, acl.patternType, acl.resourceName, acl.operation, acl.permission, acl.host].join('\u0000');

/**
 * The ACLs that let an isolated principal do its work and nothing more:
 * READ, WRITE and DESCRIBE on each `<topic>_<tenant>`, READ and DESCRIBE on
 * each `<group>_<tenant>`, WRITE and DESCRIBE on each transactional id
 * `<id>_<tenant>`, every one LITERAL (Kafka patterns match prefixes,
 * not the `_shadow` suffix, so each name is written out; run this again when
 * topics or groups are added). The broker then refuses the principal
 * production topics and groups whatever a client asks (with
 * `allow.everyone.if.no.acl.found=false`, as StandardAuthorizer defaults).
 */
export async function grantShadowAccess(options: GrantKafkaShadowAccessOptions): Promise<GrantKafkaShadowAccessResult> {
  const { admin, principal } = options;
  if (!/^User:.+/.test(principal))
    throw new TypeError(`grantShadowAccess: principal must read User:<name>, got ${JSON.stringify(principal)}`);
  const host = options.host ?? '*';
  const tenants = options.tenants && options.tenants.length > 0 ? options.tenants : ['shadow'];
  const wanted: KafkaAcl[] = [];
  const allow = (resourceType: KafkaAcl['resourceType'], resourceName: string, operations: string[]) => {
    for (const operation of operations)
      wanted.push({ resourceType, resourceName, patternType: 'LITERAL', operation, permission: 'ALLOW', host });
  };
  for (const tenant of tenants) {
    for (const topic of options.topics) allow('TOPIC', isolatedName('kafka-topic', topic, tenant), ['READ', 'WRITE', 'DESCRIBE']);
    for (const group of options.groups ?? []) allow('GROUP', isolatedName('kafka-group', group, tenant), ['READ', 'DESCRIBE']);
    for (const id of options.transactionalIds ?? []) {
      if (id.length === 0) throw new TypeError('grantShadowAccess: empty transactional id');
      allow('TRANSACTIONAL_ID', `${id}${isolatedSuffix(tenant)}`, ['WRITE', 'DESCRIBE']);
    }
  }

  const describe = async (who: string): Promise<KafkaAcl[]> => {
    const described = await admin.describeAcls({
      resourceType: AclResourceTypes.ANY,
      resourcePatternType: ResourcePatternTypes.ANY,
      principal: who,
      operation: AclOperationTypes.ANY,
      permissionType: AclPermissionTypes.ANY,
    });
    return (described.resources as DescribeAclResource[]).flatMap((resource) =>
      resource.acls.map((acl) => ({
        resourceType: name(AclResourceTypes, resource.resourceType) as KafkaAcl['resourceType'],
        resourceName: resource.resourceName,
        patternType: name(ResourcePatternTypes, resource.resourcePatternType) as KafkaAcl['patternType'],
        operation: name(AclOperationTypes, acl.operation),
        permission: name(AclPermissionTypes, acl.permissionType) as KafkaAcl['permission'],
        host: acl.host,
      })),
    );
  };
  const existing = await describe(principal);
  // An ALLOW for every principal (`User:*`) holds for this one too, and is not
  // this grant's to delete: a DENY for this principal on the same resource
  // overrides it. One that also covers an isolated name cannot be denied
  // without denying the twin: it is reported, and the principal is not confined.
  const conflicts: KafkaAcl[] = [];
  const wantedNames = wanted.map((acl) => `${acl.resourceType}\u0000${acl.resourceName}`);
  const covers = (acl: KafkaAcl) =>
    wantedNames.some((entry) => {
      const [type, resourceName] = entry.split('\u0000') as [string, string];
      if (type !== acl.resourceType) return false;
      if (acl.patternType === 'PREFIXED') return resourceName.startsWith(acl.resourceName);
      return acl.resourceName === '*' || acl.resourceName === resourceName;
    });
  if (principal !== 'User:*') {
    for (const acl of await describe('User:*')) {
      if (acl.permission !== 'ALLOW') continue;
      if (acl.resourceType === 'CLUSTER' || covers(acl)) conflicts.push(acl);
      else wanted.push({ ...acl, permission: 'DENY' });
    }
  }
  const have = new Set(existing.map(key));
  const want = new Set(wanted.map(key));
  const create = wanted.filter((acl) => !have.has(key(acl)));
  // A DENY only narrows what the principal may do: it stays.
  const remove = existing.filter((acl) => acl.permission === 'ALLOW' && !want.has(key(acl)));

  const inSync = create.length === 0 && remove.length === 0 && conflicts.length === 0;
  if (options.apply && (create.length > 0 || remove.length > 0)) {
    const entry = (acl: KafkaAcl): AclEntry => ({
      resourceType: AclResourceTypes[acl.resourceType as keyof typeof AclResourceTypes],
      resourceName: acl.resourceName,
      resourcePatternType: ResourcePatternTypes[acl.patternType as keyof typeof ResourcePatternTypes],
      principal,
      host: acl.host,
      operation: AclOperationTypes[acl.operation as keyof typeof AclOperationTypes],
      permissionType: AclPermissionTypes[acl.permission as keyof typeof AclPermissionTypes],
    });
    if (remove.length > 0) await admin.deleteAcls({ filters: remove.map(entry) });
    if (create.length > 0) await admin.createAcls({ acl: create.map(entry) });
  }
  const changed = create.length > 0 || remove.length > 0;
  return { principal, wanted, create, remove, conflicts, applied: Boolean(options.apply) && changed, inSync };
}
