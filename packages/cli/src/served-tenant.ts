import { TENANT_HEADER } from '@dye/core';
import { UsageError } from './usage-error.js';

/** How `dye load` learns the tenant a response was served in. */
export interface ServedTenantReader {
  /** `header x-tenant`, `JSON field tenant`, `not checked`: for messages. */
  readonly description: string;
  /** Whether responses are checked at all (`--served-tenant none` turns it off). */
  readonly checks: boolean;
  /** Whether the body must be read. */
  readonly needsBody: boolean;
  /** The served tenant, or undefined when the response does not say. */
  read(headers: Record<string, string | string[] | undefined>, body: string): string | undefined;
}

/**
 * What the edge's own `x-tenant` answer says against `tenant`: its value when
 * it names another tenant (two values: `several`), else undefined. Whatever
 * `--served-tenant` reads, an edge that answers `x-tenant: baseline` served
 * baseline.
 */
export function edgeContradicts(headers: Record<string, string | string[] | undefined>, tenant: string): string | undefined {
  const value = headers[TENANT_HEADER];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') return 'several';
  return value.trim() === tenant ? undefined : value.trim();
}

/**
 * Parses `--served-tenant`: `header:<name>` (default `header:x-tenant`, what
 * Dye's edge middleware answers), `json:<field>` (a field of a JSON body,
 * dotted for nested objects: `json:meta.tenant`), or `none` for an edge that
 * says nothing (the run is then not checked, and says so).
 */
export function parseServedTenant(spec: string): ServedTenantReader {
  const text = spec.trim();
  if (text === 'none') return { description: 'not checked', checks: false, needsBody: false, read: () => undefined };
  const colon = text.indexOf(':');
  const kind = colon === -1 ? '' : text.slice(0, colon);
  const where = colon === -1 ? '' : text.slice(colon + 1).trim();
  if (kind === 'header' && /^[!#$%&'*+.^_`|~0-9a-zA-Z-]+$/.test(where)) {
    const name = where.toLowerCase();
    return {
      description: `header ${name}`,
      checks: true,
      needsBody: false,
      read: (headers) => {
        const value = headers[name];
        // Two values (two proxies answering) say nothing certain.
        return typeof value === 'string' ? value.trim() : undefined;
      },
    };
  }
  if (kind === 'json' && /^[^.\s]+(\.[^.\s]+)*$/.test(where)) {
    const path = where.split('.');
    return {
      description: `JSON field ${where}`,
      checks: true,
      needsBody: true,
      read: (_headers, body) => {
        // A field named twice: JSON.parse keeps the last, another reader the
        // first. A body that names it more than once is not trusted.
        const named = body.split(`"${path.at(-1)}"`).length - 1;
        if (named > 1) return undefined;
        let value: unknown;
        try {
          value = JSON.parse(body);
        } catch {
          return undefined;
        }
        for (const key of path) {
          if (value === null || typeof value !== 'object' || !Object.hasOwn(value, key)) return undefined;
          value = (value as Record<string, unknown>)[key];
        }
        return typeof value === 'string' ? value : undefined;
      },
    };
  }
  throw new UsageError(
    `--served-tenant takes header:<name> (default header:${TENANT_HEADER}), json:<field> or none; got ${JSON.stringify(spec.slice(0, 60))}`,
  );
}
