import { isolatedKeyPrefix, type Tenant, type TenantPolicy, withTenant } from '@dye/core';
import { stripKey } from './command-plan.js';

type AnyFunction = (...args: unknown[]) => unknown;

/** Message events and how many leading arguments are channel names (pmessage: pattern, channel). */
const MESSAGE_EVENTS: Readonly<Record<string, number>> = {
  message: 1,
  messageBuffer: 1,
  smessage: 1,
  smessageBuffer: 1,
  pmessage: 2,
  pmessageBuffer: 2,
};

function channelText(channel: unknown): string {
  return Buffer.isBuffer(channel) ? channel.toString('latin1') : String(channel);
}

/** Whether a channel lives in some isolated tenant's namespace (`shadow:…`). */
function isolatedChannel(channel: unknown, policy: TenantPolicy): boolean {
  const text = channelText(channel);
  const colon = text.indexOf(':');
  if (colon <= 0) return false;
  const resolved = policy.resolve(text.slice(0, colon));
  return resolved.ok && resolved.tenant.kind !== 'baseline' && policy.isolates(resolved.tenant, 'redis');
}

/**
 * A message listener registered in `tenant`: it hears only its tenant's
 * channels, with the tenant prefix removed, and runs in that tenant. A listener
 * of a shared-data tenant (baseline, colors) never hears an isolated tenant's
 * channels, even on a connection both subscribe on. Other events: undefined.
 */
export function wrapMessageListener(event: string, listener: AnyFunction, tenant: Tenant, policy: TenantPolicy): AnyFunction | undefined {
  const channels = MESSAGE_EVENTS[event];
  if (channels === undefined) return undefined;
  if (tenant.kind !== 'baseline' && policy.isolates(tenant, 'redis')) {
    const prefix = isolatedKeyPrefix(tenant.name);
    return (...args: unknown[]) => {
      if (!args.slice(0, channels).every((channel) => channelText(channel).startsWith(prefix))) return;
      const renamed = args.map((arg, index) => (index < channels ? stripKey(prefix, arg) : arg));
      withTenant(tenant, () => listener(...renamed));
    };
  }
  return (...args: unknown[]) => {
    if (isolatedChannel(args[channels - 1], policy)) return;
    withTenant(tenant, () => listener(...args));
  };
}
