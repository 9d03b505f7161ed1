import { type ChannelCredentials, type ChannelOptions, type Client, credentials, type Interceptor } from '@grpc/grpc-js';
import { tenantClientInterceptor } from './client-interceptor.js';
import { RESOLVER_SCHEME } from './tenant-routing.js';

type ClientConstructor<C extends Client> = new (
  address: string,
  credentials: ChannelCredentials,
  options?: ChannelOptions & { interceptors?: Interceptor[] },
) => C;

export interface TenantClientOptions {
  /** Default: insecure (plaintext), as inside a mesh that terminates TLS. */
  credentials?: ChannelCredentials;
  /**
   * More channel options; `interceptors` run after Dye's. `grpc.service_config`
   * (retry policy, timeouts, `waitForReady`) applies, Dye's balancer kept.
   * Keepalive defaults to {@link TENANT_CLIENT_KEEPALIVE}; any of it can be set here.
   */
  channelOptions?: ChannelOptions & { interceptors?: Interceptor[] };
}

/**
 * Keepalive of tenant clients: a ping every 10 s on each connection, also
 * without calls, answered within 5 s or the connection is dropped, so an
 * instance that hangs (a stopped process, a partition) leaves the pool within
 * 15 s instead of taking calls until its registry entry expires. grpc-js
 * servers accept these pings; servers enforcing a minimum ping interval
 * (grpc-go, C-core: 5 minutes by default) must allow 10 s and pings without
 * calls, or the client's options be raised.
 */
export const TENANT_CLIENT_KEEPALIVE: Readonly<ChannelOptions> = Object.freeze({
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
});

/**
 * A client for `app` that routes each call by its tenant: target `dye:///<app>`
 * (needs registerTenantRouting first) and the tenant metadata interceptor.
 *
 * ```ts
 * const inventory = createTenantClient(InventoryClient, 'shop.inventory');
 * ```
 */
export function createTenantClient<C extends Client>(Constructor: ClientConstructor<C>, app: string, options: TenantClientOptions = {}): C {
  const { interceptors = [], ...channelOptions } = options.channelOptions ?? {};
  return new Constructor(`${RESOLVER_SCHEME}:///${app}`, options.credentials ?? credentials.createInsecure(), {
    ...TENANT_CLIENT_KEEPALIVE,
    ...channelOptions,
    interceptors: [tenantClientInterceptor, ...interceptors],
  });
}
