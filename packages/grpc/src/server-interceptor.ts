import { BASELINE, extractTenant, getDefaultPolicy, type Tenant, TenantConflictError, withTenant } from '@dye/core';
import { ServerInterceptingCall, type ServerInterceptor, status } from '@grpc/grpc-js';
import { metadataCarrier } from './metadata-carrier.js';

/**
 * Runs every handler (unary, client-, server- and bidi-streaming) inside the
 * tenant named by the call's metadata. Behind the edge, metadata is trusted as
 * it is. Two different tenants in one call end it with INVALID_ARGUMENT before
 * the handler runs.
 *
 * grpc-js invokes handlers and stream events from the listener callbacks
 * wrapped here, so entering the tenant around each of them puts the whole
 * handler in it.
 */
export const tenantServerInterceptor: ServerInterceptor = (_method, call) => {
  let tenant: Tenant = BASELINE;
  return new ServerInterceptingCall(call, {
    start(next) {
      next({
        onReceiveMetadata(metadata, nextMetadata) {
          try {
            tenant = extractTenant(metadata, metadataCarrier, getDefaultPolicy());
          } catch (error) {
            if (!(error instanceof TenantConflictError)) throw error;
            call.sendStatus({ code: status.INVALID_ARGUMENT, details: error.message });
            return;
          }
          withTenant(tenant, () => nextMetadata(metadata));
        },
        onReceiveMessage(message, nextMessage) {
          withTenant(tenant, () => nextMessage(message));
        },
        onReceiveHalfClose(nextHalfClose) {
          withTenant(tenant, () => nextHalfClose());
        },
      });
    },
  });
};
