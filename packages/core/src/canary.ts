import { createHash } from 'node:crypto';
import { checkTenantName, isAlwaysIsolated } from './tenant.js';

/** Users are hashed into this many buckets: percentages down to 0.01 %. */
export const CANARY_BUCKETS = 10_000;

/** Sends a stable share of users (by key) to a color. */
export interface CanaryRule<Req = unknown> {
  /** The color to send matching requests to. Isolated tenants are refused: real users' data must not land in shadow resources. */
  tenant: string;
  /** Share of keys, 0–100, in steps of 0.01. */
  percent: number;
  /** The stable key of a request (user id, account id); undefined → the rule does not apply. */
  key: (request: Req) => string | undefined;
  /** Keys always sent to this color, whatever their bucket (testers, internal users). */
  allow?: readonly string[];
  /** Hash salt; default the tenant name, so two rules of the same percent pick different users. */
  salt?: string;
}

export interface CompiledCanaryRule<Req> {
  readonly tenant: string;
  matches(request: Req): boolean;
}

/**
 * The bucket of a key: the first 32 bits of SHA-256 over `salt \0 key`, modulo
 * 10,000. SHA-256 because the same user must land in the same bucket in every
 * process, language and release, and its output is evenly spread.
 */
export function canaryBucket(key: string, salt: string): number {
  const digest = createHash('sha256').update(salt).update('\0').update(key).digest();
  return digest.readUInt32BE(0) % CANARY_BUCKETS;
}

export function compileCanaryRule<Req>(rule: CanaryRule<Req>): CompiledCanaryRule<Req> {
  const checked = checkTenantName(String(rule.tenant ?? ''));
  if (!checked.ok) throw new TypeError(`canary rule: ${checked.reason}`);
  const tenant = checked.name;
  if (tenant === 'baseline') throw new TypeError('canary rule: baseline is what requests get without a rule');
  if (isAlwaysIsolated(tenant)) {
    throw new TypeError(`canary rule: "${tenant}" is isolated; real users' writes would land in shadow resources`);
  }
  if (typeof rule.percent !== 'number' || !(rule.percent >= 0 && rule.percent <= 100)) {
    throw new TypeError(`canary rule for "${tenant}": percent must be between 0 and 100`);
  }
  if (typeof rule.key !== 'function') throw new TypeError(`canary rule for "${tenant}": key must be a function of the request`);
  const threshold = Math.round(rule.percent * (CANARY_BUCKETS / 100));
  const allow = new Set(rule.allow ?? []);
  const salt = rule.salt ?? tenant;
  const key = rule.key;
  return {
    tenant,
    matches(request) {
      const value = key(request);
      if (typeof value !== 'string' || value.length === 0) return false;
      if (allow.has(value)) return true;
      return threshold > 0 && canaryBucket(value, salt) < threshold;
    },
  };
}
