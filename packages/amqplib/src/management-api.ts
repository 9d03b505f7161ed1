/** Where RabbitMQ's management HTTP API listens (the rabbitmq_management plugin), and as whom to call it. */
export interface RabbitManagement {
  /** As `http://127.0.0.1:15672`. */
  url: string;
  user: string;
  password: string;
}

/** An exchange as the management API lists it. */
export interface ManagedExchange {
  name: string;
  type: string;
  durable: boolean;
  auto_delete: boolean;
  internal: boolean;
  arguments: Record<string, unknown>;
}

/** A queue as the management API lists it. */
export interface ManagedQueue {
  name: string;
  durable: boolean;
  auto_delete: boolean;
  exclusive?: boolean;
  arguments: Record<string, unknown>;
  /** What the policies matching it set (a `dead-letter-exchange`, say). */
  effective_policy_definition?: Record<string, unknown> | null;
}

/** A binding as the management API lists it (`source` '' is the default exchange's implicit one). */
export interface ManagedBinding {
  source: string;
  destination: string;
  destination_type: 'queue' | 'exchange';
  routing_key: string;
  arguments: Record<string, unknown>;
}

/**
 * A small client of the management HTTP API, on Node's fetch. Paths take
 * already-encoded segments (see `segment`); a 404 answers undefined.
 */
export class ManagementApi {
  readonly #base: string;
  readonly #authorization: string;

  constructor(management: RabbitManagement) {
    if (!management?.url) throw new TypeError('the RabbitMQ management API needs a url (http://host:15672)');
    this.#base = `${management.url.replace(/\/+$/, '')}/api`;
    this.#authorization = `Basic ${Buffer.from(`${management.user}:${management.password}`).toString('base64')}`;
  }

  async get<T>(path: string): Promise<T | undefined> {
    return (await this.#call('GET', path)) as T | undefined;
  }

  async put(path: string, body: unknown): Promise<void> {
    await this.#call('PUT', path, body);
  }

  async delete(path: string): Promise<void> {
    await this.#call('DELETE', path);
  }

  async #call(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await fetch(`${this.#base}${path}`, {
      method,
      headers: { authorization: this.#authorization, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (response.status === 404) return undefined;
    const text = await response.text();
    if (!response.ok) throw new Error(`RabbitMQ management API: ${method} ${path} answered ${response.status}: ${text.slice(0, 200)}`);
    return text.length > 0 ? JSON.parse(text) : undefined;
  }
}

/** One path segment: vhosts (`/`), users and names are percent-encoded. */
export function segment(value: string): string {
  return encodeURIComponent(value);
}
