export type { BaggageMember, ParsedBaggage } from './baggage.js';
export {
  isTenantBaggageKey,
  MAX_BAGGAGE_BYTES,
  MAX_BAGGAGE_MEMBERS,
  parseBaggage,
  percentDecode,
  serializeBaggage,
  TENANT_BAGGAGE_KEY,
} from './baggage.js';
export type { CanaryRule } from './canary.js';
export { CANARY_BUCKETS, canaryBucket } from './canary.js';
export type { CarrierValue, HeadersLike, TenantGetter, TenantSetter } from './carriers.js';
export { defaultAccessor, fetchHeaders, nodeHeaders, objectHeaders } from './carriers.js';
export type { TenantInput } from './codec.js';
export {
  BAGGAGE_HEADER,
  extractTenant,
  injectTenant,
  MAX_TENANT_HEADER_BYTES,
  readTenantInput,
  TENANT_HEADER,
} from './codec.js';
export { bindTenant, callInTenant, currentTenant, inTenantAlready, withTenant } from './context.js';
export type { EdgeDecision, EdgeGuard, EdgeGuardOptions, EdgeMode, EdgeRequest, EdgeSource } from './edge-guard.js';
export { createEdgeGuard } from './edge-guard.js';
export type { EnforcementMode } from './enforcement.js';
export { FirstUseCheck, warnGuardOnly } from './enforcement.js';
export { IsolationError, TenantConflictError } from './errors.js';
export type { DyeLogEvent, DyeLogger } from './log.js';
export { logWarning, setLogger } from './log.js';
export type { TenantLogFields } from './log-mixin.js';
export { tenantLogMixin } from './log-mixin.js';
export type { MessageTenant } from './message-tenant.js';
export { decideMessageTenant } from './message-tenant.js';
export type { FallbackRoute, RefusingResource } from './metrics.js';
export {
  ISOLATION_REFUSALS_METRIC,
  isolationRefusal,
  METRIC_ATTRIBUTES,
  ROUTING_FALLBACKS_METRIC,
  recordRoutingFallback,
  setMetricsApp,
} from './metrics.js';
export type { IsolatedResource } from './naming.js';
export { isolatedKeyPrefix, isolatedName, isolatedSuffix } from './naming.js';
export { annotateActiveSpan, TENANT_SPAN_ATTRIBUTE, withOtelBaggageFor } from './otel-bridge.js';
export type { IsolatedStore, PolicyOptions, RoutingFallback, TenantPolicy, TenantResolution, TenantRule } from './policy.js';
export { createPolicy, getDefaultPolicy, ISOLATED_STORES, setDefaultPolicy } from './policy.js';
export { TenantSpanProcessor } from './span-processor.js';
export type { StripReport } from './strip.js';
export { isTenantHeaderName, stripTenantInput, syncRawHeaders } from './strip.js';
export type { Tenant, TenantKind, TenantNameCheck } from './tenant.js';
export { BASELINE, BASELINE_NAME, checkTenantName, isBaseline, isIsolated, MAX_TENANT_NAME_LENGTH } from './tenant.js';
export type { SignTenantTokenOptions, TenantTokenVerification, TokenRejection, TokenSecret, VerifyTenantTokenOptions } from './token.js';
export {
  DEFAULT_MAX_TOKEN_TTL_SECONDS,
  MIN_SECRET_BYTES,
  parseDuration,
  signTenantToken,
  TENANT_TOKEN_HEADER,
  verifyTenantToken,
} from './token.js';
export type { TrustedProxies } from './trust.js';
export { compileAddressMatcher, compileTrustedProxies } from './trust.js';
