import { type CanaryRule, type CompiledCanaryRule, compileCanaryRule } from './canary.js';
import { type CarrierValue, objectHeaders } from './carriers.js';
import { BAGGAGE_HEADER, injectTenant, readTenantInput, TENANT_HEADER } from './codec.js';
import { logWarning } from './log.js';
import { distrustOtelBaggage, guardOtelExtraction } from './otel-bridge.js';
import { getDefaultPolicy, type TenantPolicy } from './policy.js';
import { stripTenantInput, syncRawHeaders } from './strip.js';
import { BASELINE, type Tenant } from './tenant.js';
import {
  checkSecrets,
  DEFAULT_MAX_TOKEN_TTL_SECONDS,
  parseDuration,
  TENANT_TOKEN_HEADER,
  type TokenSecret,
  verifyWithKeys,
} from './token.js';
import { compileTrustedProxies } from './trust.js';

export type EdgeMode = 'edge' | 'internal';

export interface EdgeGuardOptions<Req = unknown> {
  /**
   * `edge`: a public entry point (gateway, BFF); tenant input from untrusted
   * peers is stripped and only a valid token or a canary rule chooses a tenant.
   * `internal`: behind the edge; the tenant header is trusted as it is.
   */
  mode: EdgeMode;
  /** Peers (CIDRs) whose tenant header an edge honours. Default: none, not even private ranges. */
  trustedProxies?: readonly string[];
  /** Secrets that verify `x-tenant-token`; the first is the one to sign with. Without secrets, tokens are ignored. */
  secrets?: readonly TokenSecret[];
  tokens?: {
    /** Tenants a token may choose at this edge. Default: any valid tenant. */
    allow?: readonly string[];
    /** Longest token lifetime accepted: seconds or `2h`. Default 24 hours. */
    maxTtl?: number | string;
    /** Header carrying the token. Default `x-tenant-token`. */
    header?: string;
  };
  /** An invalid or expired token: fall back to baseline with a log line (default), or answer 401. */
  onInvalidToken?: 'baseline' | 'reject';
  /** Canary rules, tried in order after tokens; the first that matches chooses the tenant. */
  rules?: readonly CanaryRule<Req>[];
  /**
   * Policy resolving names. Default: the default policy as it is when each
   * request is decided, so a later `setDefaultPolicy` holds at the edge too.
   */
  policy?: TenantPolicy;
}

/** What the edge knows of one inbound request; headers are cleaned in place. */
export interface EdgeRequest<Req = unknown> {
  /** The socket peer address (`req.socket.remoteAddress`). */
  remoteAddress: string | undefined;
  /**
   * Parsed headers (Node's `req.headers`, or any object keeping the sender's
   * case, as API-gateway events do); values a string, string[] or Buffer.
   * Cleaned in place.
   */
  headers: Record<string, unknown>;
  /** Node's `req.rawHeaders`, kept in step with `headers` when given. */
  rawHeaders?: string[];
  /** The framework's request, handed to canary rule keys. */
  request?: Req;
}

export type EdgeSource = 'header' | 'token' | 'rule' | 'none';

export type EdgeDecision =
  | {
      readonly ok: true;
      readonly tenant: Tenant;
      /** What chose the tenant. */
      readonly source: EdgeSource;
      /** Whether the peer was trusted (always true in internal mode). */
      readonly trusted: boolean;
      /** The token's subject, when a token chose the tenant. */
      readonly subject?: string;
    }
  | {
      readonly ok: false;
      /** 400 for conflicting tenants, 401 for a refused token. */
      readonly status: 400 | 401;
      readonly code: 'DYE_TENANT_CONFLICT' | 'DYE_INVALID_TOKEN';
      readonly message: string;
    };

export interface EdgeGuard<Req = unknown> {
  readonly mode: EdgeMode;
  /** Decides the tenant of a request, cleaning its headers in place (edge mode). Never throws on request input. */
  decide(input: EdgeRequest<Req>): EdgeDecision;
}

/**
 * The framework-agnostic core of tenant admission. In edge mode, in this order:
 *
 * 1. a trusted peer (inside `trustedProxies`, every forwarded hop too): its
 *    `x-tenant`/baggage is honoured;
 * 2. otherwise every form of tenant input is stripped, then a valid
 *    `x-tenant-token` for an allowed tenant chooses the tenant;
 * 3. otherwise the first matching canary rule;
 * 4. otherwise baseline.
 *
 * Afterwards the request's headers say the decided tenant (and nothing else), so
 * code reading `req.headers` sees what Dye decided. Conflicting tenant input is
 * refused (400), never guessed.
 */
