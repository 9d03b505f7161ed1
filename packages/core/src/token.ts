import { createHmac, timingSafeEqual } from 'node:crypto';
import { BASELINE_NAME, checkTenantName } from './tenant.js';

/**
 * Signed tenant tokens let a tester color one request at the public edge with
 * one header, without the edge trusting the tenant header itself:
 *
 *   x-tenant-token: dye1.<payload>.<signature>
 *
 * `payload` is base64url JSON `{ t: tenant, iat, exp, sub? }` (seconds since
 * the epoch); `signature` is base64url HMAC-SHA256 over `dye1.<payload>`. The
 * version prefix lets a later format live next to this one during a rollout.
 */
export const TENANT_TOKEN_HEADER = 'x-tenant-token';

const VERSION = 'dye1';
/** HMAC-SHA256 keys shorter than its output add no strength and invite guessable secrets. */
export const MIN_SECRET_BYTES = 32;
/** Default longest lifetime of a token: a working day of testing. */
export const DEFAULT_MAX_TOKEN_TTL_SECONDS = 24 * 60 * 60;
/** Tokens longer than this are not parsed at all. */
const MAX_TOKEN_LENGTH = 1024;
const MAX_SUBJECT_LENGTH = 128;
/** Clock difference tolerated between the signer and the edge. */
const DEFAULT_CLOCK_TOLERANCE_SECONDS = 30;

export type TokenSecret = string | Uint8Array;

export interface SignTenantTokenOptions {
  /** The tenant the token colors requests with (not baseline). */
  tenant: string;
  /** Lifetime: seconds, or `90s`, `15m`, `2h`, `1d`. */
  ttl: number | string;
  /** Who the token was issued to, for logs (`alice`, `loadtest-42`). */
  subject?: string;
  /** Refuse a longer `ttl`. Default 24 hours. */
  maxTtl?: number | string;
  /** Issue time; default now. For tests. */
  now?: Date;
}

export interface VerifyTenantTokenOptions {
  /** Tokens whose lifetime (exp − iat) exceeds this are invalid. Default 24 hours. */
  maxTtl?: number | string;
  /** Verification time; default now. For tests. */
  now?: Date;
  /** Tolerated clock difference, seconds. Default 30. */
  clockTolerance?: number;
}

export type TokenRejection = 'malformed' | 'unsupported-version' | 'bad-signature' | 'expired' | 'not-yet-valid' | 'ttl-too-long';

export type TenantTokenVerification =
  | { readonly ok: true; readonly tenant: string; readonly subject?: string; readonly issuedAt: Date; readonly expiresAt: Date }
  | { readonly ok: false; readonly reason: TokenRejection; readonly message: string };

const DURATION = /^(\d{1,7})\s*(s|m|h|d)?$/;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `90` / `'90s'` / `'15m'` / `'2h'` / `'1d'` → seconds. Throws a TypeError otherwise. */
export function parseDuration(value: number | string): number {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value <= 0) throw new TypeError(`duration must be a positive whole number of seconds, got ${value}`);
    return value;
  }
  const match = DURATION.exec(String(value).trim());
  if (!match) throw new TypeError(`duration ${JSON.stringify(value)} is not a number of seconds or <n>s|m|h|d`);
  const seconds = Number(match[1]) * (UNIT_SECONDS[match[2] ?? 's'] as number);
  if (seconds <= 0) throw new TypeError(`duration ${JSON.stringify(value)} must be positive`);
  return seconds;
}

/** Throws a TypeError for secrets too short to sign with; returns them as Buffers. */
export function checkSecrets(secrets: TokenSecret | readonly TokenSecret[]): Buffer[] {
  const list = Array.isArray(secrets) ? secrets : [secrets as TokenSecret];
  if (list.length === 0) throw new TypeError('at least one token secret is required');
  return list.map((secret, index) => {
    if (typeof secret !== 'string' && !(secret instanceof Uint8Array)) {
      throw new TypeError(`token secret #${index + 1} must be a string or bytes, got ${secret === null ? 'null' : typeof secret}`);
    }
    const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
    if (bytes.length < MIN_SECRET_BYTES) {
      throw new TypeError(`token secret #${index + 1} has ${bytes.length} bytes; at least ${MIN_SECRET_BYTES} are required`);
    }
    return bytes;
  });
}

function signature(secret: Buffer, signed: string): Buffer {
  return createHmac('sha256', secret).update(signed).digest();
}

/**
 * Signs a token for `tenant`, valid for `ttl`. With several secrets (rotation),
 * pass the newest: verification accepts any of the configured ones.
 */
