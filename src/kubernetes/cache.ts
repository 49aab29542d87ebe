/**
 * A small TTL cache with hit/miss counters, for Kubernetes reads that DESIGN §4 / issue 4 §5 allow
 * to be reused for a bounded time (token reviews ≤ 60 s, SubjectAccessReviews and session reads
 * ≤ 30 s). Errors are never cached: a failed read is retried on the next call (fail closed, and
 * recover as soon as the API server does). Concurrent misses for the same key share one load.
 */

/** Counters a cache exposes; `metrics()` of the backend flattens them. */
export interface CacheStats {
  hits: number;
  misses: number;
  size: number;
}

/** Options of `TtlCache`. */
export interface TtlCacheOptions {
  /** Upper bound for every entry's lifetime, in milliseconds. */
  maxTtlMs: number;
  /** Entries kept at most; the oldest is evicted first. Default 10 000. */
  maxEntries?: number;
  /** Clock in epoch ms; tests inject one. Default `Date.now`. */
  now?: () => number;
}

interface Entry<V> {
  value: V;
  expiresAt: number;
}

/**
 * TTL cache keyed by string. Keys must not contain secrets (hash tokens first).
 * @example
 * const c = new TtlCache<boolean>({ maxTtlMs: 30_000 });
 * const allowed = await c.getOrLoad("alice|proj/sess|update", async () => ({ value: true }));
 */
export class TtlCache<V> {
  #entries = new Map<string, Entry<V>>();
  #inflight = new Map<string, Promise<V>>();
  #maxTtlMs: number;
  #maxEntries: number;
  #now: () => number;
  #hits = 0;
  #misses = 0;

  constructor(opts: TtlCacheOptions) {
    this.#maxTtlMs = opts.maxTtlMs;
    this.#maxEntries = opts.maxEntries ?? 10_000;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * The cached value for `key`, or the result of `load()` (cached for `min(ttlMs, maxTtlMs)`;
   * `ttlMs` ≤ 0 means "do not cache"). A rejected load is not cached and rejects every waiter.
   */
  async getOrLoad(key: string, load: () => Promise<{ value: V; ttlMs?: number }>): Promise<V> {
    const now = this.#now();
    const hit = this.#entries.get(key);
    if (hit && hit.expiresAt > now) {
      this.#hits++;
      return hit.value;
    }
    if (hit) this.#entries.delete(key);
    const pending = this.#inflight.get(key);
    if (pending) {
      this.#hits++;
      return pending;
    }
    this.#misses++;
    const p = (async () => {
      const { value, ttlMs } = await load();
      const ttl = Math.min(ttlMs ?? this.#maxTtlMs, this.#maxTtlMs);
      if (ttl > 0) this.#set(key, value, this.#now() + ttl);
      return value;
    })();
    this.#inflight.set(key, p);
    try {
      return await p;
    } finally {
      this.#inflight.delete(key);
    }
  }

  #set(key: string, value: V, expiresAt: number): void {
    this.#entries.delete(key);
    this.#entries.set(key, { value, expiresAt });
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
  }

  /** Drop every entry (counters are kept). */
  clear(): void {
    this.#entries.clear();
  }

  /** Hits (including joins of an in-flight load), misses, and current entry count. */
  stats(): CacheStats {
    return { hits: this.#hits, misses: this.#misses, size: this.#entries.size };
  }
}
