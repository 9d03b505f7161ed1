import { getDefaultPolicy, type Tenant, type TenantPolicy } from '@dye/core';

export const BASELINE_LANE = 'baseline';

/** Which lane serves a tenant's call, given which lanes can take one now. */
export type LaneChoice =
  | {
      readonly ok: true;
      readonly lane: string /** true when the tenant's own lane had nothing and baseline serves it */;
      readonly fellBack: boolean;
    }
  | { readonly ok: false; readonly message: string };

/**
 * The tenant pool rule, shared by every router (gRPC picker, HTTP dispatcher):
 * the tenant's own lane when it has an instance that can serve; otherwise, by
 * the policy's fallback, the baseline lane (`'baseline'`, a weak tag) or a
 * refusal naming app and tenant (`'reject'`, a strict tag). Isolated tenants use
 * their own lane, else baseline instances: their data isolation lives in the
 * data adapters, not in routing.
 */
export function chooseLane(
  app: string,
  tenant: Tenant,
  canServe: (lane: string) => boolean,
  policy: TenantPolicy = getDefaultPolicy(),
): LaneChoice {
  const lane = tenant.kind === 'baseline' ? BASELINE_LANE : tenant.name;
  if (canServe(lane)) return { ok: true, lane, fellBack: false };
  if (lane === BASELINE_LANE) return { ok: false, message: `no baseline instance of ${app} is available` };
  if (policy.fallback(tenant) === 'reject') {
    return { ok: false, message: `no instance of ${app} serves tenant "${tenant.name}", and its policy forbids falling back to baseline` };
  }
  if (canServe(BASELINE_LANE)) return { ok: true, lane: BASELINE_LANE, fellBack: true };
  return { ok: false, message: `no instance of ${app} for tenant "${tenant.name}" nor for baseline is available` };
}

/** Groups instances (or anything with a lane) by lane. */
export function groupByLane<T extends { readonly lane: string }>(items: Iterable<T>): Map<string, T[]> {
  const lanes = new Map<string, T[]>();
  for (const item of items) {
    const list = lanes.get(item.lane);
    if (list) list.push(item);
    else lanes.set(item.lane, [item]);
  }
  return lanes;
}
