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
  /** More channel options; `interceptors` run after Dye's. */
  channelOptions?: ChannelOptions & { interceptors?: Interceptor[] };
}

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
    ...channelOptions,
    interceptors: [tenantClientInterceptor, ...interceptors],
  });
}
