export type { TenantDispatcherOptions } from './dispatcher.js';
export { tenantDispatcher, tenantInterceptor } from './dispatcher.js';
export type { EgressOptions, EgressPolicy, EgressRoute } from './egress.js';
export { createEgressPolicy, DEFAULT_INTERNAL_HOSTS } from './egress.js';
export { fastifyTenant } from './fastify.js';
export type { InjectTenantHeadersOptions } from './headers.js';
export { injectTenantHeaders } from './headers.js';
export type { TenantMiddlewareOptions } from './middleware.js';
export { refuse, tenantMiddleware } from './middleware.js';
