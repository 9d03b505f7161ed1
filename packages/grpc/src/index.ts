export type { TenantClientOptions } from './client.js';
export { createTenantClient, TENANT_CLIENT_KEEPALIVE } from './client.js';
export { tenantClientInterceptor } from './client-interceptor.js';
export type { GracefulShutdownOptions } from './health.js';
export { addHealthService, gracefulShutdown } from './health.js';
export { metadataCarrier } from './metadata-carrier.js';
export { tenantServerInterceptor } from './server-interceptor.js';
export type { PickTarget, TenantRoutingOptions } from './tenant-routing.js';
export { LOAD_BALANCER_NAME, RESOLVER_SCHEME, registerTenantRouting, TenantPicker } from './tenant-routing.js';
