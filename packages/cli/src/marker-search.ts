/**
 * What `dye verify` reports: where a run's marker was found, and what was
 * searched (so "not found" can be read for what it covers).
 */
export interface MarkerFinding {
  store: 'mysql' | 'redis' | 'kafka' | 'amqp';
  /** `shop.orders.note`, `order:42` (value), `orders[0]`, `orders.created` (a RabbitMQ queue). */
  place: string;
  /** How many rows, keys or messages hold the marker there. */
  count: number;
  /** In the run's tenant's own resources (`shop_shadow`, `shadow:…`, `orders_shadow`): expected, not a leak. */
  isolated: boolean;
}

export interface SearchedPlace {
  store: 'mysql' | 'redis' | 'kafka' | 'amqp';
  /** `shop.orders`, `db 0`, `orders`. */
  place: string;
  /** Rows, keys or messages read. */
  scanned: number;
  /** Whether the bound stopped the search before the end (the newest rows, the first keys). */
  truncated: boolean;
  isolated: boolean;
  /** Why the place, or part of it, could not be read (a lock, a privilege, a codec): the search there proves nothing. */
  unread?: string;
}

export interface MarkerSearch {
  findings: MarkerFinding[];
  searched: SearchedPlace[];
  /** What lies beside the search and was not asked for (another Redis database holding keys). */
  notes?: string[];
}

/**
 * A LIKE pattern matching `text` anywhere, its wildcards escaped with `!`
 * (`LIKE ? ESCAPE '!'`: no backslash, whose meaning in a string literal
 * depends on the server's SQL mode).
 */
export function likeAnywhere(text: string): string {
  return `%${text.replace(/[!%_]/g, (char) => `!${char}`)}%`;
}

/** Production places a search did not read in full: cut by a bound, or unread. A verdict of clean needs none. */
export function incompletePlaces(searched: readonly SearchedPlace[]): SearchedPlace[] {
  return searched.filter((place) => !place.isolated && (place.truncated || place.unread !== undefined));
}