export function signTenantToken(options: SignTenantTokenOptions, secret: TokenSecret): string {
  const [key] = checkSecrets(secret);
  const checked = checkTenantName(String(options.tenant ?? ''));
  if (!checked.ok) throw new TypeError(`signTenantToken: ${checked.reason}`);
  if (checked.name === BASELINE_NAME) throw new TypeError('signTenantToken: a token for baseline is pointless; send no token');
  const ttl = parseDuration(options.ttl);
  const maxTtl = parseDuration(options.maxTtl ?? DEFAULT_MAX_TOKEN_TTL_SECONDS);
  if (ttl > maxTtl) throw new RangeError(`signTenantToken: ttl of ${ttl}s exceeds the maximum of ${maxTtl}s`);
  if (options.subject !== undefined && !/^[\x21-\x7e]{1,128}$/.test(options.subject)) {
    throw new TypeError(`signTenantToken: subject must be 1-${MAX_SUBJECT_LENGTH} printable ASCII characters without spaces`);
  }
  const iat = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const payload = { t: checked.name, iat, exp: iat + ttl, ...(options.subject !== undefined ? { sub: options.subject } : {}) };
  const body = `${VERSION}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  return `${body}.${signature(key as Buffer, body).toString('base64url')}`;
}

function reject(reason: TokenRejection, message: string): TenantTokenVerification {
  return { ok: false, reason, message };
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Verifies a token against every configured secret (rotation: old and new
 * secrets verify side by side) in constant time per secret. Never throws for a
 * bad token: the result says why it was refused. Whether its tenant is allowed
 * at this edge is the edge guard's call.
 */
export function verifyTenantToken(
  token: string,
  secrets: TokenSecret | readonly TokenSecret[],
  options: VerifyTenantTokenOptions = {},
): TenantTokenVerification {
  return verifyWithKeys(token, checkSecrets(secrets), options);
}

/** @internal verifyTenantToken with secrets already checked (the edge guard checks them once). */
export function verifyWithKeys(token: string, keys: readonly Buffer[], options: VerifyTenantTokenOptions): TenantTokenVerification {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
    return reject('malformed', 'token is empty or too long');
  }
  const parts = token.trim().split('.');
  if (parts.length !== 3) return reject('malformed', 'token does not have three dot-separated parts');
  const [version, payloadPart, signaturePart] = parts as [string, string, string];
  if (version !== VERSION) {
    return /^dye\d+$/.test(version)
      ? reject('unsupported-version', `token version ${version} is not supported`)
      : reject('malformed', 'not a Dye token');
  }
  if (!BASE64URL.test(payloadPart) || !BASE64URL.test(signaturePart)) return reject('malformed', 'token parts are not base64url');

  const presented = Buffer.from(signaturePart, 'base64url');
  const signed = `${version}.${payloadPart}`;
  let valid = false;
  for (const key of keys) {
    const expected = signature(key, signed);
    // timingSafeEqual needs equal lengths; a wrong length is a wrong signature either way.
    if (presented.length === expected.length && timingSafeEqual(presented, expected)) valid = true;
  }
  if (!valid) return reject('bad-signature', 'signature does not match any configured secret');

  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8'));
  } catch {
    return reject('malformed', 'payload is not JSON');
  }
  if (typeof payload !== 'object' || payload === null) return reject('malformed', 'payload is not an object');
  const { t, iat, exp, sub } = payload as Record<string, unknown>;
  if (typeof t !== 'string' || !Number.isSafeInteger(iat) || !Number.isSafeInteger(exp)) {
    return reject('malformed', 'payload lacks tenant, iat or exp');
  }
  const checked = checkTenantName(t);
  if (!checked.ok || checked.name !== t || t === BASELINE_NAME) return reject('malformed', 'payload names no valid tenant');
  if (sub !== undefined && (typeof sub !== 'string' || sub.length > MAX_SUBJECT_LENGTH))
    return reject('malformed', 'payload subject is invalid');

  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const tolerance = options.clockTolerance ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  const maxTtl = parseDuration(options.maxTtl ?? DEFAULT_MAX_TOKEN_TTL_SECONDS);
  const issuedAt = iat as number;
  const expiresAt = exp as number;
  if (expiresAt <= issuedAt) return reject('malformed', 'token expires before it is issued');
  if (expiresAt - issuedAt > maxTtl) {
    return reject('ttl-too-long', `token lifetime of ${expiresAt - issuedAt}s exceeds the maximum of ${maxTtl}s`);
  }
  if (issuedAt > now + tolerance) return reject('not-yet-valid', 'token is issued in the future');
  if (expiresAt + tolerance <= now) return reject('expired', `token expired ${now - expiresAt}s ago`);
  return {
    ok: true,
    tenant: t,
    ...(sub !== undefined ? { subject: sub as string } : {}),
    issuedAt: new Date(issuedAt * 1000),
    expiresAt: new Date(expiresAt * 1000),
  };
}
