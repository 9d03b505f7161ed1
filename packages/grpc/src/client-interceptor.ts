import { currentTenant, injectTenant } from '@dye/core';
import { InterceptingCall, type Interceptor } from '@grpc/grpc-js';
import { metadataCarrier } from './metadata-carrier.js';

/**
 * Adds `x-tenant` and the baggage member `tenant=` to every call's metadata,
 * from the tenant current when the call is made (and removes them in baseline).
 * The tenant-aware load balancer picks from this metadata.
 */
export const tenantClientInterceptor: Interceptor = (options, nextCall) => {
  // Read now: the interceptor runs synchronously in the caller's context, and
  // `start` may run later from the channel's.
  const tenant = currentTenant();
  return new InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      injectTenant(metadata, metadataCarrier, tenant);
      next(metadata, listener);
    },
  });
};
