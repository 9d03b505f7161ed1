/**
 * Deterministic subsetting (Google SRE book, "Load Balancing in the
 * Datacenter"): each client connects to `size` of the backends, and clients with
 * consecutive ids spread evenly over all backends.
 *
 * Clients are grouped in rounds; every client of a round uses the same shuffle
 * of the backends (seeded by the round number), and takes the next `size`
 * entries of that shuffle, wrapping around. A round is as many clients as it
 * takes to use the shuffle a whole number of times (n / gcd(n, size)), so the
 * book's algorithm is the case where `size` divides n, and for client ids
 * 0..k-1 every backend's client count is within ±1 of the mean for any n and
 * size. A subset never holds the same backend twice.
 */
export function subset<T>(backends: readonly T[], clientId: number, size: number, key: (backend: T) => string = String): T[] {
  if (!Number.isSafeInteger(clientId) || clientId < 0)
    throw new TypeError(`subset: clientId must be a non-negative integer, got ${clientId}`);
  if (!Number.isSafeInteger(size) || size < 1) throw new TypeError(`subset: size must be a positive integer, got ${size}`);
  const n = backends.length;
  if (size >= n) return [...backends];
  // Every client must shuffle the same list: order by a stable key first.
  const sorted = [...backends].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const clientsPerRound = n / gcd(n, size);
  const round = Math.floor(clientId / clientsPerRound);
  const shuffled = shuffle(sorted, round);
  const start = (clientId % clientsPerRound) * size;
  return Array.from({ length: size }, (_, i) => shuffled[(start + i) % n] as T);
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** Fisher-Yates with a seeded generator: the same round gives the same order everywhere. */
function shuffle<T>(items: T[], seed: number): T[] {
  const random = splitmix32(seed);
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

/** SplitMix32: a small, well-mixed 32-bit generator, enough to shuffle backends. */
function splitmix32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}
