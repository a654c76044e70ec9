/**
 * The small caching pieces every lookup of the request path shares (token verdicts,
 * bundles, credentials): a bounded map of entries with a fresh and a stale deadline, and
 * single-flight loading so concurrent misses for one key cost one RPC.
 */

/** A cached value with its deadlines (milliseconds since the epoch). */
export interface CacheEntry<V> {
  readonly value: V;
  /** Until then the value is used without asking again. */
  readonly freshUntil: number;
  /** Until then the value may stand in when reloading fails (DESIGN.md §8). */
  readonly staleUntil: number;
}

/** Options for createBoundedCache. */
export interface BoundedCacheOptions<K, V> {
  maxEntries: number;
  /** Called for every entry that leaves the cache (evicted, deleted or replaced). */
  onRemove?: (key: K, entry: CacheEntry<V>) => void;
}

/** A size-bounded map of cache entries; the oldest insertion is evicted first. */
export interface BoundedCache<K, V> {
  get(key: K): CacheEntry<V> | undefined;
  set(key: K, entry: CacheEntry<V>): void;
  delete(key: K): void;
  keys(): IterableIterator<K>;
  clear(): void;
  readonly size: number;
}

/**
 * Creates a bounded cache. Eviction is by insertion order rather than strict LRU: a hit
 * then costs one Map lookup and no reordering, and hot entries are re-inserted anyway each
 * time their TTL runs out and they are reloaded.
 */
export function createBoundedCache<K, V>(options: BoundedCacheOptions<K, V>): BoundedCache<K, V> {
  const map = new Map<K, CacheEntry<V>>();
  const { maxEntries, onRemove } = options;
  return {
    get: (key) => map.get(key),
    set(key, entry) {
      const previous = map.get(key);
      if (previous !== undefined) {
        map.delete(key);
        onRemove?.(key, previous);
      } else if (map.size >= maxEntries) {
        const oldest = map.entries().next();
        if (!oldest.done) {
          map.delete(oldest.value[0]);
          onRemove?.(oldest.value[0], oldest.value[1]);
        }
      }
      map.set(key, entry);
    },
    delete(key) {
      const entry = map.get(key);
      if (entry === undefined) return;
      map.delete(key);
      onRemove?.(key, entry);
    },
    keys: () => map.keys(),
    clear() {
      if (onRemove) for (const [key, entry] of map) onRemove(key, entry);
      map.clear();
    },
    get size() {
      return map.size;
    },
  };
}

/**
 * Runs at most one load per key at a time: callers that miss while a load is in flight get
 * the same promise.
 */
export interface SingleFlight<K, V> {
  run(key: K, load: () => Promise<V>): Promise<V>;
}

/** Creates a single-flight group. */
export function createSingleFlight<K, V>(): SingleFlight<K, V> {
  const inFlight = new Map<K, Promise<V>>();
  return {
    run(key, load) {
      const pending = inFlight.get(key);
      if (pending !== undefined) return pending;
      const promise = load().finally(() => inFlight.delete(key));
      inFlight.set(key, promise);
      return promise;
    },
  };
}
