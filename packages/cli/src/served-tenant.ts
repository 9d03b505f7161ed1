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
        // A key named twice: JSON.parse keeps the last, another reader the
        // first. Such a body is not trusted.
        if (hasDuplicateKey(body)) return undefined;
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

// A JSON string token at a position (sticky): escapes included.
const JSON_STRING = /"(?:[^"\\]|\\.)*"/y;
// What makes a string token a key: a colon after it.
const KEY_END = /\s*:/y;

/**
 * Whether any object in a JSON text names a key twice, however the names are
 * spelled (`"t\u0065nant"` is `"tenant"`). Readers disagree on which value
 * such a body means, so it says nothing certain.
 */
function hasDuplicateKey(text: string): boolean {
  // Per open object its keys; null for an open array.
  const open: Array<Set<string> | null> = [];
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '{') open.push(new Set());
    else if (char === '[') open.push(null);
    else if (char === '}' || char === ']') open.pop();
    else if (char === '"') {
      JSON_STRING.lastIndex = i;
      const token = JSON_STRING.exec(text)?.[0];
      if (token === undefined) return false;
      i += token.length - 1;
      KEY_END.lastIndex = i + 1;
      const keys = open.at(-1);
      if (!keys || !KEY_END.test(text)) continue;
      let key: string;
      try {
        key = token.includes('\\') ? (JSON.parse(token) as string) : token.slice(1, -1);
      } catch {
        return false;
      }
      if (keys.has(key)) return true;
      keys.add(key);
    }
  }
  return false;
}
