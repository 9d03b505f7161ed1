import { TENANT_HEADER } from '@dye/core';
import { request } from 'undici';
import { edgeContradicts, type ServedTenantReader } from './served-tenant.js';

export interface PreflightOptions {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
  timeoutSeconds: number;
  servedTenant: ServedTenantReader;
  tenant: string;
}

/** What the one request sent before the load found. */
export interface PreflightResult {
  ok: boolean;
  /** Whether the target answered at all. */
  answered: boolean;
  status?: number;
  /** The tenant the answer was served in, as `--served-tenant` reads it. */
  served?: string;
  message: string;
}

/**
 * Sends one request, alone, and says whether it was served in `tenant`. A load
 * whose token the edge does not accept (another secret, an expired clock, a
 * token header the edge does not read) comes back in another tenant here,
 * before any of the load is sent.
 */
export async function checkPreflight(options: PreflightOptions): Promise<PreflightResult> {
  const timeoutMs = options.timeoutSeconds * 1000;
  let status: number;
  let headers: Record<string, string | string[] | undefined>;
  let text = '';
  try {
    const response = await request(options.url, {
      method: options.method as 'GET',
      headers: options.headers,
      ...(options.body === undefined ? {} : { body: options.body }),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    status = response.statusCode;
    if (options.servedTenant.needsBody) text = await response.body.text();
    else await response.body.dump();
    // Trailers (there once the body is read) can answer x-tenant too: they count as headers do.
    headers = { ...response.trailers, ...response.headers };
    const [inHead, inTrailer] = [response.headers[TENANT_HEADER], response.trailers?.[TENANT_HEADER]];
    if (inHead !== undefined && inTrailer !== undefined && String(inHead) !== String(inTrailer))
      headers[TENANT_HEADER] = [String(inHead), String(inTrailer)];
  } catch (error) {
    return { ok: false, answered: false, message: `${options.url} answered no request: ${(error as Error).message}` };
  }
  const contradicted = edgeContradicts(headers, options.tenant);
  if (!options.servedTenant.checks && contradicted === undefined) return { ok: true, answered: true, status, message: 'not checked' };
  const served = contradicted ?? options.servedTenant.read(headers, text);
  if (served === options.tenant) return { ok: true, answered: true, status, served, message: `served in ${served}` };
  const said = served === undefined ? `did not say a tenant (${options.servedTenant.description})` : `was served in ${served}`;
  return {
    ok: false,
    answered: true,
    status,
    ...(served === undefined ? {} : { served }),
    message: `the preflight ${options.method} ${options.url} ${said} with status ${status}, not in ${options.tenant}; no load was sent. Check that DYE_SECRET is one of the edge's secrets, that the edge runs Dye's middleware in edge mode (answering x-tenant), or say where it reports the tenant with --served-tenant`,
  };
}