export function createEdgeGuard<Req = unknown>(options: EdgeGuardOptions<Req>): EdgeGuard<Req> {
  const mode = options.mode;
  if (mode !== 'edge' && mode !== 'internal')
    throw new TypeError(`edge guard: mode must be 'edge' or 'internal', got ${JSON.stringify(mode)}`);
  // Read per decision: a policy installed after the guard was built holds here
  // as it does everywhere else in the process.
  const policyNow = (): TenantPolicy => options.policy ?? getDefaultPolicy();
  const trusted = compileTrustedProxies(options.trustedProxies ?? []);
  const keys = options.secrets && options.secrets.length > 0 ? checkSecrets(options.secrets) : undefined;
  const tokenHeader = (options.tokens?.header ?? TENANT_TOKEN_HEADER).toLowerCase();
  const maxTtl = parseDuration(options.tokens?.maxTtl ?? DEFAULT_MAX_TOKEN_TTL_SECONDS);
  const allowNames = options.tokens?.allow;
  let allowFor: { policy: TenantPolicy; names: ReadonlySet<string> } | undefined;
  const allowed = (policy: TenantPolicy): ReadonlySet<string> | undefined => {
    if (allowNames === undefined) return undefined;
    if (allowFor?.policy !== policy) allowFor = { policy, names: new Set(allowNames.map((name) => policy.tenant(name).name)) };
    return allowFor.names;
  };
  allowed(policyNow());
  const onInvalidToken = options.onInvalidToken ?? 'baseline';
  if (onInvalidToken !== 'baseline' && onInvalidToken !== 'reject')
    throw new TypeError("edge guard: onInvalidToken must be 'baseline' or 'reject'");
  const rules: CompiledCanaryRule<Req>[] = (options.rules ?? []).map((rule) => {
    const compiled = compileCanaryRule(rule);
    if (policyNow().tenant(compiled.tenant).kind === 'isolated') {
      throw new TypeError(`canary rule: "${compiled.tenant}" is isolated by the policy; real users' writes would land in shadow resources`);
    }
    return compiled;
  });
  if (mode === 'edge') {
    // At an edge, OTel baggage is client input like any header: OTel's HTTP
    // instrumentation extracts it before any middleware runs.
    distrustOtelBaggage();
  }

  function fromHeaders(input: EdgeRequest<Req>, isTrusted: boolean, policy: TenantPolicy): EdgeDecision {
    const read = readTenantInput(input.headers, objectHeaders);
    switch (read.kind) {
      case 'none':
        return { ok: true, tenant: BASELINE, source: 'none', trusted: isTrusted };
      case 'conflict':
        return {
          ok: false,
          status: 400,
          code: 'DYE_TENANT_CONFLICT',
          message: `conflicting tenants in one request: ${read.names.join(' vs ')}`,
        };
      case 'malformed':
        logWarning('dye.codec.malformed', `ignored malformed tenant input, using baseline: ${read.reason}`);
        return { ok: true, tenant: BASELINE, source: 'none', trusted: isTrusted };
      case 'named': {
        const resolved = policy.resolve(read.name);
        if (!resolved.ok) return { ok: true, tenant: BASELINE, source: 'none', trusted: isTrusted };
        return { ok: true, tenant: resolved.tenant, source: resolved.tenant === BASELINE ? 'none' : 'header', trusted: isTrusted };
      }
    }
  }

  function fromToken(input: EdgeRequest<Req>, policy: TenantPolicy): EdgeDecision | undefined {
    const raw = objectHeaders.get(input.headers, tokenHeader);
    removeHeader(input, tokenHeader);
    if (raw === undefined || keys === undefined) return undefined;
    const token = headerText(raw, 'one');
    const refuse = (message: string): EdgeDecision | undefined => {
      logWarning('dye.edge.invalid-token', `refused tenant token: ${message}`);
      if (onInvalidToken === 'reject')
        return { ok: false, status: 401, code: 'DYE_INVALID_TOKEN', message: `invalid tenant token: ${message}` };
      return undefined;
    };
    if (token === undefined) return refuse('more than one token header');
    const verified = verifyWithKeys(token, keys, { maxTtl });
    if (!verified.ok) return refuse(`${verified.reason}: ${verified.message}`);
    const resolved = policy.resolve(verified.tenant);
    if (!resolved.ok || resolved.tenant === BASELINE) return refuse(`tenant "${verified.tenant}" is not known to the policy`);
    const allow = allowed(policy);
    if (allow && !allow.has(resolved.tenant.name)) return refuse(`tenant "${resolved.tenant.name}" is not allowed for tokens at this edge`);
    return {
      ok: true,
      tenant: resolved.tenant,
      source: 'token',
      trusted: false,
      ...(verified.subject !== undefined ? { subject: verified.subject } : {}),
    };
  }

  function fromRules(input: EdgeRequest<Req>, policy: TenantPolicy): EdgeDecision | undefined {
    for (const rule of rules) {
      let matched = false;
      try {
        matched = rule.matches(input.request as Req);
      } catch (error) {
        logWarning('dye.edge.rule-failed', `canary rule for "${rule.tenant}" threw; skipped: ${(error as Error).message}`);
      }
      if (!matched) continue;
      const tenant = policy.tenant(rule.tenant);
      if (tenant.kind === 'isolated') {
        // The policy changed after the rule was accepted: real users must not
        // land in shadow resources. Loud, and the rule no longer chooses.
        logWarning(
          'dye.edge.rule-isolated',
          `canary rule for "${rule.tenant}" skipped: the policy now isolates that tenant; real users' writes would land in shadow resources`,
        );
        continue;
      }
      return { ok: true, tenant, source: 'rule', trusted: false };
    }
    return undefined;
  }

  function settle(input: EdgeRequest<Req>, decision: EdgeDecision): EdgeDecision {
    if (!decision.ok) return decision;
    // A trusted proxy's other tenant carriers (uberctx-tenant, x_tenant…) are
    // not what Dye decided from; a downstream propagator must not read them.
    if (decision.trusted) stripTenantInput(input.headers, input.rawHeaders);
    // Downstream code reading req.headers sees the decision and nothing else.
    injectTenant(input.headers, objectHeaders, decision.tenant);
    if (input.rawHeaders) syncRawHeaders(input.rawHeaders, input.headers, [TENANT_HEADER, BAGGAGE_HEADER]);
    return decision;
  }

  return {
    mode,
    decide(input) {
      const policy = policyNow();
      if (mode === 'internal') return fromHeaders(input, true, policy);
      guardOtelExtraction();
      const forwardedRaw = objectHeaders.get(input.headers, 'x-forwarded-for');
      const forwardedFor = headerText(forwardedRaw, 'joined');
      // A forwarded-for that is not text cannot be checked hop by hop: untrusted.
      const checkable = forwardedRaw === undefined || forwardedFor !== undefined;
      if (checkable && trusted.isTrusted(input.remoteAddress, forwardedFor)) {
        removeHeader(input, tokenHeader);
        return settle(input, fromHeaders(input, true, policy));
      }
      const stripped = stripTenantInput(input.headers, input.rawHeaders);
      if (stripped.headers + stripped.baggageMembers + stripped.baggageDropped > 0) {
        logWarning('dye.edge.stripped', 'stripped tenant input from an untrusted peer', {
          peer: input.remoteAddress,
          headers: stripped.headers,
          baggageMembers: stripped.baggageMembers,
          baggageDropped: stripped.baggageDropped,
        });
      }
      const decision = fromToken(input, policy) ??
        fromRules(input, policy) ?? { ok: true, tenant: BASELINE, source: 'none', trusted: false };
      return settle(input, decision);
    },
  };
}

/**
 * A header's text from any value Node or a gateway gives (string, Buffer, or a
 * list of them): `joined` reads repeated values as one comma-separated list
 * (X-Forwarded-For), `one` accepts exactly one value. Undefined when absent or
 * not text.
 */
function headerText(value: CarrierValue, how: 'joined' | 'one'): string | undefined {
  if (value === undefined) return undefined;
  const list = typeof value === 'string' || value instanceof Uint8Array ? [value] : value;
  if (how === 'one' && list.length !== 1) return undefined;
  const texts: string[] = [];
  for (const item of list) {
    if (typeof item === 'string') texts.push(item);
    else if (item instanceof Uint8Array) texts.push(Buffer.from(item.buffer, item.byteOffset, item.byteLength).toString('latin1'));
    else return undefined;
  }
  return texts.join(', ');
}

function removeHeader(input: EdgeRequest<unknown>, lowerName: string): void {
  objectHeaders.remove(input.headers, lowerName);
  if (input.rawHeaders) syncRawHeaders(input.rawHeaders, input.headers, [lowerName]);
}
