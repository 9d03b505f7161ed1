/** What a rotation turns over: one instance (or a connection to it) of a lane. */
export interface RotationTarget {
  /** Stable across registry changes and rebuilt pools: the instance id, or its address. */
  readonly key: string;
  /** Relative share of the lane's picks; default 1. */
  readonly weight?: number;
}

interface LaneState {
  /** Equal weights: the next position in the lane's list. */
  next: number;
  /** Smooth weighted round robin: each key's current weight (nginx's algorithm). */
  readonly current: Map<string, number>;
  /** The list last picked from, and whether its weights differ: a pool's list is reused until it is rebuilt. */
  list: readonly RotationTarget[] | undefined;
  weighted: boolean;
}

// Where this process's callers start: a random place, then each new rotation
// one further, so the callers of one process spread over a lane evenly and
// those of different processes independently.
const PROCESS_START = Math.floor(Math.random() * 0x7fffffff);
let rotationsMade = 0;

/**
 * The order in which one caller picks the instances of each lane: round robin,
 * weighted by `Instance.weight` where the weights of a lane differ (smooth
 * weighted round robin, as nginx does it: picks of a 3:1 lane go a a b a, not a
 * a a b), kept by the caller across every rebuild of its pool (a registry
 * change, a connection that came or went) and started at a different place per
 * caller (a random one per process, and the next one for each further caller
 * in it). A rotation that restarted at the first instance on every rebuild
 * would send every caller's next calls to the same instance after each change
 * (grpc-js's own `round_robin` starts at random for the same reason).
 */
export class LaneRotation {
  readonly #lanes = new Map<string, LaneState>();
  readonly #random: () => number;
  readonly #start: number;

  /** `random` (for tests) also sets where this caller starts; by default callers of a process start one apart. */
  constructor(random?: () => number) {
    this.#random = random ?? Math.random;
    this.#start = random ? Math.floor(random() * 0x7fffffff) : (PROCESS_START + rotationsMade++) % 0x7fffffff;
  }

  /**
   * The next of `targets` (the lane's pickable ones now); undefined when there
   * are none. Pass a new array when the lane changes: the same array is taken
   * to hold the same targets and weights.
   */
  pick<T extends RotationTarget>(lane: string, targets: readonly T[]): T | undefined {
    const count = targets.length;
    if (count === 0) return undefined;
    let state = this.#lanes.get(lane);
    if (state === undefined) {
      state = { next: this.#start, current: new Map(), list: undefined, weighted: false };
      this.#lanes.set(lane, state);
    }
    if (count === 1) return targets[0];
    if (state.list !== targets) {
      state.list = targets;
      state.weighted = differentWeights(targets);
    }
    if (!state.weighted) {
      // The common case: a position that outlives the list, so a rebuilt pool
      // goes on from where this caller was instead of starting over.
      const index = state.next % count;
      state.next = (state.next + 1) % 0x7fffffff;
      return targets[index];
    }
    return this.#weighted(state, targets);
  }

  /** Forgets lanes no longer served, so a long-lived caller's state stays bounded. */
  retain(lanes: Iterable<string>): void {
    const kept = new Set(lanes);
    for (const lane of this.#lanes.keys()) if (!kept.has(lane)) this.#lanes.delete(lane);
  }

  #weighted<T extends RotationTarget>(state: LaneState, targets: readonly T[]): T {
    let total = 0;
    let best: T | undefined;
    let bestCurrent = Number.NEGATIVE_INFINITY;
    for (const target of targets) {
      const weight = weightOf(target);
      total += weight;
      // A target new to this caller starts somewhere in its first cycle, so
      // callers that learn of it together do not all pick it together.
      const current = (state.current.get(target.key) ?? this.#random() * weight) + weight;
      state.current.set(target.key, current);
      if (current > bestCurrent) {
        bestCurrent = current;
        best = target;
      }
    }
    const chosen = best as T;
    state.current.set(chosen.key, bestCurrent - total);
    // Keys of instances gone from the lane leave the state with it.
    if (state.current.size > targets.length) {
      const present = new Set(targets.map((target) => target.key));
      for (const key of state.current.keys()) if (!present.has(key)) state.current.delete(key);
    }
    return chosen;
  }
}

function weightOf(target: RotationTarget): number {
  const weight = target.weight;
  return weight !== undefined && weight > 0 && Number.isFinite(weight) ? weight : 1;
}

function differentWeights(targets: readonly RotationTarget[]): boolean {
  const first = weightOf(targets[0] as RotationTarget);
  for (let i = 1; i < targets.length; i++) if (weightOf(targets[i] as RotationTarget) !== first) return true;
  return false;
}
