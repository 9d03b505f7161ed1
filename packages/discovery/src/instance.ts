import { BASELINE_NAME, checkTenantName } from '@dye/core';

/** One running instance of an app, labelled with the lane (tenant) it serves. */
export interface Instance {
  /** The app, dotted lowercase: `shop.inventory`. */
  readonly app: string;
  /** Unique within the app: a pod name, `host:port`, a UUID. */
  readonly id: string;
  /** Where it listens: `host:port` (`10.0.3.7:50051`, `[::1]:50051`). */
  readonly address: string;
  /** The tenant it serves (`red`, `shadow`), or `baseline` for production. */
  readonly lane: string;
  readonly cluster?: string;
  readonly zone?: string;
  /** Relative share of traffic within its lane; default 1. */
  readonly weight?: number;
  readonly metadata?: Readonly<Record<string, string>>;
}

const APP_NAME = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;
const ADDRESS = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

/** Checks an app name (`shop.inventory`); throws a TypeError otherwise. */
export function checkAppName(app: string): string {
  if (typeof app !== 'string' || app.length === 0 || app.length > 128 || !APP_NAME.test(app)) {
    throw new TypeError(`app name ${JSON.stringify(app)} must be dotted lowercase words of [a-z0-9-], like shop.inventory`);
  }
  return app;
}

/** Validates and normalizes an instance (lane case-folded, `baseline` when missing); throws a TypeError. */
export function normalizeInstance(instance: Instance): Instance {
  checkAppName(instance.app);
  if (typeof instance.id !== 'string' || instance.id.length === 0 || instance.id.length > 256) {
    throw new TypeError(`instance of ${instance.app}: id must be a non-empty string`);
  }
  if (typeof instance.address !== 'string' || !ADDRESS.test(instance.address)) {
    throw new TypeError(`instance ${instance.id} of ${instance.app}: address ${JSON.stringify(instance.address)} is not host:port`);
  }
  const lane = checkTenantName(instance.lane ?? BASELINE_NAME);
  if (!lane.ok) throw new TypeError(`instance ${instance.id} of ${instance.app}: lane ${lane.reason}`);
  if (instance.weight !== undefined && !(Number.isFinite(instance.weight) && instance.weight > 0)) {
    throw new TypeError(`instance ${instance.id} of ${instance.app}: weight must be a positive number`);
  }
  return { ...instance, lane: lane.name };
}
